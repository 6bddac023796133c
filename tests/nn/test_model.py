"""MLP: gradients (float64 centered differences), config validation, predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.nn.gradcheck import check_data_and_regularization
from hpsearch.nn.model import MLP, MLPConfig
from hpsearch.nn.regularization import elastic_net_penalty, is_regularized, weight_penalty


def make_model(**overrides: object) -> MLP:
    fields = {"input_dim": 5, "output_dim": 4, "hidden_sizes": (6, 7), "dtype": "float64"}
    fields.update(overrides)
    return MLP(MLPConfig(**fields), np.random.default_rng(0))  # type: ignore[arg-type]


def make_data(model: MLP, rows: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((rows, model.config.input_dim))
    loss = model.config.loss
    if loss in ("attribute_hinge",):
        y = rng.choice([-1, 1], size=(rows, model.config.output_dim))
    elif loss == "attribute_logistic":
        y = rng.integers(0, 2, size=(rows, model.config.output_dim))
    elif loss in ("l2", "l1"):
        y = rng.standard_normal((rows, model.config.output_dim))
    else:
        y = np.arange(rows) % model.config.output_dim
    X_checked, y_checked = model.check_inputs(X, y)
    assert y_checked is not None
    return X_checked, y_checked


CASES = [
    {"activation": "relu"},
    {"activation": "relu", "keep_prob": 0.6},
    {"activation": "relu", "batchnorm": True},
    {"activation": "leaky_relu", "keep_prob": 0.8},
    {"activation": "prelu", "batchnorm": True},
    {"activation": "tanh", "loss": "svm"},
    {"activation": "sigmoid", "loss": "hierarchical_softmax"},
    {"activation": "maxout", "maxout_pieces": 3, "batchnorm": True},
    {"activation": "tanh", "loss": "attribute_logistic"},
    {"activation": "relu", "loss": "l2"},
]


@pytest.mark.parametrize("overrides", CASES, ids=lambda case: "-".join(map(str, case.values())))
def test_gradients_match_centered_differences(overrides: dict[str, object]) -> None:
    # bias_init != 0: a row of all-dropped units would otherwise sit exactly on a ReLU kink
    model = make_model(l2=0.3, l1=0.05, regularize_biases=True, bias_init=0.05, **overrides)
    X, y = make_data(model)

    def data_loss() -> float:
        return model.data_loss_and_grads(X, y, np.random.default_rng(7))[0]

    def regularization_loss() -> float:
        return model.regularization_loss_and_grads()[0]

    _, data_grads = model.data_loss_and_grads(X, y, np.random.default_rng(7))
    _, reg_grads = model.regularization_loss_and_grads()
    reports = check_data_and_regularization(
        data_loss, data_grads, regularization_loss, reg_grads, model.params,
        np.random.default_rng(2), samples_per_param=6,
    )  # fmt: skip
    for part, report in reports.items():
        errors = [
            c.relative_error
            for c in report.checks
            if not c.kink_crossed and max(abs(c.analytic), abs(c.numeric)) > 1e-8
        ]  # biases before batchnorm have a true gradient of 0: both sides are noise
        assert errors, part
        assert max(errors) < 1e-6, (part, overrides, max(errors))


def test_loss_is_data_plus_regularization_and_grads_add() -> None:
    model = make_model(l2=0.5, l1=0.1)
    X, y = make_data(model)
    total, grads = model.loss(X, y)
    data, data_grads = model.data_loss_and_grads(X, y)
    reg, reg_grads = model.regularization_loss_and_grads()
    w = model.params["W1"]
    assert reg == pytest.approx(
        sum(
            0.25 * np.sum(model.params[f"W{i}"] ** 2) + 0.1 * np.abs(model.params[f"W{i}"]).sum()
            for i in (1, 2, 3)
        )
    )
    assert total == pytest.approx(data + reg)
    np.testing.assert_allclose(reg_grads["W1"], 0.5 * w + 0.1 * np.sign(w))
    np.testing.assert_array_equal(reg_grads["b1"], 0.0)
    np.testing.assert_allclose(grads["W1"], data_grads["W1"] + reg_grads["W1"])


@pytest.mark.parametrize("regularize_biases", [False, True])
def test_elastic_net_is_the_regularization_module_s(regularize_biases: bool) -> None:
    """Same numbers as weight_penalty, i.e. elastic_net_penalty summed over the
    regularized arrays; regularization_penalty gives the value alone."""
    model = make_model(l2=0.3, l1=0.05, regularize_biases=regularize_biases, bias_init=0.1)
    loss, grads = model.regularization_loss_and_grads()
    expected_loss = 0.0
    for name, param in model.params.items():
        if is_regularized(name, regularize_biases):
            value, gradient = elastic_net_penalty(param, 0.05, 0.3)
            expected_loss += value
            np.testing.assert_array_equal(grads[name], gradient)
        else:
            np.testing.assert_array_equal(grads[name], 0.0)
    assert loss == pytest.approx(expected_loss, rel=1e-14)
    assert loss == pytest.approx(weight_penalty(model.params, 0.05, 0.3, regularize_biases)[0])
    assert model.regularization_penalty() == pytest.approx(expected_loss, rel=1e-12)


def test_fused_path_equals_general_path_with_dropout() -> None:
    model = make_model(keep_prob=0.7, l2=0.1)
    X, y = make_data(model)
    fused_loss, fused_grads = model.loss(X, y, np.random.default_rng(3))
    model._fast = False
    general_loss, general_grads = model.loss(X, y, np.random.default_rng(3))
    assert fused_loss == pytest.approx(general_loss, rel=1e-12)
    for name in fused_grads:
        np.testing.assert_allclose(fused_grads[name], general_grads[name], rtol=1e-10, atol=1e-14)


def test_shapes_names_and_defaults() -> None:
    model = make_model(activation="maxout", maxout_pieces=3, batchnorm=True)
    assert model.params["W1"].shape == (5, 18) and model.params["b1"].shape == (18,)
    assert model.params["W2"].shape == (6, 21) and model.params["W3"].shape == (7, 4)
    assert model.params["gamma1"].shape == (6,) and set(model.buffers) == {
        "running_mean1", "running_var1", "running_mean2", "running_var2",
    }  # fmt: skip
    hs = make_model(loss="hierarchical_softmax", output_dim=5)
    assert hs.params["W3"].shape == (7, 4)
    prelu = make_model(activation="prelu", leaky_alpha=0.2)
    np.testing.assert_array_equal(prelu.params["alpha1"], 0.2)


def test_float32_end_to_end() -> None:
    model = make_model(dtype="float32", l2=0.1)
    X, y = make_data(model)
    _, grads = model.loss(X, y)
    assert X.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.scores(X).dtype == np.float32


def test_initial_softmax_loss_is_log_c_at_zero_scores() -> None:
    model = make_model(init="small", init_scale=1e-6)
    X, y = make_data(model)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(math.log(4), abs=1e-4)


def test_from_state_round_trip_and_predict() -> None:
    model = make_model(batchnorm=True)
    X, y = make_data(model)
    model.loss(X, y)  # updates the running statistics
    copy = MLP.from_state(model.config, model.params, model.buffers)
    np.testing.assert_array_equal(copy.scores(X), model.scores(X))
    assert copy.predict(X).shape == (6,)
    with pytest.raises(ValueError, match="params"):
        MLP.from_state(model.config, {"W1": model.params["W1"]}, model.buffers)


def test_predict_and_accuracy_for_attributes_and_regression() -> None:
    attributes = make_model(loss="attribute_hinge")
    X, y = make_data(attributes)
    predicted = attributes.predict(X)
    assert predicted.dtype == bool and predicted.shape == (6, 4)
    assert attributes.accuracy(X, y) == pytest.approx(np.mean(predicted == (y > 0)))
    regression = make_model(loss="l2")
    X, y = make_data(regression)
    scores = regression.scores(X)
    expected = 1 - np.sum((scores - y) ** 2) / np.sum((y - y.mean(axis=0)) ** 2)
    assert regression.accuracy(X, y) == pytest.approx(expected)


def test_config_accepts_model_config_dump() -> None:
    from hpsearch.config import ModelConfig

    dumped = ModelConfig(hidden_sizes=[8, 4], keep_prob=0.5).model_dump()
    config = MLPConfig(input_dim=3, output_dim=2, **dumped)
    assert config.hidden_sizes == (8, 4)


@pytest.mark.parametrize(
    ("field", "value"),
    [("l2", -0.1), ("l1", -1.0), ("keep_prob", 0.0), ("keep_prob", 1.5), ("activation", "swish"),
     ("loss", "hinge"), ("input_dim", 0), ("hidden_sizes", (3, 0)), ("dtype", "float16"),
     ("init", "zeros"), ("max_norm", 0.0)],
)  # fmt: skip
def test_bad_config_raises_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        make_model(**{field: value})


def test_bad_inputs_raise_naming_the_argument() -> None:
    model = make_model()
    X, y = make_data(model)
    with pytest.raises(ValueError, match="X_train"):
        model.check_inputs(X[:, :3], y, "X_train", "y_train")
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X_val"):
        model.check_inputs(bad, y, "X_val")
    with pytest.raises(ValueError, match="y_train"):
        model.check_inputs(X, y + 4, "X_train", "y_train")
    with pytest.raises(ValueError, match="y"):
        model.check_inputs(X, y[:3])
    with pytest.raises(ValueError, match="rng"):
        make_model(keep_prob=0.5).loss(X, y)
