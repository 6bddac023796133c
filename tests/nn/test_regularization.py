"""Weight penalties and max-norm against hand numbers and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from hpsearch.nn.regularization import (
    elastic_net_penalty,
    elastic_net_value,
    is_regularized,
    l1_penalty,
    l2_penalty,
    max_norm_project,
    weight_penalty,
)

W = [[1.0, -2.0], [3.0, 0.0]]


def centered_difference(function, w, h=1e-6):
    """Numerical gradient of scalar `function(w)` by centered differences (float64)."""
    gradient = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        saved = w[index]
        w[index] = saved + h
        plus = function(w)
        w[index] = saved - h
        minus = function(w)
        w[index] = saved
        gradient[index] = (plus - minus) / (2 * h)
    return gradient


def relative_error(analytic, numeric):
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-12)
    return float(np.max(np.abs(analytic - numeric) / scale))


def test_l2_penalty_by_hand():
    loss, dw = l2_penalty(np.array(W), 0.1)
    assert loss == pytest.approx(0.5 * 0.1 * (1 + 4 + 9), rel=1e-12)
    np.testing.assert_allclose(dw, [[0.1, -0.2], [0.3, 0.0]], rtol=1e-12)


def test_l1_penalty_by_hand_with_zero_subgradient_at_zero():
    loss, dw = l1_penalty(np.array(W), 0.1)
    assert loss == pytest.approx(0.1 * (1 + 2 + 3), rel=1e-12)
    np.testing.assert_allclose(dw, [[0.1, -0.1], [0.1, 0.0]], rtol=1e-12)


def test_elastic_net_is_the_sum_of_l1_and_l2():
    loss, dw = elastic_net_penalty(np.array(W), l1=0.1, l2=0.2)
    assert loss == pytest.approx(0.1 * 6 + 0.5 * 0.2 * 14, rel=1e-12)
    np.testing.assert_allclose(dw, [[0.3, -0.5], [0.7, 0.0]], rtol=1e-12)


@pytest.mark.parametrize(("l1", "l2"), [(0.1, 0.2), (0.0, 0.2), (0.1, 0.0), (0.0, 0.0)])
def test_elastic_net_value_by_hand_and_equal_to_the_penalty(l1, l2):
    assert elastic_net_value(np.array(W), l1, l2) == pytest.approx(l1 * 6 + 0.5 * l2 * 14)
    w = np.random.default_rng(0).standard_normal((300, 301)).astype(np.float32)  # > 1 chunk
    value = elastic_net_value(w, l1, l2)
    assert value == pytest.approx(elastic_net_penalty(w, l1, l2)[0], rel=1e-5)


def test_penalties_accumulate_into_an_existing_gradient_in_place():
    grad = np.ones((2, 2))
    loss, dw = elastic_net_penalty(np.array(W), l1=0.1, l2=0.2, accumulate_into=grad)
    assert dw is grad
    assert loss == pytest.approx(0.1 * 6 + 0.5 * 0.2 * 14)
    np.testing.assert_allclose(grad, [[1.3, 0.5], [1.7, 1.0]], rtol=1e-12)
    untouched = np.ones((2, 2))
    assert l2_penalty(np.array(W), 0.0, accumulate_into=untouched)[1] is untouched
    np.testing.assert_array_equal(untouched, np.ones((2, 2)))


@pytest.mark.parametrize(("l1", "l2"), [(0.0, 0.3), (0.2, 0.0), (0.2, 0.3)])
def test_penalty_gradients_pass_the_centered_difference_check(l1, l2):
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 1.0, size=(4, 3)) * rng.choice([-1.0, 1.0], size=(4, 3))
    _, analytic = elastic_net_penalty(w, l1, l2)
    numeric = centered_difference(lambda x: elastic_net_penalty(x, l1, l2)[0], w)
    assert relative_error(analytic, numeric) < 1e-7
    _, analytic_l2 = l2_penalty(w, l2)
    numeric_l2 = centered_difference(lambda x: l2_penalty(x, l2)[0], w)
    assert relative_error(analytic_l2, numeric_l2) < 1e-7


def test_float32_stays_float32():
    w = np.array(W, dtype=np.float32)
    grad = np.zeros_like(w)
    _, dw = elastic_net_penalty(w, 0.1, 0.2, accumulate_into=grad)
    assert dw.dtype == np.float32
    assert l2_penalty(w, 0.1)[1].dtype == np.float32


def make_params():
    """A two-layer parameter dict with batchnorm and PReLU arrays, all ones."""
    shapes = {
        "W1": (2, 3),
        "b1": (3,),
        "gamma1": (3,),
        "beta1": (3,),
        "alpha1": (3,),
        "W2": (3, 2),
        "b2": (2,),
    }
    return {name: np.ones(shape) for name, shape in shapes.items()}


def test_weight_penalty_covers_weights_and_optionally_biases():
    params = make_params()
    loss, grads = weight_penalty(params, l1=0.0, l2=0.5)
    assert loss == pytest.approx(0.5 * 0.5 * 12)
    assert set(grads) == {"W1", "W2"}
    loss, grads = weight_penalty(params, l1=1.0, l2=0.0, regularize_biases=True)
    assert loss == pytest.approx(12 + 5)
    assert set(grads) == {"W1", "W2", "b1", "b2"}


def test_weight_penalty_accumulates_into_grads_in_place():
    params = make_params()
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    originals = dict(grads)
    loss, returned = weight_penalty(params, l1=0.0, l2=0.5, grads=grads)
    assert returned is grads
    assert all(grads[name] is originals[name] for name in grads)
    np.testing.assert_allclose(grads["W1"], 0.5)
    np.testing.assert_array_equal(grads["b1"], 0.0)
    np.testing.assert_array_equal(grads["gamma1"], 0.0)
    assert loss == pytest.approx(3.0)


def test_weight_penalty_with_zero_strengths_computes_nothing():
    grads = {"W1": np.zeros((2, 3))}
    assert weight_penalty(make_params(), 0.0, 0.0, grads=grads) == (0.0, grads)
    np.testing.assert_array_equal(grads["W1"], 0.0)


@pytest.mark.parametrize(
    ("name", "with_biases", "expected"),
    [
        ("W1", False, True),
        ("b1", False, False),
        ("b1", True, True),
        ("beta1", True, False),
        ("gamma2", True, False),
        ("alpha1", True, False),
    ],
)
def test_is_regularized(name, with_biases, expected):
    assert is_regularized(name, with_biases) is expected


def test_max_norm_scales_long_columns_and_leaves_short_ones_bit_for_bit():
    w = np.array(
        [[3.0, 0.6, 0.0, 3.0], [4.0, 0.8, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=np.float64
    )
    original = w.copy()
    result = max_norm_project(w, 3.0)
    assert result is w
    np.testing.assert_allclose(w[:, 0], [1.8, 2.4, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(w[:, 1:], original[:, 1:])


def test_max_norm_keeps_every_norm_within_the_radius_in_float32():
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((50, 40)) * rng.uniform(0.05, 1.0, size=40)).astype(np.float32)
    short = np.linalg.norm(w.astype(np.float64), axis=0) <= 3.0
    before = w.copy()
    max_norm_project(w, 3.0)
    assert w.dtype == np.float32
    norms = np.linalg.norm(w.astype(np.float64), axis=0)
    assert short.any() and not short.all()
    assert np.all(norms <= 3.0 * (1 + 1e-6))
    np.testing.assert_allclose(norms[~short], 3.0, rtol=1e-6)
    np.testing.assert_array_equal(w[:, short], before[:, short])


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: l2_penalty(np.ones(2), -0.1), "strength"),
        (lambda: l1_penalty(np.ones(2), float("nan")), "strength"),
        (lambda: elastic_net_penalty(np.ones(2), -1.0, 0.1), "l1"),
        (lambda: elastic_net_penalty(np.ones(2), 0.1, -1.0), "l2"),
        (lambda: weight_penalty(make_params(), 0.0, -0.5), "l2"),
        (lambda: weight_penalty(make_params(), 0.0, 0.5, grads={}), "grads"),
        (lambda: l2_penalty(np.ones(2), 0.1, accumulate_into=np.ones(3)), "accumulate_into"),
        (lambda: l2_penalty([1.0, 2.0], 0.1), "w"),
        (lambda: max_norm_project(np.ones((2, 2)), 0.0), "max_norm"),
        (lambda: max_norm_project(np.ones(3), 1.0), "w"),
    ],
)
def test_bad_arguments_raise_naming_them(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
