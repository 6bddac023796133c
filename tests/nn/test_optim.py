"""Update rules against hand-computed two-step sequences (notes, part 3)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from hpsearch.nn.optim import (
    UPDATE_RULES,
    adagrad,
    adam,
    make_config,
    nesterov,
    rmsprop,
    sgd,
    sgd_momentum,
)

W0 = [1.0, -2.0]
G1 = [0.5, -1.0]
G2 = [-1.0, 2.0]


def two_steps(rule, config, dtype=np.float64):
    """Apply `rule` twice with the fixed gradients G1 then G2; return (w1, w2, config)."""
    w = np.array(W0, dtype=dtype)
    w, config = rule(w, np.array(G1, dtype=dtype), config)
    w1 = w.copy()
    w, config = rule(w, np.array(G2, dtype=dtype), config)
    return w1, w, config


def test_sgd_two_steps():
    w1, w2, _ = two_steps(sgd, {"learning_rate": 0.1})
    np.testing.assert_allclose(w1, [0.95, -1.9], rtol=0, atol=1e-12)
    np.testing.assert_allclose(w2, [1.05, -2.1], rtol=0, atol=1e-12)


def test_momentum_two_steps():
    w1, w2, config = two_steps(sgd_momentum, {"learning_rate": 0.1, "momentum": 0.9})
    # v1 = -0.1*g1 = [-0.05, 0.1]; v2 = 0.9*v1 - 0.1*g2 = [0.055, -0.11]
    np.testing.assert_allclose(w1, [0.95, -1.9], rtol=0, atol=1e-12)
    np.testing.assert_allclose(config["velocity"], [0.055, -0.11], rtol=0, atol=1e-12)
    np.testing.assert_allclose(w2, [1.005, -2.01], rtol=0, atol=1e-12)


def test_nesterov_two_steps():
    w1, w2, config = two_steps(nesterov, {"learning_rate": 0.1, "momentum": 0.9})
    # w1 = w0 + 1.9*v1 = [1 - 0.095, -2 + 0.19]
    # w2 = w1 - 0.9*v1 + 1.9*v2 = [0.905 + 0.045 + 0.1045, -1.81 - 0.09 - 0.209]
    np.testing.assert_allclose(w1, [0.905, -1.81], rtol=0, atol=1e-12)
    np.testing.assert_allclose(config["velocity"], [0.055, -0.11], rtol=0, atol=1e-12)
    np.testing.assert_allclose(w2, [1.0545, -2.109], rtol=0, atol=1e-12)


def test_adagrad_two_steps():
    w1, w2, config = two_steps(adagrad, {"learning_rate": 0.1, "epsilon": 0.5})
    # cache1 = [0.25, 1], sqrt = [0.5, 1]; cache2 = [1.25, 5]
    expected_w1 = [1.0 - 0.1 * 0.5 / (0.5 + 0.5), -2.0 + 0.1 * 1.0 / (1.0 + 0.5)]
    expected_w2 = [
        expected_w1[0] + 0.1 * 1.0 / (math.sqrt(1.25) + 0.5),
        expected_w1[1] - 0.1 * 2.0 / (math.sqrt(5.0) + 0.5),
    ]
    np.testing.assert_allclose(w1, expected_w1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(config["cache"], [1.25, 5.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(w2, expected_w2, rtol=0, atol=1e-12)


def test_rmsprop_two_steps():
    config = {"learning_rate": 0.1, "decay_rate": 0.9, "epsilon": 1e-8}
    w1, w2, config = two_steps(rmsprop, config)
    # cache1 = 0.1*g1**2 = [0.025, 0.1]; cache2 = 0.9*cache1 + 0.1*g2**2 = [0.1225, 0.49]
    expected_w1 = [
        1.0 - 0.1 * 0.5 / (math.sqrt(0.025) + 1e-8),
        -2.0 + 0.1 * 1.0 / (math.sqrt(0.1) + 1e-8),
    ]
    expected_w2 = [
        expected_w1[0] + 0.1 * 1.0 / (0.35 + 1e-8),
        expected_w1[1] - 0.1 * 2.0 / (0.7 + 1e-8),
    ]
    np.testing.assert_allclose(w1, expected_w1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(config["cache"], [0.1225, 0.49], rtol=0, atol=1e-12)
    np.testing.assert_allclose(w2, expected_w2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("epsilon", [1e-8, 0.1])
def test_adam_two_steps_with_bias_correction(epsilon):
    config = {"learning_rate": 0.1, "beta1": 0.9, "beta2": 0.999, "epsilon": epsilon}
    w1, w2, config = two_steps(adam, config)
    # step 1: m = 0.1*g1, v = 0.001*g1**2, so m_hat = g1 and v_hat = g1**2
    expected_w1 = [1.0 - 0.1 * 0.5 / (0.5 + epsilon), -2.0 + 0.1 * 1.0 / (1.0 + epsilon)]
    # step 2: m = 0.9*m1 + 0.1*g2 = [-0.055, 0.11]; v = 0.999*v1 + 0.001*g2**2
    m2 = [-0.055, 0.11]
    v2 = [0.00124975, 0.004999]
    m_hat = [value / (1.0 - 0.9**2) for value in m2]
    v_hat = [value / (1.0 - 0.999**2) for value in v2]
    expected_w2 = [
        expected_w1[i] - 0.1 * m_hat[i] / (math.sqrt(v_hat[i]) + epsilon) for i in range(2)
    ]
    np.testing.assert_allclose(w1, expected_w1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(config["m"], m2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(config["v"], v2, rtol=0, atol=1e-12)
    assert config["t"] == 2
    np.testing.assert_allclose(w2, expected_w2, rtol=0, atol=1e-12)


def test_nesterov_matches_the_notes_x_ahead_form_on_a_quadratic():
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((4, 4))
    hessian = basis @ basis.T + np.eye(4)
    target = rng.standard_normal(4)

    def gradient(x):
        return hessian @ x - target

    learning_rate, momentum = 0.05, 0.9
    x = rng.standard_normal(4)
    v = np.zeros(4)
    stored = x.copy()
    config = {"learning_rate": learning_rate, "momentum": momentum}
    for _ in range(25):
        x_ahead = x + momentum * v
        v = momentum * v - learning_rate * gradient(x_ahead)
        x = x + v
        stored, config = nesterov(stored, gradient(stored), config)
        np.testing.assert_allclose(stored, x + momentum * v, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(config["velocity"], v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_float32_stays_float32_and_updates_in_place(name):
    rule = UPDATE_RULES[name]
    w32, w64 = np.array(W0, dtype=np.float32), np.array(W0)
    config32, config64 = make_config(name, learning_rate=0.01), make_config(name, 0.01)
    for gradient in (G1, G2, G1):
        dw32 = np.array(gradient, dtype=np.float32)
        next_w, config32 = rule(w32, dw32, config32)
        assert next_w is w32
        np.testing.assert_array_equal(dw32, np.array(gradient, dtype=np.float32))
        w64, config64 = rule(w64, np.array(gradient), config64)
    assert w32.dtype == np.float32
    for value in config32.values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32
    np.testing.assert_allclose(w32, w64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_state_round_trips_through_npz(name):
    rule = UPDATE_RULES[name]
    w = np.array(W0, dtype=np.float32)
    config = make_config(name, learning_rate=0.01)
    for gradient in (G1, G2):
        w, config = rule(w, np.array(gradient, dtype=np.float32), config)
    handle = io.BytesIO()
    np.savez(handle, **config)
    handle.seek(0)
    with np.load(handle, allow_pickle=False) as archive:
        restored = {key: archive[key] for key in archive.files}
    w_restored = w.copy()
    dw = np.array([0.3, -0.7], dtype=np.float32)
    w, config = rule(w, dw, config)
    w_restored, restored = rule(w_restored, dw, restored)
    assert w_restored.dtype == np.float32
    np.testing.assert_array_equal(w_restored, w)
    for key, value in config.items():
        np.testing.assert_array_equal(np.asarray(restored[key]), np.asarray(value))


def test_missing_state_is_created_and_hyperparameters_default():
    w = np.ones((2, 3), dtype=np.float32)
    _, config = adam(w, np.ones_like(w), {})
    assert set(config) == {"learning_rate", "beta1", "beta2", "epsilon", "m", "v", "t"}
    assert config["m"].shape == (2, 3)


def test_update_rules_are_keyed_by_config_rule_names():
    from hpsearch.config import OptimizerConfig

    names = OptimizerConfig.model_fields["rule"].annotation.__args__
    assert set(UPDATE_RULES) == set(names)


def test_make_config_keeps_only_the_keys_a_rule_uses():
    assert make_config("sgd", learning_rate=0.5) == {"learning_rate": 0.5}
    assert set(make_config("momentum")) == {"learning_rate", "momentum"}
    assert set(make_config("nesterov")) == {"learning_rate", "momentum"}
    assert set(make_config("adagrad")) == {"learning_rate", "epsilon"}
    assert set(make_config("rmsprop")) == {"learning_rate", "decay_rate", "epsilon"}
    assert set(make_config("adam")) == {"learning_rate", "beta1", "beta2", "epsilon"}


def test_make_config_accepts_an_optimizer_config_dump():
    from hpsearch.config import OptimizerConfig

    config = make_config(**OptimizerConfig(rule="rmsprop", learning_rate=0.01).model_dump())
    assert config == {"learning_rate": 0.01, "decay_rate": 0.99, "epsilon": 1e-8}


@pytest.mark.parametrize(
    ("rule", "argument", "value"),
    [
        ("sgd", "learning_rate", 0.0),
        ("sgd", "learning_rate", -1.0),
        ("sgd", "learning_rate", float("nan")),
        ("momentum", "momentum", 1.0),
        ("nesterov", "momentum", -0.1),
        ("rmsprop", "decay_rate", 0.0),
        ("adam", "beta1", 1.0),
        ("adam", "beta2", 1.5),
        ("adagrad", "epsilon", 0.0),
    ],
)
def test_make_config_rejects_out_of_range_values(rule, argument, value):
    with pytest.raises(ValueError, match=argument):
        make_config(rule, **{argument: value})


def test_make_config_rejects_unknown_rule():
    with pytest.raises(ValueError, match="rule"):
        make_config("lbfgs")


def test_bad_gradient_or_state_raises_naming_it():
    w = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match="dw"):
        sgd(w, np.zeros(4, dtype=np.float32), {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="dw"):
        sgd(w, np.zeros(3, dtype=np.float64), {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="w must be"):
        sgd(np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64), {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="velocity"):
        sgd_momentum(w, np.zeros_like(w), {"velocity": np.zeros(2, dtype=np.float32)})


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_chunked_and_strided_updates_equal_the_whole_array_update(name, monkeypatch):
    rule = UPDATE_RULES[name]
    rng = np.random.default_rng(1)
    start = rng.standard_normal((6, 5))
    gradients = [rng.standard_normal((6, 5)) for _ in range(3)]
    whole, config_whole = start.copy(), make_config(name, learning_rate=0.1)
    for gradient in gradients:
        whole, config_whole = rule(whole, gradient, config_whole)
    monkeypatch.setattr("hpsearch.nn.optim.CHUNK_ELEMENTS", 4)
    chunked, config_chunked = start.copy(), make_config(name, learning_rate=0.1)
    strided, config_strided = np.asfortranarray(start), make_config(name, learning_rate=0.1)
    for gradient in gradients:
        chunked, config_chunked = rule(chunked, gradient, config_chunked)
        strided, config_strided = rule(strided, gradient, config_strided)
    np.testing.assert_allclose(chunked, whole, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(strided, whole, rtol=1e-14, atol=1e-15)
