"""Data losses of the notes (part 2, "loss functions"), each returning `(loss, dscores)`.

`loss` is a Python float averaged over the N examples of the batch; `dscores`
has the shape and dtype of `scores` (float32 stays float32). Scores are never
modified unless `inplace=True` is passed where offered. Every loss is finite
for logits of +-1e4. NaN or infinite scores raise ValueError naming `scores`.

Class losses take integer labels `y` (N,) in [0, C); attribute losses take
`y` (N, A) in {-1, +1} (hinge) or {0, 1} (logistic); regression losses take
real targets `y` of the shape of `scores`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from hpsearch.nn.layers import stable_sigmoid

__all__ = [
    "LOSSES",
    "attribute_hinge_loss",
    "attribute_logistic_loss",
    "hierarchical_softmax_log_probs",
    "hierarchical_softmax_loss",
    "hierarchical_softmax_num_outputs",
    "hierarchical_softmax_predict",
    "hierarchical_softmax_tree",
    "l1_loss",
    "l2_loss",
    "num_outputs",
    "softmax_loss",
    "squared_hinge_loss",
    "svm_loss",
]

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


def _check_scores(scores: object, columns: int | None = None) -> np.ndarray:
    if not isinstance(scores, np.ndarray) or scores.dtype.kind != "f":
        kind = getattr(scores, "dtype", type(scores).__name__)
        raise TypeError(f"scores must be a floating-point numpy array, got {kind}")
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError(f"scores must have shape (N, C) with N >= 1, got {scores.shape}")
    if columns is not None and scores.shape[1] != columns:
        raise ValueError(f"scores must have {columns} columns, got shape {scores.shape}")
    return scores


def _check_labels(y: object, scores: np.ndarray, num_classes: int) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
        kind = getattr(y, "dtype", type(y).__name__)
        raise TypeError(f"y must be an integer numpy array of class labels, got {kind}")
    if y.shape != (scores.shape[0],):
        raise ValueError(f"y must have shape ({scores.shape[0]},) to match scores, got {y.shape}")
    unsigned = y.view(np.dtype(f"u{y.itemsize}")) if y.dtype.kind == "i" else y
    if int(unsigned.max()) >= num_classes:  # one pass: negative labels wrap to huge values
        low, high = int(y.min()), int(y.max())
        raise ValueError(f"y must hold labels in [0, {num_classes}), got values in [{low}, {high}]")
    return y


def _check_targets(y: object, scores: np.ndarray, allowed: tuple[float, ...] | None) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iuf":
        raise TypeError(f"y must be a numeric numpy array, got {type(y).__name__}")
    if y.shape != scores.shape:
        raise ValueError(f"y must have the shape of scores {scores.shape}, got {y.shape}")
    if allowed is not None and not np.isin(y, allowed).all():
        raise ValueError(f"y must only hold the values {allowed}")
    if allowed is None and not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinite values")
    return y.astype(scores.dtype, copy=False)


def _finish(loss: float, scores: np.ndarray) -> float:
    """Return the loss; a non-finite loss from NaN/Inf scores raises naming scores."""
    if not math.isfinite(loss) and not np.isfinite(scores).all():
        raise ValueError("scores contains NaN or infinite values")
    return loss


# Shifting every row by the batch-wide max is exact in real arithmetic and avoids the
# slow per-row max; it is used while each row's max is within this many nats of it.
_GLOBAL_SHIFT_RANGE = 20.0


def softmax_loss(
    scores: np.ndarray, y: np.ndarray, inplace: bool = False
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy L_i = -log(exp(s_{y_i}) / sum_j exp(s_j)), stable.

    log-sum-exp is taken after subtracting the batch max (when every row's
    correct score is within 20 of it, so no row underflows) or else each row's max.
    Inputs: scores (N, C), y (N,) ints in [0, C); scores is overwritten with
    dscores when inplace=True. Returns: loss, dscores (N, C) = (softmax - onehot) / N.
    """
    _check_scores(scores)
    _check_labels(y, scores, scores.shape[1])
    batch, classes = scores.shape
    correct_index = np.arange(0, batch * classes, classes)
    correct_index += y
    correct = scores.take(correct_index)
    shift: np.ndarray = scores.max(keepdims=True)
    if not correct.min() >= shift[0, 0] - _GLOBAL_SHIFT_RANGE:  # also taken for NaN
        shift = scores.max(axis=1, keepdims=True)
    reuse = inplace and scores.flags.c_contiguous
    shifted = np.subtract(scores, shift, out=scores if reuse else None, order="C")
    correct -= shift.ravel()
    np.exp(shifted, out=shifted)
    sums = shifted.sum(axis=1)
    loss = (float(np.log(sums).sum()) - float(correct.sum())) / batch
    sums *= batch
    np.divide(1, sums, out=sums)
    shifted *= sums[:, None]
    shifted.reshape(-1)[correct_index] -= scores.dtype.type(1 / batch)
    return _finish(loss, shifted), shifted


def _hinge_margins(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(scores.shape[0])
    margins = scores - scores[rows, y][:, None]
    margins += 1
    margins[rows, y] = 0
    np.maximum(margins, 0, out=margins)
    return margins, rows


def svm_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Multiclass SVM (Weston-Watkins): L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + 1).

    Inputs: scores (N, C), y (N,) ints in [0, C). Returns: loss, dscores (N, C).
    Kinks where a margin s_j - s_{y_i} + 1 is exactly 0.
    """
    _check_scores(scores)
    _check_labels(y, scores, scores.shape[1])
    margins, rows = _hinge_margins(scores, y)
    batch = scores.shape[0]
    loss = float(margins.sum()) / batch
    dscores = (margins > 0).astype(scores.dtype)
    dscores[rows, y] = -dscores.sum(axis=1)
    dscores *= scores.dtype.type(1 / batch)
    return _finish(loss, scores), dscores


def squared_hinge_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Squared hinge: L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + 1)**2.

    Inputs: scores (N, C), y (N,) ints in [0, C). Returns: loss, dscores (N, C).
    """
    _check_scores(scores)
    _check_labels(y, scores, scores.shape[1])
    margins, rows = _hinge_margins(scores, y)
    batch = scores.shape[0]
    loss = float(np.square(margins).sum()) / batch
    margins *= scores.dtype.type(2 / batch)
    margins[rows, y] = -margins.sum(axis=1)
    return _finish(loss, scores), margins


def _softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    tail = np.abs(z)
    np.negative(tail, out=tail)
    np.exp(tail, out=tail)
    np.log1p(tail, out=tail)
    tail += np.maximum(z, 0)
    return tail


@lru_cache(maxsize=64)
def hierarchical_softmax_tree(num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The balanced binary tree over classes 0..C-1 used by the hierarchical softmax.

    Node 0 is the root and covers [0, C); a node covering [lo, hi) sends
    [lo, mid) left and [mid, hi) right with mid = lo + (hi - lo) // 2. Internal
    nodes are numbered in pre-order (node, left subtree, right subtree), so
    there are C - 1 of them, one score column each. P(right | node) =
    sigmoid(s_node), P(left | node) = sigmoid(-s_node); P(class) is the
    product along its root-to-leaf path.
    Returns (read-only): nodes (C, depth) int64 node ids on each class's path and
    signs (C, depth) with +1 = right, -1 = left, 0 = padding past the leaf.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    depth = math.ceil(math.log2(num_classes))
    nodes = np.zeros((num_classes, depth), dtype=np.int64)
    signs = np.zeros((num_classes, depth), dtype=np.int8)
    next_node = 0

    def build(lo: int, hi: int, level: int) -> None:
        nonlocal next_node
        if hi - lo == 1:
            return
        node, next_node = next_node, next_node + 1
        mid = lo + (hi - lo) // 2
        nodes[lo:hi, level] = node
        signs[lo:mid, level], signs[mid:hi, level] = -1, 1
        build(lo, mid, level + 1)
        build(mid, hi, level + 1)

    build(0, num_classes, 0)
    nodes.flags.writeable = False
    signs.flags.writeable = False
    return nodes, signs


def hierarchical_softmax_num_outputs(num_classes: int) -> int:
    """Score columns the hierarchical softmax needs for C >= 2 classes: C - 1."""
    if not isinstance(num_classes, int | np.integer) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return int(num_classes) - 1


def hierarchical_softmax_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Hierarchical softmax: L_i = -log P(y_i) = sum over path softplus(-sign * s_node).

    Inputs: scores (N, C-1), one column per internal node of
    `hierarchical_softmax_tree(C)`; y (N,) ints in [0, C).
    Returns: loss, dscores (N, C-1); only the nodes on y_i's path get gradient.
    """
    _check_scores(scores)
    num_classes = scores.shape[1] + 1
    _check_labels(y, scores, num_classes)
    _finish(math.nan, scores)  # off-path columns never reach the loss: check them all
    tree_nodes, tree_signs = hierarchical_softmax_tree(num_classes)
    path_nodes, path_signs = tree_nodes[y], tree_signs[y].astype(scores.dtype)
    z = np.take_along_axis(scores, path_nodes, axis=1)
    z *= -path_signs  # padding has sign 0, so z = 0 there and is masked below
    batch = scores.shape[0]
    loss = float((_softplus(z) * (path_signs != 0)).sum()) / batch
    path_grad = stable_sigmoid(z)
    path_grad *= -path_signs / batch
    padded = np.zeros((batch, num_classes), dtype=scores.dtype)  # column C-1 absorbs padding
    np.put_along_axis(padded, np.where(path_signs != 0, path_nodes, num_classes - 1), path_grad, 1)
    return _finish(loss, scores), np.ascontiguousarray(padded[:, :-1])


def hierarchical_softmax_log_probs(scores: np.ndarray, num_classes: int) -> np.ndarray:
    """log P(class) for every class from node scores (N, C-1). Returns (N, C)."""
    _check_scores(scores, columns=hierarchical_softmax_num_outputs(num_classes))
    tree_nodes, tree_signs = hierarchical_softmax_tree(int(num_classes))
    log_probs = np.zeros((scores.shape[0], num_classes), dtype=scores.dtype)
    for level in range(tree_nodes.shape[1]):
        signs = tree_signs[:, level].astype(scores.dtype)
        log_probs -= _softplus(scores[:, tree_nodes[:, level]] * -signs) * (signs != 0)
    return log_probs


def hierarchical_softmax_predict(scores: np.ndarray, num_classes: int) -> np.ndarray:
    """Most probable class (exact argmax of the path products). Returns (N,) int64."""
    return hierarchical_softmax_log_probs(scores, num_classes).argmax(axis=1)


def attribute_hinge_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Per-attribute binary hinge: L_i = sum_j max(0, 1 - y_ij * s_ij), y in {-1, +1}.

    Inputs: scores (N, A), y (N, A). Returns: loss, dscores (N, A).
    """
    _check_scores(scores)
    signs = _check_targets(y, scores, (-1, 1))
    margins = np.multiply(signs, scores)
    np.subtract(1, margins, out=margins)
    np.maximum(margins, 0, out=margins)
    batch = scores.shape[0]
    loss = float(margins.sum()) / batch
    dscores = np.multiply(signs, margins > 0)
    dscores *= scores.dtype.type(-1 / batch)
    return _finish(loss, scores), dscores


def attribute_logistic_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Per-attribute sigmoid cross-entropy, y in {0, 1}, stable for any logit.

    L_i = -sum_j [y_ij log sigma(s_ij) + (1 - y_ij) log(1 - sigma(s_ij))]
        = sum_j softplus(s_ij) - y_ij * s_ij;  dL_i/ds_ij = sigma(s_ij) - y_ij.
    Inputs: scores (N, A), y (N, A). Returns: loss, dscores (N, A).
    """
    _check_scores(scores)
    targets = _check_targets(y, scores, (0, 1))
    batch = scores.shape[0]
    per_entry = _softplus(scores)
    per_entry -= targets * scores
    loss = float(per_entry.sum()) / batch
    dscores = stable_sigmoid(scores)
    dscores -= targets
    dscores *= scores.dtype.type(1 / batch)
    return _finish(loss, scores), dscores


def l2_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Regression L2: L_i = 0.5 * ||s_i - y_i||^2, so dL_i/ds = s_i - y_i (the notes' delta).

    The notes write ||f - y||^2; the factor 0.5 gives their gradient delta_ij.
    Inputs: scores (N, K), y (N, K) reals. Returns: loss, dscores (N, K).
    """
    _check_scores(scores)
    targets = _check_targets(y, scores, None)
    delta = scores - targets
    batch = scores.shape[0]
    loss = 0.5 * float(np.square(delta).sum()) / batch
    delta *= scores.dtype.type(1 / batch)
    return _finish(loss, scores), delta


def l1_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Regression L1: L_i = sum_j |s_ij - y_ij|; dL_i/ds = sign(s - y) (kink at s = y).

    Inputs: scores (N, K), y (N, K) reals. Returns: loss, dscores (N, K).
    """
    _check_scores(scores)
    targets = _check_targets(y, scores, None)
    delta = scores - targets
    batch = scores.shape[0]
    loss = float(np.abs(delta).sum()) / batch
    np.sign(delta, out=delta)
    delta *= scores.dtype.type(1 / batch)
    return _finish(loss, scores), delta


LOSSES: dict[str, LossFn] = {
    "softmax": softmax_loss,
    "svm": svm_loss,
    "squared_hinge": squared_hinge_loss,
    "hierarchical_softmax": hierarchical_softmax_loss,
    "attribute_hinge": attribute_hinge_loss,
    "attribute_logistic": attribute_logistic_loss,
    "l2": l2_loss,
    "l1": l1_loss,
}


def num_outputs(loss: str, num_targets: int) -> int:
    """Output units a loss needs for C classes (or A attributes, K regression targets).

    C - 1 for hierarchical_softmax, num_targets for every other loss.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    if not isinstance(num_targets, int) or num_targets < 1:
        raise ValueError(f"num_targets must be a positive integer, got {num_targets!r}")
    if loss == "hierarchical_softmax":
        return hierarchical_softmax_num_outputs(num_targets)
    return num_targets
