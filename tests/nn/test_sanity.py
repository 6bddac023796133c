"""The notes' sanity checks, on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.nn.model import MLPConfig
from hpsearch.nn.sanity import (
    OVERFIT_STEPS,
    init_scale_check,
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


def test_overfits_twenty_examples_to_a_tenth_of_their_initial_loss() -> None:
    X, y = data()
    config = MLPConfig(input_dim=20, output_dim=10, hidden_sizes=(50,), l2=0.1, keep_prob=0.5)
    result = overfit_small_subset_check(config, X, y, np.random.default_rng(1))
    assert result.passed and result.accuracy == 1.0
    assert result.final_loss <= 0.1 * result.initial_loss and result.initial_loss > 2.0
    assert 0 < result.epochs < OVERFIT_STEPS


def test_ten_classes_through_one_unit_cannot_be_fit() -> None:
    X, y = data()
    config = MLPConfig(input_dim=20, output_dim=10, hidden_sizes=(1,))
    result = overfit_small_subset_check(config, X, y, np.random.default_rng(1))
    assert not result.passed and result.epochs == OVERFIT_STEPS and result.accuracy < 1.0


def test_the_init_scale_check_measures_the_networks_own_initial_loss() -> None:
    X, y = data()
    he = MLPConfig(input_dim=20, output_dim=10, hidden_sizes=(50,))
    sound = init_scale_check(he, X, y, np.random.default_rng(1))
    assert sound.passed and sound.chance == pytest.approx(math.log(10))
    assert math.log(10) < sound.measured < 3 * math.log(10)
    # No hidden layer, W ~ 10 N(0, 1): scores ~ N(0, 10^2 * 20); the loss is about
    # E[max_j s_j - s_y] ~ 1.5 * 45 ~ 70, i.e. about 30 x ln 10.
    large = MLPConfig(input_dim=20, output_dim=10, hidden_sizes=(), init="small", init_scale=10.0)
    broken = init_scale_check(large, X, y, np.random.default_rng(1))
    assert not broken.passed and 40.0 < broken.measured < 120.0 and broken.max_ratio == 20.0


def test_bad_arguments() -> None:
    X, y = data()
    config = MLPConfig(input_dim=20, output_dim=10, loss="l2")
    with pytest.raises(ValueError, match="loss"):
        initial_loss_check(config, X, y, np.random.default_rng(1))
    with pytest.raises(ValueError, match="l2"):
        regularization_raises_loss_check(config, X, y, np.random.default_rng(1), l2=-1.0)
