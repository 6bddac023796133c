"""Trainer: spiral accuracy, resume equality, divergence, stop, RNG hygiene, memory, records."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import numpy as np
import pytest

from hpsearch.nn.model import MLP, MLPConfig
from hpsearch.nn.optim import sgd_momentum
from hpsearch.nn.regularization import max_norm_project
from hpsearch.nn.stats import ACTIVATION_EDGES, GRADIENT_EDGES
from hpsearch.nn.train_stats import HISTOGRAM_SAMPLE, sampled_histogram
from hpsearch.nn.trainer import TrainerConfig, TrainState, train


def spiral(points: int = 100, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The notes' spiral: r = linspace(0, 1, N), t = linspace(4j, 4(j+1), N) + 0.2 randn."""
    rng = np.random.default_rng(seed)
    X = np.zeros((points * classes, 2))
    y = np.zeros(points * classes, dtype=np.int64)
    for j in range(classes):
        rows = slice(points * j, points * (j + 1))
        r = np.linspace(0.0, 1, points)
        t = np.linspace(j * 4, (j + 1) * 4, points) + rng.standard_normal(points) * 0.2
        X[rows] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[rows] = j
    return X, y


def small_model(**overrides: Any) -> MLP:
    fields: dict[str, Any] = {"input_dim": 2, "output_dim": 3, "hidden_sizes": (32,)}
    fields.update(overrides)
    return MLP(MLPConfig(**fields), np.random.default_rng(0))


def test_two_layer_relu_net_fits_the_spiral() -> None:
    X, y = spiral()
    model = MLP(MLPConfig(input_dim=2, output_dim=3, hidden_sizes=(100,), l2=1e-3),
                np.random.default_rng(0))  # fmt: skip
    config = TrainerConfig(epochs=300, batch_size=300, rule="momentum", learning_rate=1.0, seed=0)
    result = train(model, X, y, X, y, config)
    assert result.status == "completed"
    assert model.accuracy(*model.check_inputs(X, y)) >= 0.98  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [{"rule": "adam", "ema_decay": 0.9, "kind": "plateau"},
     {"rule": "nesterov", "momentum_start": 0.5, "kind": "step", "step_epochs": 1}],
)  # fmt: skip
def test_resume_gives_identical_numbers(overrides: dict[str, Any]) -> None:
    X, y = spiral()
    model_fields = {"keep_prob": 0.8, "batchnorm": True, "max_norm": 2.0, "l2": 1e-3}
    config = TrainerConfig(epochs=4, batch_size=32, learning_rate=1e-2, seed=5, **overrides)
    straight = small_model(**model_fields)
    full = train(straight, X, y, X, y, config)
    saved: list[TrainState] = []
    first = small_model(**model_fields)
    train(first, X, y, X, y, TrainerConfig(**{**config.__dict__, "epochs": 2}),
          on_epoch=lambda record, state: saved.append(state))  # fmt: skip
    resumed_model = small_model(**model_fields)
    resumed = train(resumed_model, X, y, X, y, config, resume=saved[-1])
    for name, array in straight.params.items():
        np.testing.assert_array_equal(resumed_model.params[name], array)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in full.history]
    if "ema_decay" in overrides:
        assert resumed.ema_params is not None and full.ema_params is not None


def test_records_are_json_serialisable_and_complete() -> None:
    X, y = spiral()
    records: list[dict[str, Any]] = []
    config = TrainerConfig(epochs=2, batch_size=50, rule="momentum", learning_rate=0.1,
                           ema_decay=0.99, loss_history_points=3)  # fmt: skip
    result = train(small_model(), X, y, X[:30], y[:30], config,
                   on_epoch=lambda record, state: records.append(record))  # fmt: skip
    assert len(records) == 2 and result.history == records
    record = json.loads(json.dumps(records[-1]))
    assert record["epoch"] == 2 and record["iterations"] == 6 and len(record["loss_history"]) == 3
    assert set(record["update_ratios"]) == {"W1", "W2", "b1", "b2"}
    assert set(record["activation_histograms"]) == {"layer1"}
    layer2 = record["gradient_histograms"]["layer2"]
    counted = sum(layer2["counts"]) + layer2["underflow"] + layer2["overflow"] + layer2["nan"]
    assert counted == layer2["sampled"] == layer2["size"] == 32 * 3
    assert 0.0 <= record["dead_relu_fraction"]["layer1"] <= 1.0
    assert record["ema_val_accuracy"] is not None and record["momentum"] == 0.9
    assert result.best_epoch in (1, 2)


def test_huge_learning_rate_diverges_with_a_reason() -> None:
    X, y = spiral()
    config = TrainerConfig(epochs=5, batch_size=30, rule="sgd", learning_rate=1e6)
    result = train(small_model(), X, y, X, y, config)
    assert result.status == "diverged"
    assert "epoch 1" in result.reason and "iteration" in result.reason and "loss" in result.reason


def test_stop_request_between_iterations() -> None:
    X, y = spiral()
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    result = train(small_model(), X, y, X, y, TrainerConfig(epochs=3, batch_size=30),
                   should_stop=should_stop)  # fmt: skip
    assert result.status == "stopped" and "iteration 4" in result.reason


def test_global_random_state_untouched() -> None:
    X, y = spiral()
    before = np.random.get_state()[1].copy()  # type: ignore[index]
    train(small_model(keep_prob=0.5), X, y, X, y, TrainerConfig(epochs=2, batch_size=30))
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # type: ignore[index]


def test_memory_does_not_grow_across_epochs() -> None:
    X, y = spiral()
    peaks: list[int] = []

    def on_epoch(record: dict[str, Any], state: TrainState) -> None:
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.reset_peak()

    tracemalloc.start()
    try:
        train(small_model(hidden_sizes=(64, 64)), X, y, X, y,
              TrainerConfig(epochs=6, batch_size=30), on_epoch=on_epoch)  # fmt: skip
    finally:
        tracemalloc.stop()
    assert peaks[5] < 1.5 * peaks[1] + 64_000


@pytest.mark.parametrize(
    ("field", "value"),
    [("rule", "lbfgs"), ("kind", "cosine"), ("batch_size", 0), ("learning_rate", -1.0),
     ("ema_decay", 1.5), ("epochs", 0)],
)  # fmt: skip
def test_bad_trainer_config_names_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        TrainerConfig(**{field: value})


def test_bad_data_names_the_argument() -> None:
    X, y = spiral()
    config = TrainerConfig(epochs=1)
    with pytest.raises(ValueError, match="X_train"):
        train(small_model(), X[:, :1], y, X, y, config)
    with pytest.raises(ValueError, match="y_val"):
        train(small_model(), X, y, X, y + 3, config)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="X_val"):
        train(small_model(), X, y, X_nan, y, config)


@pytest.mark.parametrize("overrides", [{"l2": 0.1}, {"l2": 0.05, "l1": 0.01, "max_norm": 0.5}])
def test_training_equals_a_plain_loop_of_model_loss_and_the_rule(
    overrides: dict[str, Any],
) -> None:
    """The fused hot loop (data step, penalty inside the update) changes no number."""
    X, y = spiral(points=20)
    fields = {"hidden_sizes": (16,), "dtype": "float64", **overrides}
    trained, plain = small_model(**fields), small_model(**fields)
    config = TrainerConfig(epochs=2, batch_size=16, rule="momentum", learning_rate=0.1, seed=3)
    result = train(trained, X, y, X, y, config)
    X64, y64 = plain.check_inputs(X, y)
    assert y64 is not None
    opt = config.optimizer_config(config.learning_rate)
    for epoch in range(2):
        order = np.random.default_rng(np.random.SeedSequence([3, epoch])).permutation(len(X))
        losses = []
        for start in range(0, len(X), 16):
            index = order[start : start + 16]
            loss, grads = plain.loss(X64[index], y64[index])
            losses.append(loss)
            flat = np.concatenate([grads[name].ravel() for name in plain.params])
            sgd_momentum(plain.param_vector, flat, opt)
            if plain.config.max_norm is not None:
                for name in ("W1", "W2"):
                    max_norm_project(plain.params[name], plain.config.max_norm)
        assert result.history[epoch]["train_loss"] == pytest.approx(np.mean(losses), rel=1e-12)
    for name, array in plain.params.items():
        np.testing.assert_allclose(trained.params[name], array, rtol=1e-12, atol=1e-14)


def test_histograms_use_the_same_fixed_edges_in_every_epoch() -> None:
    X, y = spiral()
    config = TrainerConfig(epochs=3, batch_size=50, rule="momentum", learning_rate=0.5)
    result = train(small_model(hidden_sizes=(32, 16)), X, y, X, y, config)
    for record in result.history:
        for name in ("layer1", "layer2"):
            activation = record["activation_histograms"][name]
            assert activation["edges"] == list(ACTIVATION_EDGES)
            assert (
                activation["sampled"]
                == activation["size"]
                == len(X) * (32 if name == "layer1" else 16)
            )
        for name in ("layer1", "layer2", "layer3"):
            assert record["gradient_histograms"][name]["edges"] == list(GRADIENT_EDGES)
    first, last = result.history[0], result.history[-1]
    assert (
        first["activation_histograms"]["layer1"]["counts"]
        != last["activation_histograms"]["layer1"]["counts"]
    )


def test_large_arrays_are_histogrammed_from_a_strided_sample() -> None:
    values = np.arange(200_000, dtype=np.float32) * 1e-5 - 1.0  # [-1, 1), one row
    result = sampled_histogram(values, ACTIVATION_EDGES)
    step = -(-200_000 // HISTOGRAM_SAMPLE)  # 13, no factor shared with 200,000
    assert HISTOGRAM_SAMPLE == 16_384 and step == 13
    assert result["sampled"] == len(range(0, 200_000, step)) and result["size"] == 200_000
    assert sum(result["counts"]) == result["sampled"] <= HISTOGRAM_SAMPLE
    assert result["underflow"] == result["overflow"] == 0
    assert result["counts"][20] == len(range(0, 10_000, step))  # [-1.0, -0.9)


def test_the_strided_sample_visits_every_unit_of_a_layer() -> None:
    rows, units = 1024, 256  # 262,144 values: stride 16 would see 16 units, 17 sees all
    activations = np.tile(np.arange(units) % 16 * 0.1 + 0.05, (rows, 1))  # unit u in bin u % 16
    result = sampled_histogram(activations, ACTIVATION_EDGES)
    zero = ACTIVATION_EDGES.index(0.0)
    shares = np.array(result["counts"][zero : zero + 16]) / result["sampled"]
    assert sum(result["counts"]) == result["sampled"] == len(range(0, rows * units, 17))
    np.testing.assert_allclose(shares, 1 / 16, atol=0.002)  # every unit, as often as the rest
