"""Greedy ensemble selection (Caruana et al., ICML 2004) on validation outputs.

A selector sees a library of M candidates only through their validation
outputs (M, N, K) (`hpsearch.ensembles.combine`) and returns weights; it
never loads a model.

1. Sorted initialization: the candidates are ranked by their own validation
   accuracy; the ensemble starts as the uniform mean of the best n of them,
   n in 1..`init_size` chosen by the validation score of that mean.
2. Forward selection with replacement: each round adds the candidate (one
   already in the ensemble may be added again, which raises its weight)
   whose addition scores best. A round is kept only when it improves the
   score: validation accuracy strictly higher, or equal accuracy with a
   strictly lower validation loss (the tie-break keeps the search moving on
   accuracy plateaus; accuracy never drops). Selection stops at the first
   round that does not improve, or at `max_size` picks.
3. Weights are the pick counts divided by their total (they sum to 1).

Because step 1 may choose n = 1 and step 2 never accepts a worse score, the
selected ensemble is never worse on validation than its best member.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpsearch.ensembles.combine import accuracy_of_outputs, loss_of_outputs

__all__ = ["GREEDY_MAX_SIZE", "Selection", "greedy_selection"]

GREEDY_MAX_SIZE = 50


@dataclass(frozen=True)
class Selection:
    """counts (M,) picks per candidate; weights = counts / counts.sum();
    history: the validation accuracy after the initialization and every kept round."""

    counts: np.ndarray
    weights: np.ndarray
    val_accuracy: float
    val_loss: float
    history: tuple[float, ...]


def _score(outputs: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, float]:
    """(accuracy, -loss): larger is better, compared lexicographically."""
    return accuracy_of_outputs(outputs, y, kind), -loss_of_outputs(outputs, y, kind)


def _sorted_initialization(
    library: np.ndarray, best_first: list[int], y_val: np.ndarray, kind: str
) -> tuple[int, tuple[float, float]]:
    """(n, score): how many of the best-ranked candidates to start from, and their mean's score."""
    running = np.zeros_like(library[0])
    best: tuple[float, float] | None = None
    best_n = 0
    for n, index in enumerate(best_first, start=1):
        running += library[index]
        score = _score(running / n, y_val, kind)
        if best is None or score > best:
            best, best_n = score, n
    assert best is not None
    return best_n, best


def greedy_selection(
    val_outputs: np.ndarray,
    y_val: np.ndarray,
    kind: str,
    max_size: int = GREEDY_MAX_SIZE,
    init_size: int = 3,
) -> Selection:
    """Caruana selection over candidates' validation outputs (M, N, K); see the module doc.

    y_val: (N,) class ids, (N, A) attribute targets or (N, K) regression targets.
    max_size: the most picks (initialization included), >= 1.
    """
    library = np.asarray(val_outputs, dtype=np.float64)
    if library.ndim != 3 or library.shape[0] < 1:
        raise ValueError(f"val_outputs must be (M >= 1, N, K), got shape {library.shape}")
    if max_size < 1 or init_size < 1:
        raise ValueError(f"max_size and init_size must be >= 1, got {max_size}, {init_size}")
    own = [_score(candidate, y_val, kind) for candidate in library]
    ranking = sorted(range(len(library)), key=lambda m: (own[m], -m), reverse=True)
    counts = np.zeros(len(library), dtype=np.int64)
    best_n, best = _sorted_initialization(library, ranking[: min(init_size, max_size)], y_val, kind)
    counts[ranking[:best_n]] = 1
    total = library[ranking[:best_n]].sum(axis=0)
    history = [best[0]]
    while counts.sum() < max_size:
        picks = int(counts.sum()) + 1
        scores = [_score((total + candidate) / picks, y_val, kind) for candidate in library]
        chosen = max(ranking, key=lambda m: scores[m])  # ties: the better-ranked candidate
        if not scores[chosen] > best:
            break
        counts[chosen] += 1
        total += library[chosen]
        best = scores[chosen]
        history.append(best[0])
    weights = counts / counts.sum()
    return Selection(counts, weights, best[0], -best[1], tuple(history))
