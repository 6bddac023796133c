"""Seeded splits and target encoding shared by every source."""

from __future__ import annotations

import numpy as np
import pytest

from hpsearch.data.datasets import encode_targets, split_indices
from hpsearch.errors import DataError


def test_split_sizes_are_rounded_fractions_and_disjoint() -> None:
    train, val, test = split_indices(None, 101, 0.2, 0.1, seed=3)
    assert (len(train), len(val), len(test)) == (71, 20, 10)
    together = np.concatenate([train, val, test])
    assert np.array_equal(np.sort(together), np.arange(101))


def test_split_is_seeded() -> None:
    first = split_indices(None, 50, 0.2, 0.0, seed=7)
    again = split_indices(None, 50, 0.2, 0.0, seed=7)
    other = split_indices(None, 50, 0.2, 0.0, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


def test_split_is_stratified() -> None:
    labels = np.repeat([0, 1, 2], [100, 50, 250])
    _, val, test = split_indices(labels, len(labels), 0.2, 0.1, seed=0)
    assert np.bincount(labels[val]).tolist() == [20, 10, 50]
    assert np.bincount(labels[test]).tolist() == [10, 5, 25]


def test_tiny_data_keeps_one_validation_example() -> None:
    train, val, test = split_indices(None, 3, 0.1, 0.0, seed=0)
    assert (len(train), len(val), len(test)) == (2, 1, 0)


def test_too_few_examples_for_the_fractions() -> None:
    with pytest.raises(DataError, match="2 examples are too few"):
        split_indices(None, 2, 0.5, 0.4, seed=0)


def test_integer_labels_are_class_indices() -> None:
    encoded, task, num_classes, names = encode_targets(
        {"y_train": np.array([0, 2, 1]), "y_val": np.array([4, 0], dtype=np.uint8)}
    )
    assert (task, num_classes, names) == ("classification", 5, None)
    assert encoded["y_val"].dtype == np.int64 and encoded["y_val"].tolist() == [4, 0]


def test_string_labels_map_to_sorted_class_names() -> None:
    encoded, task, num_classes, names = encode_targets(
        {"y_train": np.array(["dog", "cat"]), "y_val": np.array(["emu", "cat"])}
    )
    assert (task, num_classes, names) == ("classification", 3, ("cat", "dog", "emu"))
    assert encoded["y_train"].tolist() == [1, 0] and encoded["y_val"].tolist() == [2, 0]


@pytest.mark.parametrize("values", [[[0, 1], [1, 0]], [[-1, 1], [1, -1]]])
def test_two_dimensional_binary_targets_are_multilabel(values: list[list[int]]) -> None:
    encoded, task, num_classes, _ = encode_targets({"y_train": np.array(values)})
    assert (task, num_classes) == ("multilabel", 2)
    assert encoded["y_train"].tolist() == values


def test_multilabel_values_outside_binary_sets_are_refused() -> None:
    with pytest.raises(DataError, match=r"\{0, 1\} or \{-1, \+1\}"):
        encode_targets({"y_train": np.array([[0, 2], [1, 0]])})


def test_float_targets_are_regression_columns() -> None:
    encoded, task, num_classes, _ = encode_targets({"y_train": np.array([0.5, 1.5])})
    assert (task, num_classes) == ("regression", 1)
    assert encoded["y_train"].dtype == np.float32 and encoded["y_train"].shape == (2, 1)


def test_negative_class_index_is_refused() -> None:
    with pytest.raises(DataError, match=r"y_val must hold class indices 0\.\.C-1, got -1"):
        encode_targets({"y_train": np.array([0, 1]), "y_val": np.array([-1, 0])})


def test_mixed_target_kinds_are_refused() -> None:
    with pytest.raises(DataError, match="y_train, y_val must share one kind of values"):
        encode_targets({"y_train": np.array([0, 1]), "y_val": np.array([0.5, 1.0])})
