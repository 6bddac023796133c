"""Layers: float64 centered-difference gradient checks, hand-worked values, dtypes, bad input."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hpsearch.nn import layers

SMOOTH_TOLERANCE = 1e-7


def numeric_gradient(f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """d sum(f() * dout) / dx by centered differences, perturbing x in place."""
    grad = np.zeros_like(x)
    h = 1e-5
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + h
        plus = float(np.sum(f() * dout))
        x[index] = saved - h
        minus = float(np.sum(f() * dout))
        x[index] = saved
        grad[index] = (plus - minus) / (2 * h)
    return grad


def max_relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    diff = np.abs(analytic - numeric)
    ratio = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
    return float(ratio.max())


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random values with |v| in [0.1, 1.5]: no ReLU kink within h = 1e-5."""
    return rng.uniform(0.1, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def test_affine_gradients_match_centered_differences(rng: np.random.Generator) -> None:
    x, w, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)
    dout = rng.normal(size=(4, 3))
    out, cache = layers.affine_forward(x, w, b)
    np.testing.assert_allclose(out, x @ w + b)
    dx, dw, db = layers.affine_backward(dout, cache)
    assert dx is not None
    for analytic, array in ((dx, x), (dw, w), (db, b)):
        numeric = numeric_gradient(lambda: layers.affine_forward(x, w, b)[0], array, dout)
        assert max_relative_error(analytic, numeric) < SMOOTH_TOLERANCE


def test_affine_backward_can_skip_dx(rng: np.random.Generator) -> None:
    x, w, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)
    dout = rng.normal(size=(4, 3))
    _, cache = layers.affine_forward(x, w, b)
    dx, dw, db = layers.affine_backward(dout, cache, need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dw, x.T @ dout)
    np.testing.assert_allclose(db, dout.sum(axis=0))


@pytest.mark.parametrize(
    ("forward", "backward"),
    [
        (layers.relu_forward, layers.relu_backward),
        (lambda x: layers.leaky_relu_forward(x, 0.1), layers.leaky_relu_backward),
        (layers.tanh_forward, layers.tanh_backward),
        (layers.sigmoid_forward, layers.sigmoid_backward),
    ],
    ids=["relu", "leaky_relu", "tanh", "sigmoid"],
)
def test_activation_gradients_match_centered_differences(
    forward: Callable, backward: Callable, rng: np.random.Generator
) -> None:
    x = away_from_zero(rng, (5, 6))
    dout = rng.normal(size=(5, 6))
    _, cache = forward(x)
    dx = backward(dout, cache)
    numeric = numeric_gradient(lambda: forward(x)[0], x, dout)
    assert max_relative_error(dx, numeric) < SMOOTH_TOLERANCE


def test_prelu_gradients_for_input_and_slopes(rng: np.random.Generator) -> None:
    x = away_from_zero(rng, (6, 4))
    alpha = rng.uniform(0.05, 0.5, 4)
    dout = rng.normal(size=(6, 4))
    _, cache = layers.prelu_forward(x, alpha)
    dx, dalpha = layers.prelu_backward(dout, cache)
    for analytic, array in ((dx, x), (dalpha, alpha)):
        numeric = numeric_gradient(lambda: layers.prelu_forward(x, alpha)[0], array, dout)
        assert max_relative_error(analytic, numeric) < SMOOTH_TOLERANCE


def test_maxout_gradients_match_centered_differences(rng: np.random.Generator) -> None:
    x, w, b = rng.normal(size=(5, 4)), rng.normal(size=(4, 3 * 3)), rng.normal(size=9)
    out, cache = layers.maxout_forward(x, w, b, pieces=3)
    z = (x @ w + b).reshape(5, 3, 3)  # piece-major columns: (N, pieces, M)
    ordered = np.sort(z, axis=1)
    assert np.min(ordered[:, -1] - ordered[:, -2]) > 1e-3  # no kink within h
    np.testing.assert_allclose(out, z.max(axis=1))
    dout = rng.normal(size=(5, 3))
    dx, dw, db = layers.maxout_backward(dout, cache)
    for analytic, array in ((dx, x), (dw, w), (db, b)):
        numeric = numeric_gradient(lambda: layers.maxout_forward(x, w, b, 3)[0], array, dout)
        assert max_relative_error(analytic, numeric) < SMOOTH_TOLERANCE


@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_gradients_match_centered_differences(
    mode: str, rng: np.random.Generator
) -> None:
    x = rng.normal(3.0, 2.0, size=(8, 4))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    dout = rng.normal(size=(8, 4))
    stats = {"running_mean": rng.normal(size=4), "running_var": rng.uniform(0.5, 2.0, 4)}

    def forward() -> np.ndarray:
        return layers.batchnorm_forward(x, gamma, beta, {"mode": mode, **stats})[0]

    _, cache = layers.batchnorm_forward(x, gamma, beta, {"mode": mode, **stats})
    dx, dgamma, dbeta = layers.batchnorm_backward(dout, cache)
    for analytic, array in ((dx, x), (dgamma, gamma), (dbeta, beta)):
        numeric = numeric_gradient(forward, array, dout)
        assert max_relative_error(analytic, numeric) < SMOOTH_TOLERANCE


def test_dropout_gradient_under_fixed_seed(rng: np.random.Generator) -> None:
    x = rng.normal(size=(6, 5))
    dout = rng.normal(size=(6, 5))

    def forward() -> np.ndarray:
        return layers.dropout_forward(x, 0.6, "train", np.random.default_rng(7))[0]

    _, cache = layers.dropout_forward(x, 0.6, "train", np.random.default_rng(7))
    dx = layers.dropout_backward(dout, cache)
    assert max_relative_error(dx, numeric_gradient(forward, x, dout)) < SMOOTH_TOLERANCE


def test_affine_relu_composite_gradients(rng: np.random.Generator) -> None:
    x, w, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)
    assert np.min(np.abs(x @ w + b)) > 1e-3
    dout = rng.normal(size=(4, 3))
    out, cache = layers.affine_relu_forward(x, w, b)
    np.testing.assert_allclose(out, np.maximum(x @ w + b, 0))
    dx, dw, db = layers.affine_relu_backward(dout, cache)
    for analytic, array in ((dx, x), (dw, w), (db, b)):
        numeric = numeric_gradient(lambda: layers.affine_relu_forward(x, w, b)[0], array, dout)
        assert max_relative_error(analytic, numeric) < SMOOTH_TOLERANCE


def test_affine_batchnorm_relu_composite_gradients(rng: np.random.Generator) -> None:
    x, w, b = rng.normal(size=(6, 5)), rng.normal(size=(5, 4)), rng.normal(size=4)
    gamma, beta = rng.uniform(0.5, 1.5, 4), rng.normal(size=4)
    dout = rng.normal(size=(6, 4))

    def forward() -> np.ndarray:
        return layers.affine_batchnorm_relu_forward(x, w, b, gamma, beta, {"mode": "train"})[0]

    _, cache = layers.affine_batchnorm_relu_forward(x, w, b, gamma, beta, {"mode": "train"})
    bn_cache = cache[1]
    assert np.min(np.abs(bn_cache[0] * gamma + beta)) > 1e-3  # no ReLU kink within h
    dx, dw, db, dgamma, dbeta = layers.affine_batchnorm_relu_backward(dout, cache)
    assert dx is not None
    for analytic, array in ((dx, x), (dw, w), (dgamma, gamma), (dbeta, beta)):
        numeric = numeric_gradient(forward, array, dout)
        assert max_relative_error(analytic, numeric) < SMOOTH_TOLERANCE
    # batchnorm subtracts the batch mean, so the affine bias has exactly zero gradient
    np.testing.assert_allclose(db, 0.0, atol=1e-12)
    np.testing.assert_allclose(numeric_gradient(forward, b, dout), 0.0, atol=1e-9)


def test_hand_worked_activation_values() -> None:
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(layers.relu_forward(x)[0], [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(layers.leaky_relu_forward(x, 0.1)[0], [[-0.2, 0.0, 3.0]])
    np.testing.assert_allclose(layers.prelu_forward(x, np.array([0.5, 0.5, 0.5]))[0], [[-1, 0, 3]])
    np.testing.assert_allclose(layers.sigmoid_forward(x)[0], 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(layers.tanh_forward(x)[0], np.tanh(x))
    grad = layers.relu_backward(np.ones((1, 3)), layers.relu_forward(x)[1])
    np.testing.assert_array_equal(grad, [[0.0, 0.0, 1.0]])


def test_sigmoid_is_finite_and_saturates_for_huge_inputs() -> None:
    for dtype in (np.float32, np.float64):
        x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out, cache = layers.sigmoid_forward(x)
            dx = layers.sigmoid_backward(np.ones_like(x), cache)
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
        assert out[0] == 0.0 and out[2] == 0.5 and out[4] == 1.0


def test_relu_inplace_overwrites_only_when_asked(rng: np.random.Generator) -> None:
    x = away_from_zero(rng, (3, 4))
    original = x.copy()
    layers.relu_forward(x)
    np.testing.assert_array_equal(x, original)
    out, _ = layers.relu_forward(x, inplace=True)
    assert out is x
    np.testing.assert_array_equal(x, np.maximum(original, 0))


def test_maxout_column_layout_is_piece_major() -> None:
    x = np.array([[1.0]])
    w = np.array([[1.0, 5.0, 3.0, 2.0]])  # M = 2 units, pieces = 2: unit 0 <- cols 0, 2
    out, _ = layers.maxout_forward(x, w, np.zeros(4), pieces=2)
    np.testing.assert_array_equal(out, [[3.0, 5.0]])


def test_batchnorm_train_output_is_standardized_and_updates_running_stats(
    rng: np.random.Generator,
) -> None:
    x = rng.normal(5.0, 3.0, size=(200, 6))
    bn_param = {"mode": "train", "momentum": 0.9, "eps": 1e-5}
    out, _ = layers.batchnorm_forward(x, np.ones(6), np.zeros(6), bn_param)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(bn_param["running_var"], 0.9 + 0.1 * x.var(axis=0))


def test_batchnorm_test_mode_uses_running_stats() -> None:
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    bn_param = {"mode": "test", "eps": 0.0, "running_mean": np.array([1.0, 2.0]),
                "running_var": np.array([4.0, 16.0])}  # fmt: skip
    out, _ = layers.batchnorm_forward(x, np.array([2.0, 1.0]), np.array([0.5, -1.0]), bn_param)
    np.testing.assert_allclose(out, [[0.5, -1.0], [2.5, 0.0]])
    np.testing.assert_array_equal(bn_param["running_mean"], [1.0, 2.0])


def test_dropout_keeps_expected_activation_in_train_mode() -> None:
    x = np.full((400, 250), 2.0)
    out, _ = layers.dropout_forward(x, 0.7, "train", np.random.default_rng(0))
    assert abs(out.mean() - 2.0) < 0.02
    assert abs(np.mean(out == 0.0) - 0.3) < 0.01
    np.testing.assert_allclose(out[out != 0], 2.0 / 0.7)


def test_dropout_is_the_identity_in_test_mode() -> None:
    x = np.arange(6.0).reshape(2, 3)
    out, cache = layers.dropout_forward(x, 0.5, "test", np.random.default_rng(0))
    assert out is x
    dout = np.ones((2, 3))
    assert layers.dropout_backward(dout, cache) is dout


LAYER_CASES: list[tuple[str, Callable, Callable]] = [
    ("relu", layers.relu_forward, layers.relu_backward),
    ("leaky_relu", lambda x: layers.leaky_relu_forward(x, 0.01), layers.leaky_relu_backward),
    ("tanh", layers.tanh_forward, layers.tanh_backward),
    ("sigmoid", layers.sigmoid_forward, layers.sigmoid_backward),
    ("dropout", lambda x: layers.dropout_forward(x, 0.5, "train", np.random.default_rng(0)),
     layers.dropout_backward),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "forward", "backward"), LAYER_CASES, ids=[c[0] for c in LAYER_CASES]
)
def test_float32_stays_float32_for_activations(
    name: str, forward: Callable, backward: Callable, rng: np.random.Generator
) -> None:
    x = rng.normal(size=(4, 3)).astype(np.float32)
    out, cache = forward(x)
    assert out.dtype == np.float32
    assert backward(np.ones_like(out), cache).dtype == np.float32


def test_float32_stays_float32_for_parametric_layers(rng: np.random.Generator) -> None:
    f32 = np.float32
    x = rng.normal(size=(4, 3)).astype(f32)
    w, b = rng.normal(size=(3, 4)).astype(f32), np.zeros(4, f32)
    for forward, backward in (
        (lambda: layers.affine_forward(x, w, b), layers.affine_backward),
        (lambda: layers.affine_relu_forward(x, w, b), layers.affine_relu_backward),
        (lambda: layers.maxout_forward(x, w, b, 2), layers.maxout_backward),
        (lambda: layers.prelu_forward(x, np.full(3, 0.1, f32)), layers.prelu_backward),
        (lambda: layers.batchnorm_forward(x, np.ones(3, f32), np.zeros(3, f32), {"mode": "train"}),
         layers.batchnorm_backward),
    ):  # fmt: skip
        out, cache = forward()
        assert out.dtype == f32
        assert all(g.dtype == f32 for g in backward(np.ones_like(out), cache))
    bn_param = {"mode": "train"}
    layers.batchnorm_forward(x, np.ones(3, f32), np.zeros(3, f32), bn_param)
    assert bn_param["running_mean"].dtype == f32 and bn_param["running_var"].dtype == f32


def test_bad_input_names_the_argument() -> None:
    x, w, b = np.ones((2, 3)), np.ones((3, 4)), np.ones(4)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="shapes x"):
        layers.affine_forward(x, np.ones((2, 4)), b)
    with pytest.raises(TypeError, match="w has dtype float32"):
        layers.affine_forward(x, w.astype(np.float32), b)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        layers.relu_forward(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        layers.affine_forward(np.ones(3), w, b)
    with pytest.raises(ValueError, match="alpha"):
        layers.leaky_relu_forward(x, 1.5)
    with pytest.raises(ValueError, match="alpha must have shape"):
        layers.prelu_forward(x, np.ones(4))
    with pytest.raises(ValueError, match="pieces"):
        layers.maxout_forward(x, np.ones((3, 5)), np.ones(5), pieces=2)
    with pytest.raises(ValueError, match="mode"):
        layers.batchnorm_forward(x, np.ones(3), np.ones(3), {"mode": "eval"})
    with pytest.raises(ValueError, match="momentum"):
        layers.batchnorm_forward(x, np.ones(3), np.ones(3), {"mode": "train", "momentum": 1.5})
    for keep_prob in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="keep_prob"):
            layers.dropout_forward(x, keep_prob, "train", rng)
    with pytest.raises(ValueError, match="mode"):
        layers.dropout_forward(x, 0.5, "eval", rng)
    with pytest.raises(TypeError, match="rng"):
        layers.dropout_forward(x, 0.5, "train", 42)  # type: ignore[arg-type]
