"""Greedy ensemble selection on hand-made validation outputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hpsearch.ensembles import accuracy_of_outputs, combine_outputs, greedy_selection


def two_classes(p_one: list[float]) -> np.ndarray:
    p = np.asarray(p_one)
    return np.stack([1.0 - p, p], axis=1)


# y = [0, 1, 0, 1]; each row: P(class 1) per example.
Y = np.array([0, 1, 0, 1])
A = two_classes([0.10, 0.70, 0.30, 0.45])  # wrong on example 3: 3/4
B = two_classes([0.92, 0.99, 0.01, 0.99])  # wrong on example 0: 3/4, confidently
C = two_classes([0.90, 0.10, 0.90, 0.10])  # wrong everywhere: 0/4
LIBRARY = np.stack([A, B, C])


def best_by_brute_force(library: np.ndarray, y: np.ndarray, size: int) -> float:
    best = 0.0
    for counts in itertools.product(range(size + 1), repeat=len(library)):
        if 0 < sum(counts) <= size:
            weights = np.asarray(counts) / sum(counts)
            best = max(best, accuracy_of_outputs(combine_outputs(library, weights), y, "class"))
    return best


def test_uniform_mean_of_a_and_b_is_not_enough_but_two_a_and_one_b_is() -> None:
    uniform = combine_outputs(LIBRARY[:2], np.array([0.5, 0.5]))
    assert accuracy_of_outputs(uniform, Y, "class") == 0.75
    weighted = combine_outputs(LIBRARY[:2], np.array([2 / 3, 1 / 3]))
    assert accuracy_of_outputs(weighted, Y, "class") == 1.0


def test_greedy_finds_the_known_best_combination_with_replacement() -> None:
    selection = greedy_selection(LIBRARY, Y, "class", max_size=6, init_size=1)
    assert selection.val_accuracy == best_by_brute_force(LIBRARY, Y, 6) == 1.0
    assert selection.counts[0] >= 2  # A picked more than once: replacement
    assert selection.counts[0] > selection.counts[1] >= 1
    assert selection.counts[2] == 0
    assert selection.weights.sum() == pytest.approx(1.0)
    assert np.array_equal(selection.weights, selection.counts / selection.counts.sum())
    achieved = combine_outputs(LIBRARY, selection.weights)
    assert accuracy_of_outputs(achieved, Y, "class") == selection.val_accuracy
    assert list(selection.history) == sorted(selection.history)  # accuracy never drops


def test_greedy_stops_at_max_size_and_when_nothing_improves() -> None:
    assert greedy_selection(LIBRARY, Y, "class", max_size=2, init_size=1).counts.sum() <= 2
    alone = greedy_selection(np.stack([A, C]), Y, "class", max_size=50, init_size=2)
    assert alone.counts.tolist() == [1, 0]  # adding C or A again never helps


@pytest.mark.parametrize("seed", range(8))
def test_greedy_is_never_worse_on_validation_than_its_best_member(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(7, 40, 4)) + 1.5 * np.eye(4)[rng.integers(0, 4, 40)]
    library = np.exp(scores) / np.exp(scores).sum(axis=2, keepdims=True)
    y = rng.integers(0, 4, 40)
    selection = greedy_selection(library, y, "class", max_size=50)
    best_member = max(accuracy_of_outputs(member, y, "class") for member in library)
    assert selection.val_accuracy >= best_member
    assert selection.weights.sum() == pytest.approx(1.0)
    assert 1 <= selection.counts.sum() <= 50


def test_greedy_refuses_bad_shapes_and_sizes() -> None:
    with pytest.raises(ValueError, match="val_outputs"):
        greedy_selection(A, Y, "class")
    with pytest.raises(ValueError, match="max_size"):
        greedy_selection(LIBRARY, Y, "class", max_size=0)
