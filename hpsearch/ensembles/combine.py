"""What an ensemble averages, per loss, and how averaged outputs are scored.

A member's *outputs* on N examples form an (N, K) float64 matrix:

- softmax, svm, squared_hinge: class probabilities, the softmax of the
  scores (K = C classes). For the SVM and squared-hinge losses the scores
  are margins, not log-probabilities; their softmax is still averaged
  because it is monotone in the scores (one member's argmax is unchanged),
  it puts members whose score scales differ on one simplex (a member with
  margins in the tens would otherwise outvote the rest), and a confident
  margin still gives a nearly one-hot row, unlike hard votes, which throw
  away how sure each member is.
- hierarchical_softmax: the path products, exp of the tree's log-probabilities
  (K = C; the network has C - 1 node scores).
- attribute_hinge, attribute_logistic: the sigmoid of each attribute's
  score (K = A attributes); an attribute is on when the mean exceeds 0.5,
  which for a single member is exactly "score > 0".
- l2, l1 (regression): the outputs themselves (K targets).

Members combine by the weighted mean of their outputs (weights sum to 1).
"Accuracy" is the same figure the trainer reports: the fraction of correct
classes, the fraction of correct (example, attribute) bits, or R^2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hpsearch.nn.inputs import ATTRIBUTE_LOSSES, CLASS_LOSSES, REGRESSION_LOSSES
from hpsearch.nn.losses import hierarchical_softmax_log_probs

__all__ = [
    "OUTPUT_KINDS",
    "accuracy_of_outputs",
    "combine_outputs",
    "disagreement",
    "loss_of_outputs",
    "output_kind",
    "outputs_from_scores",
    "predictions_of_outputs",
]

OUTPUT_KINDS = ("class", "attribute", "regression")
_EPS = 1e-12


def output_kind(loss: str) -> str:
    """ "class", "attribute" or "regression": what the outputs of a loss's members are."""
    if loss in CLASS_LOSSES:
        return "class"
    if loss in ATTRIBUTE_LOSSES:
        return "attribute"
    if loss in REGRESSION_LOSSES:
        return "regression"
    raise ValueError(f"loss must be one of {CLASS_LOSSES + ATTRIBUTE_LOSSES + REGRESSION_LOSSES}")


def outputs_from_scores(scores: np.ndarray, loss: str, num_targets: int) -> np.ndarray:
    """Averageable outputs (N, K) float64 from a network's test-mode scores (N, num_scores)."""
    scores = np.asarray(scores, dtype=np.float64)
    if loss == "hierarchical_softmax":
        return np.exp(hierarchical_softmax_log_probs(scores, num_targets))
    kind = output_kind(loss)
    if kind == "class":
        shifted = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)
    if kind == "attribute":
        return 0.5 * (1.0 + np.tanh(0.5 * scores))  # sigmoid without overflow
    return scores


def combine_outputs(outputs: Sequence[np.ndarray] | np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean sum_m w_m * outputs[m] of M member outputs (M, N, K) -> (N, K).

    weights: (M,) non-negative, summing to 1 (checked to 1e-9).
    """
    stacked = np.asarray(outputs, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if stacked.ndim != 3 or weights.shape != (stacked.shape[0],):
        raise ValueError(
            f"outputs must be (M, N, K) and weights (M,), got {stacked.shape} and {weights.shape}"
        )
    if (weights < 0).any() or abs(weights.sum() - 1.0) > 1e-9:
        raise ValueError(f"weights must be >= 0 and sum to 1, got {weights.tolist()}")
    return np.tensordot(weights, stacked, axes=1)


def predictions_of_outputs(outputs: np.ndarray, kind: str) -> np.ndarray:
    """Class ids (N,), attribute booleans (N, A) or regression values (N, K)."""
    if kind == "class":
        return outputs.argmax(axis=1)
    if kind == "attribute":
        return outputs > 0.5
    return outputs


def accuracy_of_outputs(outputs: np.ndarray, y: np.ndarray, kind: str) -> float:
    """Fraction correct (classes), fraction of correct bits (attributes) or R^2 (regression)."""
    if kind == "class":
        return float(np.mean(outputs.argmax(axis=1) == np.asarray(y).reshape(-1)))
    if kind == "attribute":
        return float(np.mean((outputs > 0.5) == (np.asarray(y) > 0)))
    target = np.asarray(y, dtype=np.float64).reshape(outputs.shape)
    residual = float(np.square(outputs - target).sum())
    total = float(np.square(target - target.mean(axis=0)).sum())
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def loss_of_outputs(outputs: np.ndarray, y: np.ndarray, kind: str) -> float:
    """Mean negative log-likelihood (classes, attributes) or mean squared error (regression)."""
    if kind == "class":
        labels = np.asarray(y).reshape(-1)
        picked = outputs[np.arange(len(labels)), labels]
        return float(-np.mean(np.log(np.maximum(picked, _EPS))))
    if kind == "attribute":
        on = np.asarray(y) > 0
        chosen = np.where(on, outputs, 1.0 - outputs)
        return float(-np.mean(np.log(np.maximum(chosen, _EPS))))
    target = np.asarray(y, dtype=np.float64).reshape(outputs.shape)
    return float(np.mean(np.square(outputs - target)))


def disagreement(outputs: Sequence[np.ndarray] | np.ndarray, kind: str) -> float | None:
    """Mean pairwise disagreement of M members' predictions (M, N, K) -> [0, 1].

    Classes: the fraction of examples on which two members predict different
    classes; attributes: of (example, attribute) bits; averaged over all
    pairs. 0.0 for a single member; None for regression (no discrete
    prediction to disagree on).
    """
    if kind == "regression":
        return None
    stacked = np.asarray(outputs)
    if len(stacked) < 2:
        return 0.0
    predictions = [predictions_of_outputs(member, kind) for member in stacked]
    pairs = [
        float(np.mean(predictions[i] != predictions[j]))
        for i in range(len(predictions))
        for j in range(i + 1, len(predictions))
    ]
    return float(np.mean(pairs))
