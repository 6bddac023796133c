"""Gradient checker: formulas, bands, sampling of every array, kinks, dropout, loss parts."""

from __future__ import annotations

import numpy as np
import pytest

from hpsearch.nn import layers, losses
from hpsearch.nn.gradcheck import (
    GradCheckReport,
    check_data_and_regularization,
    check_gradient,
    error_band,
    numerical_gradient,
    relative_error,
)


def test_relative_error_formula() -> None:
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(2.0, 2.0) == 0.0
    assert relative_error(1.0, 2.0) == 0.5
    assert relative_error(-1.0, 1.0) == 2.0
    assert relative_error(0.0, 1e-9) == 1.0


def test_error_bands_follow_the_notes() -> None:
    assert error_band(0.5) == "probably_wrong"
    assert error_band(1e-3) == "uncomfortable"
    assert error_band(1e-5) == "ok_for_kinks"
    assert error_band(1e-7) == "good"
    assert error_band(0.0) == "good"


def test_numerical_gradient_of_a_cubic() -> None:
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    for index in np.ndindex(x.shape):
        numeric = numerical_gradient(lambda: float(np.sum(x**3)), x, index)
        assert relative_error(3 * x[index] ** 2, numeric) < 1e-9
    np.testing.assert_array_equal(x, [[0.5, -1.0], [2.0, 3.0]])  # restored


class TwoLayerNet:
    """x -> affine -> relu -> dropout -> affine -> softmax, for exercising the checker."""

    def __init__(self, seed: int, keep_prob: float = 1.0) -> None:
        rng = np.random.default_rng(seed)
        self.x, self.y = rng.normal(size=(4, 5)), rng.integers(0, 3, 4)
        self.params = {
            "W1": rng.normal(size=(5, 6)) * 0.5,
            "b1": rng.normal(size=6) * 0.1,
            "W2": rng.normal(size=(6, 3)) * 0.5,
            "b2": rng.normal(size=3) * 0.1,
        }
        self.keep_prob = keep_prob
        self.dropout_seed = 99

    def loss_and_grads(self) -> tuple[float, dict[str, np.ndarray]]:
        p = self.params
        hidden, cache1 = layers.affine_relu_forward(self.x, p["W1"], p["b1"])
        dropped, cache_drop = layers.dropout_forward(
            hidden, self.keep_prob, "train", np.random.default_rng(self.dropout_seed)
        )
        scores, cache2 = layers.affine_forward(dropped, p["W2"], p["b2"])
        loss, dscores = losses.softmax_loss(scores, self.y)
        ddropped, dW2, db2 = layers.affine_backward(dscores, cache2)
        assert ddropped is not None
        dhidden = layers.dropout_backward(ddropped, cache_drop)
        _, dW1, db1 = layers.affine_relu_backward(dhidden, cache1, need_dx=False)
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    def loss(self) -> float:
        return self.loss_and_grads()[0]

    def relu_pattern(self) -> np.ndarray:
        return self.x @ self.params["W1"] + self.params["b1"] > 0


def test_correct_network_gradients_pass_on_every_parameter() -> None:
    net = TwoLayerNet(seed=0)
    _, grads = net.loss_and_grads()
    report = check_gradient(
        net.loss, net.params, grads, np.random.default_rng(0), kink_detector=net.relu_pattern
    )
    assert {check.param for check in report.checks} == {"W1", "b1", "W2", "b2"}
    assert sum(check.param == "b2" for check in report.checks) == 3  # all of a small bias
    assert sum(check.param == "W1" for check in report.checks) == 10
    assert report.kinks_crossed == 0
    assert report.passed(1e-7)
    assert max(report.max_error.values()) < 1e-7
    assert all(check.band == "good" for check in report.checks)


def test_dropout_is_checked_under_a_seed_recreated_per_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = TwoLayerNet(seed=1, keep_prob=0.5)
    _, grads = net.loss_and_grads()
    report = check_gradient(net.loss, net.params, grads, np.random.default_rng(0))
    assert report.passed(1e-7)

    shared_rng = np.random.default_rng(5)  # a fresh mask on every evaluation breaks the check
    original = layers.dropout_forward
    monkeypatch.setattr(
        layers, "dropout_forward", lambda x, p, mode, _rng: original(x, p, mode, shared_rng)
    )
    drifting = check_gradient(net.loss, net.params, grads, np.random.default_rng(0))
    assert not drifting.passed(1e-2)


def test_wrong_gradient_fails_with_a_bad_band() -> None:
    net = TwoLayerNet(seed=2)
    _, grads = net.loss_and_grads()
    grads["b1"] = grads["b1"] * 1.05
    report = check_gradient(net.loss, net.params, grads, np.random.default_rng(0))
    assert not report.passed(1e-7)
    assert report.max_error["b1"] > 1e-2
    assert report.max_error["W2"] < 1e-7
    assert {c.band for c in report.checks if c.param == "b1" and c.analytic != 0} <= {
        "probably_wrong",
        "uncomfortable",
    }


def test_kinks_crossed_by_x_plus_minus_h_are_flagged_and_counted() -> None:
    net = TwoLayerNet(seed=3)
    pre_activation = net.x @ net.params["W1"] + net.params["b1"]
    net.params["b1"][2] -= pre_activation[0, 2] - 3e-6  # unit 2 of example 0 sits 3e-6 from 0
    _, grads = net.loss_and_grads()
    report = check_gradient(
        net.loss, net.params, grads, np.random.default_rng(0), kink_detector=net.relu_pattern
    )
    crossed = [check for check in report.checks if check.kink_crossed]
    assert report.kinks_crossed == len(crossed) >= 1
    assert ("b1", (2,)) in {(check.param, check.index) for check in crossed}
    assert report.max_error["b1"] > 1e-4  # the kink-crossed coordinate is in the report
    assert report.max_error_without_kinks["b1"] < 1e-7
    assert report.passed(1e-7)


def test_svm_margin_kinks_are_detected() -> None:
    scores = np.array([[1.0, 2.0 - 1.0 + 4e-6, 0.0]])  # margin of class 1 is 4e-6
    y = np.array([0])
    _, dscores = losses.svm_loss(scores, y)

    def margins_positive() -> np.ndarray:
        return scores - scores[0, y[0]] + 1 > 0

    report = check_gradient(
        lambda: losses.svm_loss(scores, y)[0],
        {"scores": scores},
        {"scores": dscores},
        np.random.default_rng(0),
        kink_detector=margins_positive,
    )
    assert report.kinks_crossed == 2  # moving s_0 or s_1 by h flips the margin's sign
    assert report.passed(1e-7)


def test_data_loss_and_regularization_are_checked_separately() -> None:
    net = TwoLayerNet(seed=4)
    strength = 50.0
    weights = ("W1", "W2")

    def regularization_loss() -> float:
        return sum(0.5 * strength * float(np.sum(net.params[w] ** 2)) for w in weights)

    _, data_grads = net.loss_and_grads()
    data_grads["W2"] = data_grads["W2"] * 0.5  # a bug in the data gradient
    reg_grads = {w: strength * net.params[w] for w in weights}

    reports = check_data_and_regularization(
        net.loss, data_grads, regularization_loss, reg_grads, net.params, np.random.default_rng(0)
    )
    assert reports["regularization"].passed(1e-7)
    assert {c.param for c in reports["regularization"].checks} == set(weights)
    assert reports["data"].max_error["W2"] > 0.3

    combined_grads = {k: g + reg_grads.get(k, 0.0) for k, g in data_grads.items()}
    combined = check_gradient(
        lambda: net.loss() + regularization_loss(),
        net.params,
        combined_grads,
        np.random.default_rng(0),
    )

    def median_w2_error(report: GradCheckReport) -> float:
        return float(np.median([c.relative_error for c in report.checks if c.param == "W2"]))

    assert median_w2_error(combined) < 0.1 * median_w2_error(reports["data"])  # bug swamped


def test_bad_arguments_name_themselves() -> None:
    rng = np.random.default_rng(0)
    x32 = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match=r"params\['x'\] must be a float64"):
        check_gradient(lambda: 0.0, {"x": x32}, {"x": x32}, rng)
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"analytic_grads\['x'\]"):
        check_gradient(lambda: 0.0, {"x": x}, {"x": np.ones(2)}, rng)
    with pytest.raises(ValueError, match=r"analytic_grads\['x'\]"):
        check_gradient(lambda: 0.0, {"x": x}, {}, rng)
    with pytest.raises(ValueError, match="samples_per_param"):
        check_gradient(lambda: 0.0, {"x": x}, {"x": x}, rng, samples_per_param=0)
    with pytest.raises(ValueError, match="h must be positive"):
        check_gradient(lambda: 0.0, {"x": x}, {"x": x}, rng, h=0.0)
    with pytest.raises(TypeError, match="rng"):
        check_gradient(lambda: 0.0, {"x": x}, {"x": x}, 0)  # type: ignore[arg-type]
    assert isinstance(check_gradient(lambda: 0.0, {"x": x}, {"x": x * 0}, rng), GradCheckReport)
    with pytest.raises(ValueError, match="regularization_grads"):
        check_data_and_regularization(lambda: 0.0, {"x": x}, lambda: 0.0, {"w": x}, {"x": x}, rng)
