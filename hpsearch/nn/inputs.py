"""Validation of a model's inputs, once, at the edge (the hot loop checks nothing).

X: (N, D) numeric and finite, converted to the model dtype, C-contiguous.
y, by loss family: class losses (N,) integer labels in [0, C);
attribute_hinge (N, A) in {-1, +1}; attribute_logistic (N, A) in {0, 1};
regression (N, K) (or (N,) when K == 1) finite, converted to the model dtype.
Errors are ValueErrors naming the argument.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "ATTRIBUTE_LOSSES",
    "CLASS_LOSSES",
    "REGRESSION_LOSSES",
    "all_finite",
    "check_features",
    "check_targets",
]

CLASS_LOSSES = ("softmax", "svm", "squared_hinge", "hierarchical_softmax")
ATTRIBUTE_LOSSES = ("attribute_hinge", "attribute_logistic")
REGRESSION_LOSSES = ("l2", "l1")


def check_features(X: Any, input_dim: int, dtype: np.dtype, name: str) -> np.ndarray:
    """X as a finite C-contiguous (N, input_dim) array of `dtype`, N >= 1."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != input_dim or X.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, {input_dim}), got {X.shape}")
    if X.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=dtype)
    if not all_finite(X):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def all_finite(array: np.ndarray) -> bool:
    """Whether a float array holds no NaN or infinity: one summing pass, no temporary.

    A finite sum proves it (NaN and infinities propagate); an overflowing sum of
    finite values falls back to the exact element-wise test.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(np.add.reduce(array, axis=None))):
            return True
    return bool(np.isfinite(array).all())


def check_targets(
    y: Any, loss: str, width: int, rows: int, name: str, dtype: np.dtype
) -> np.ndarray:
    """Validate labels/targets for `loss` with `width` = output_dim (see `check_inputs`)."""
    y = np.asarray(y)
    if loss in CLASS_LOSSES:
        if y.shape != (rows,) or y.dtype.kind not in "iu":
            raise ValueError(
                f"{name} must be integer class labels of shape ({rows},), got {y.dtype} {y.shape}"
            )
        if rows and (int(y.min()) < 0 or int(y.max()) >= width):
            raise ValueError(
                f"{name} must hold labels in [0, {width}), got values in [{y.min()}, {y.max()}]"
            )
        return np.ascontiguousarray(y, dtype=np.intp)
    if loss in REGRESSION_LOSSES and y.shape == (rows,) and width == 1:
        y = y.reshape(rows, 1)
    if y.shape != (rows, width) or y.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must be numeric with shape ({rows}, {width}), got {y.dtype} {y.shape}"
        )
    allowed = {"attribute_hinge": (-1, 1), "attribute_logistic": (0, 1)}.get(loss)
    if allowed is not None and not np.isin(y, allowed).all():
        raise ValueError(f"{name} must only hold the values {allowed} for loss {loss!r}")
    if not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(y, dtype=dtype)
