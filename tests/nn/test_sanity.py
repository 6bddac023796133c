"""The notes' sanity checks, on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.nn.model import MLPConfig
from hpsearch.nn.sanity import (
    initial_loss_check,
    overfit_small_subset_check,
    regularization_raises_loss_check,
)


def data(classes: int = 10, rows: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((rows, 20)), np.arange(rows) % classes


def test_initial_softmax_loss_is_ln_c() -> None:
    X, y = data()
    config = MLPConfig(input_dim=20, output_dim=10, hidden_sizes=(50,), l2=1.0)
    result = initial_loss_check(config, X, y, np.random.default_rng(1))
    assert result.expected == pytest.approx(math.log(10))
    assert result.passed and abs(result.measured - 2.302) < 0.02


def test_initial_svm_loss_is_c_minus_1() -> None:
    X, y = data()
    config = MLPConfig(input_dim=20, output_dim=10, hidden_sizes=(50,), loss="svm")
    result = initial_loss_check(config, X, y, np.random.default_rng(1))
    assert result.expected == 9.0 and result.passed


def test_regularization_raises_the_loss() -> None:
    X, y = data()
    config = MLPConfig(input_dim=20, output_dim=10, hidden_sizes=(50,))
    result = regularization_raises_loss_check(config, X, y, np.random.default_rng(1))
    assert result.passed and result.loss_with > result.loss_without


def test_overfits_twenty_examples() -> None:
    X, y = data()
    config = MLPConfig(input_dim=20, output_dim=10, hidden_sizes=(50,), l2=0.1, keep_prob=0.5)
    result = overfit_small_subset_check(config, X, y, np.random.default_rng(1))
    assert result.passed and result.accuracy == 1.0 and result.final_loss < 0.05
    assert result.epochs < 300


def test_bad_arguments() -> None:
    X, y = data()
    config = MLPConfig(input_dim=20, output_dim=10, loss="l2")
    with pytest.raises(ValueError, match="loss"):
        initial_loss_check(config, X, y, np.random.default_rng(1))
    with pytest.raises(ValueError, match="l2"):
        regularization_raises_loss_check(config, X, y, np.random.default_rng(1), l2=-1.0)
