"""Initializers: variances against the formulas, sparsity, dtypes, and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.nn.init import INIT_NAMES, default_init, init_bias, init_weights

FAN_IN, FAN_OUT = 800, 400


@pytest.mark.parametrize(
    ("name", "expected_var"),
    [
        ("small", 0.01**2),
        ("calibrated", 1 / FAN_IN),
        ("glorot", 2 / (FAN_IN + FAN_OUT)),
        ("he", 2 / FAN_IN),
    ],
)
def test_dense_init_variance_matches_formula(name: str, expected_var: float) -> None:
    w = init_weights(name, FAN_IN, FAN_OUT, np.random.default_rng(0), dtype=np.float64)
    assert w.shape == (FAN_IN, FAN_OUT)
    assert abs(w.mean()) < 4 * math.sqrt(expected_var / w.size)
    assert w.var() == pytest.approx(expected_var, rel=0.03)


def test_sparse_init_connects_each_unit_to_a_fixed_number_of_inputs() -> None:
    w = init_weights("sparse", FAN_IN, FAN_OUT, np.random.default_rng(1), sparse_connections=10)
    np.testing.assert_array_equal((w != 0).sum(axis=0), np.full(FAN_OUT, 10))
    assert w[w != 0].var() == pytest.approx(0.01**2, rel=0.05)
    small = init_weights("sparse", 4, 3, np.random.default_rng(1), sparse_connections=10)
    assert np.all(small != 0)


def test_init_is_reproducible_and_keeps_dtype() -> None:
    for name in INIT_NAMES:
        first = init_weights(name, 30, 20, np.random.default_rng(5))
        second = init_weights(name, 30, 20, np.random.default_rng(5))
        assert first.dtype == np.float32
        np.testing.assert_array_equal(first, second)
    assert init_weights("he", 3, 2, np.random.default_rng(0), dtype=np.float64).dtype == np.float64


def test_zero_init_is_refused_with_the_symmetry_explanation() -> None:
    rng = np.random.default_rng(0)
    for name in ("zero", "zeros"):
        with pytest.raises(ValueError, match="same gradient"):
            init_weights(name, 3, 2, rng)
    for name in ("small", "sparse"):
        with pytest.raises(ValueError, match=r"scale .*same gradient"):
            init_weights(name, 3, 2, rng, scale=0.0)


def test_bad_arguments_name_themselves() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="name must be one of"):
        init_weights("xavier_uniform", 3, 2, rng)
    with pytest.raises(TypeError, match="name must be a string"):
        init_weights(None, 3, 2, rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fan_in"):
        init_weights("he", 0, 2, rng)
    with pytest.raises(ValueError, match="fan_out"):
        init_weights("he", 3, 2.5, rng)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rng"):
        init_weights("he", 3, 2, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype"):
        init_weights("he", 3, 2, rng, dtype=np.int32)
    with pytest.raises(ValueError, match="sparse_connections"):
        init_weights("sparse", 3, 2, rng, sparse_connections=0)
    with pytest.raises(ValueError, match="activation"):
        default_init("softplus")


def test_default_init_follows_the_notes() -> None:
    for activation in ("relu", "leaky_relu", "prelu", "maxout"):
        assert default_init(activation) == "he"
    for activation in ("tanh", "sigmoid"):
        assert default_init(activation) == "calibrated"


def test_bias_is_zero_or_a_small_constant() -> None:
    np.testing.assert_array_equal(init_bias(3), np.zeros(3, np.float32))
    bias = init_bias(4, 0.01, dtype=np.float64)
    assert bias.dtype == np.float64
    np.testing.assert_array_equal(bias, np.full(4, 0.01))
