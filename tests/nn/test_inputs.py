"""Input validation at the edge: finiteness, shapes, dtypes, labels per loss family."""

from __future__ import annotations

import numpy as np
import pytest

from hpsearch.nn.inputs import all_finite, check_features, check_targets


def test_all_finite_catches_nan_and_both_infinities() -> None:
    assert all_finite(np.ones((3, 4), np.float32))
    for bad in (np.nan, np.inf, -np.inf):
        values = np.ones((3, 4), np.float32)
        values[2, 1] = bad
        assert not all_finite(values)


def test_all_finite_when_the_sum_of_finite_values_overflows() -> None:
    values = np.full(8, 3e38, np.float32)  # the float32 sum is +inf, every value is finite
    assert all_finite(values)
    values[-1] = np.nan
    assert not all_finite(values)


def test_check_features_converts_and_names_the_argument() -> None:
    X = check_features(np.arange(6).reshape(3, 2), 2, np.dtype(np.float32), "X_train")
    assert X.dtype == np.float32 and X.flags.c_contiguous
    np.testing.assert_array_equal(X, [[0, 1], [2, 3], [4, 5]])
    with pytest.raises(ValueError, match=r"X_val must have shape \(N, 2\)"):
        check_features(np.zeros((3, 3)), 2, np.dtype(np.float32), "X_val")
    with pytest.raises(ValueError, match="X_val must be numeric"):
        check_features(np.array([["a", "b"]]), 2, np.dtype(np.float32), "X_val")
    with pytest.raises(ValueError, match="X_val contains NaN"):
        check_features(np.array([[1.0, np.nan]]), 2, np.dtype(np.float32), "X_val")


def test_check_targets_per_loss_family() -> None:
    float32 = np.dtype(np.float32)
    labels = check_targets([0, 2, 1], "softmax", 3, 3, "y", float32)
    assert labels.dtype == np.intp
    with pytest.raises(ValueError, match=r"y_val must hold labels in \[0, 3\)"):
        check_targets([0, 3, 1], "svm", 3, 3, "y_val", float32)
    with pytest.raises(ValueError, match="y_val must be integer class labels"):
        check_targets([0.0, 1.0, 1.0], "softmax", 3, 3, "y_val", float32)
    with pytest.raises(ValueError, match=r"values \(-1, 1\)"):
        check_targets([[0, 1]], "attribute_hinge", 2, 1, "y", float32)
    assert check_targets([[0, 1]], "attribute_logistic", 2, 1, "y", float32).dtype == np.float32
    assert check_targets([1.5, 2.5], "l2", 1, 2, "y", float32).shape == (2, 1)
    with pytest.raises(ValueError, match="y contains NaN"):
        check_targets([[np.nan]], "l1", 1, 1, "y", float32)
