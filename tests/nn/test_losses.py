"""Losses: hand-worked values, float64 gradient checks, extreme logits, dtypes, bad input."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import get_args

import numpy as np
import pytest

from hpsearch.config import LossName
from hpsearch.nn import losses

SMOOTH_TOLERANCE = 1e-7


def numeric_gradient(loss: Callable[[np.ndarray], float], scores: np.ndarray) -> np.ndarray:
    grad = np.zeros_like(scores)
    h = 1e-5
    for index in np.ndindex(scores.shape):
        saved = scores[index]
        scores[index] = saved + h
        plus = loss(scores)
        scores[index] = saved - h
        minus = loss(scores)
        scores[index] = saved
        grad[index] = (plus - minus) / (2 * h)
    return grad


def max_relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    diff = np.abs(analytic - numeric)
    return float(np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0).max())


def make_case(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scores and targets for one loss, kept >= 1e-3 away from every kink."""
    n, c = 5, 4
    if name == "hierarchical_softmax":
        return rng.normal(size=(n, c - 1)), rng.integers(0, c, n)
    if name == "attribute_hinge":
        return rng.uniform(-2.9, 2.9, (n, c)), rng.choice([-1, 1], (n, c))
    if name == "attribute_logistic":
        return rng.normal(size=(n, c)), rng.integers(0, 2, (n, c))
    if name in ("l2", "l1"):
        return rng.normal(size=(n, c)), rng.normal(size=(n, c))
    return rng.normal(scale=2.0, size=(n, c)), rng.integers(0, c, n)


def distance_to_kink(name: str, scores: np.ndarray, y: np.ndarray) -> float:
    if name in ("svm", "squared_hinge"):
        rows = np.arange(len(y))
        margins = scores - scores[rows, y][:, None] + 1
        margins[rows, y] = np.inf
        return float(np.abs(margins).min())
    if name == "attribute_hinge":
        return float(np.abs(1 - y * scores).min())
    if name == "l1":
        return float(np.abs(scores - y).min())
    return math.inf


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_gradient_matches_centered_differences(name: str) -> None:
    loss_fn = losses.LOSSES[name]
    scores, y = make_case(name, np.random.default_rng(sorted(losses.LOSSES).index(name)))
    assert distance_to_kink(name, scores, y) > 1e-3
    _, dscores = loss_fn(scores.copy(), y)
    numeric = numeric_gradient(lambda s: loss_fn(s, y)[0], scores)
    assert max_relative_error(dscores, numeric) < SMOOTH_TOLERANCE


def test_zero_scores_give_the_textbook_initial_losses() -> None:
    y = np.array([0, 3, 7, 9])
    zeros = np.zeros((4, 10))
    assert losses.softmax_loss(zeros, y)[0] == pytest.approx(math.log(10))
    assert losses.svm_loss(zeros, y)[0] == pytest.approx(9.0)
    assert losses.squared_hinge_loss(zeros, y)[0] == pytest.approx(9.0)
    assert losses.hierarchical_softmax_loss(np.zeros((4, 7)), y[:4] % 8)[0] == pytest.approx(
        math.log(8)
    )
    assert losses.attribute_hinge_loss(zeros, np.ones((4, 10)))[0] == pytest.approx(10.0)
    assert losses.attribute_logistic_loss(zeros, np.ones((4, 10)))[0] == pytest.approx(
        10 * math.log(2)
    )


def test_hand_worked_softmax_case() -> None:
    scores = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    loss, dscores = losses.softmax_loss(scores, np.array([2, 0]))
    # row 0: log(1 + e^-1 + e^-2) = 0.40760596; row 1: log 3 = 1.09861229
    assert loss == pytest.approx(0.7531091265562451, rel=1e-12)
    probs_row0 = [0.09003057317038046, 0.24472847105479764, 0.6652409557748218]
    expected = np.array([probs_row0, [1 / 3, 1 / 3, 1 / 3]]) - np.array([[0, 0, 1], [1, 0, 0]])
    np.testing.assert_allclose(dscores, expected / 2, rtol=1e-12)


def test_hand_worked_svm_case() -> None:
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0]])
    loss, dscores = losses.svm_loss(scores, np.array([0, 1]))
    # row 0: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9; row 1: 0
    assert loss == pytest.approx(1.45)
    np.testing.assert_allclose(dscores, [[-0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    loss_sq, dscores_sq = losses.squared_hinge_loss(scores, np.array([0, 1]))
    assert loss_sq == pytest.approx(2.9**2 / 2)
    np.testing.assert_allclose(dscores_sq, [[-2.9, 2.9, 0.0], [0.0, 0.0, 0.0]])


def test_hand_worked_attribute_and_regression_cases() -> None:
    scores = np.array([[2.0, 0.5, -0.5]])
    loss, dscores = losses.attribute_hinge_loss(scores, np.array([[1, 1, 1]]))
    assert loss == pytest.approx(0.0 + 0.5 + 1.5)
    np.testing.assert_allclose(dscores, [[0.0, -1.0, -1.0]])
    loss, dscores = losses.attribute_logistic_loss(
        np.array([[0.0, math.log(3)]]), np.array([[1, 0]])
    )
    assert loss == pytest.approx(math.log(2) + math.log(4))  # -log(1/2) - log(1 - 3/4)
    np.testing.assert_allclose(dscores, [[-0.5, 0.75]])
    targets = np.array([[1.0, 1.0, 1.0]])
    assert losses.l2_loss(scores, targets)[0] == pytest.approx(0.5 * (1 + 0.25 + 2.25))
    np.testing.assert_allclose(losses.l2_loss(scores, targets)[1], [[1.0, -0.5, -1.5]])
    assert losses.l1_loss(scores, targets)[0] == pytest.approx(1 + 0.5 + 1.5)
    np.testing.assert_allclose(losses.l1_loss(scores, targets)[1], [[1.0, -1.0, -1.0]])


def test_hierarchical_tree_is_balanced_in_class_order() -> None:
    nodes, signs = losses.hierarchical_softmax_tree(4)
    # root 0 splits {0,1} | {2,3}; node 1 splits 0 | 1; node 2 splits 2 | 3
    np.testing.assert_array_equal(nodes, [[0, 1], [0, 1], [0, 2], [0, 2]])
    np.testing.assert_array_equal(signs, [[-1, -1], [-1, 1], [1, -1], [1, 1]])
    assert losses.num_outputs("hierarchical_softmax", 10) == 9


def test_hierarchical_probabilities_sum_to_one_and_predict() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(6, 6))  # 7 classes
    log_probs = losses.hierarchical_softmax_log_probs(scores, 7)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0)
    y = np.array([0, 1, 2, 3, 4, 6])
    loss, _ = losses.hierarchical_softmax_loss(scores, y)
    assert loss == pytest.approx(-log_probs[np.arange(6), y].mean())
    picks_class_2 = np.array([[5.0, 0.0, -5.0]])  # root right, then node 2 left
    np.testing.assert_array_equal(losses.hierarchical_softmax_predict(picks_class_2, 4), [2])


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_stay_finite_and_keep_dtype(name: str, dtype: type) -> None:
    scores, y = make_case(name, np.random.default_rng(0))
    scores = np.where(scores > 0, 1e4, -1e4).astype(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dscores = losses.LOSSES[name](scores, y)
    assert isinstance(loss, float) and math.isfinite(loss)
    assert dscores.dtype == dtype and dscores.shape == scores.shape
    assert np.all(np.isfinite(dscores))


@pytest.mark.parametrize("row_offset", [0.0, 5.0, 60.0, 3000.0])
def test_softmax_matches_the_formula_when_rows_have_very_different_ranges(
    row_offset: float,
) -> None:
    scores = np.random.default_rng(2).normal(size=(4, 6))
    scores[1] += row_offset  # far rows take the per-row shift, near rows the batch shift
    y = np.array([0, 5, 2, 3])
    row_max = scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scores - row_max).sum(axis=1)) + row_max[:, 0]
    expected_loss = float(np.mean(log_norm - scores[np.arange(4), y]))
    probs = np.exp(scores - log_norm[:, None])
    probs[np.arange(4), y] -= 1
    loss, dscores = losses.softmax_loss(scores, y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(dscores, probs / 4, rtol=1e-10, atol=1e-300)


def test_softmax_inplace_reuses_the_scores_buffer() -> None:
    scores = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 4])
    expected_loss, expected = losses.softmax_loss(scores, y)
    loss, dscores = losses.softmax_loss(scores, y, inplace=True)
    assert dscores is scores
    assert loss == pytest.approx(expected_loss)
    np.testing.assert_allclose(dscores, expected, rtol=1e-6)
    strided = np.asfortranarray(expected)  # not C-contiguous: a fresh buffer is returned
    _, from_strided = losses.softmax_loss(strided, y, inplace=True)
    np.testing.assert_allclose(from_strided, losses.softmax_loss(expected.copy(), y)[1])


def test_losses_table_matches_the_config_names() -> None:
    assert set(losses.LOSSES) == set(get_args(LossName))
    assert losses.num_outputs("softmax", 10) == 10
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.num_outputs("hinge", 10)


@pytest.mark.parametrize("name", ["softmax", "svm", "squared_hinge", "hierarchical_softmax"])
def test_class_losses_refuse_bad_labels(name: str) -> None:
    loss_fn = losses.LOSSES[name]
    scores = np.zeros((3, 4))
    with pytest.raises(TypeError, match="y must be an integer"):
        loss_fn(scores, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, "):
        loss_fn(scores, np.array([0, 1, 5]))
    with pytest.raises(ValueError, match="y must hold labels"):
        loss_fn(scores, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="y must have shape"):
        loss_fn(scores, np.array([0, 1]))


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_losses_refuse_nan_and_malformed_scores(name: str) -> None:
    scores, y = make_case(name, np.random.default_rng(0))
    for row, column in np.ndindex(scores.shape):
        bad = scores.copy()
        bad[row, column] = np.nan
        with pytest.raises(ValueError, match="scores contains NaN"):
            losses.LOSSES[name](bad, y)
    with pytest.raises(ValueError, match="scores must have shape"):
        losses.LOSSES[name](scores[0], y)
    with pytest.raises(TypeError, match="scores must be a floating-point"):
        losses.LOSSES[name](np.zeros((5, 4), dtype=np.int64), y)


def test_target_losses_refuse_bad_targets() -> None:
    scores = np.zeros((2, 3))
    with pytest.raises(ValueError, match="y must only hold"):
        losses.attribute_hinge_loss(scores, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="y must only hold"):
        losses.attribute_logistic_loss(scores, np.full((2, 3), -1))
    with pytest.raises(ValueError, match="y must have the shape"):
        losses.l2_loss(scores, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="y contains NaN"):
        losses.l1_loss(scores, np.full((2, 3), np.nan))
