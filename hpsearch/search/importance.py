"""What the search learned: the share of validation-accuracy variance each parameter explains.

`importance(space, results)` fits, per parameter, a piecewise-constant model of
the accuracy (a main effect): the parameter's values are cut into up to
`BINS` equal-count bins of its unit coordinate (log10 space for log kinds;
one bin per value for choices; "inactive" is a bin of its own for conditional
parameters). Its importance is the adjusted share of variance that model
explains,

    eta2 = 1 - (1 - SS_between / SS_total) * (n - 1) / (n - bins),

clipped at 0, so a parameter that explains nothing scores about 0 however it
is binned. Accuracies are first centered per stage, so the effect of a
stage's epochs is not credited to the parameters sampled in it. Shares are
main effects: they need not sum to 1 (interactions and noise take the rest).
Fewer than `MIN_RESULTS` results give no figures (an empty dict).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpsearch.search.distributions import Choice
from hpsearch.search.space import Param, SearchSpace

__all__ = ["BINS", "MIN_RESULTS", "importance"]

BINS = 4
MIN_RESULTS = 8


def importance(
    space: SearchSpace, results: Sequence[tuple[int, Mapping[str, Any], float]]
) -> dict[str, float]:
    """`{parameter: share of variance in [0, 1]}` from `(stage, params, val_accuracy)` rows,
    highest first; see the module doc."""
    rows = [(s, p, a) for s, p, a in results if a is not None and math.isfinite(a)]
    if len(rows) < MIN_RESULTS:
        return {}
    accuracy = np.array([a for _, _, a in rows], dtype=float)
    stages = np.array([s for s, _, _ in rows])
    for stage in np.unique(stages):
        accuracy[stages == stage] -= accuracy[stages == stage].mean()
    total = float(np.sum(accuracy**2))
    shares = {}
    for param in space.params:
        labels = _bin_labels(param, [p for _, p, _ in rows])
        shares[param.name] = _explained(accuracy, labels, total)
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def _bin_labels(param: Param, params: list[Mapping[str, Any]]) -> np.ndarray:
    """One integer label per row: -1 inactive, else the value's bin."""
    distribution = param.distribution
    labels = np.full(len(params), -1)
    active = [i for i, p in enumerate(params) if param.name in p]
    if not active:
        return labels
    if isinstance(distribution, Choice):
        keys = [repr(params[i][param.name]) for i in active]
        order = {key: k for k, key in enumerate(sorted(set(keys)))}
        labels[active] = [order[key] for key in keys]
        return labels
    units = np.array([distribution.to_unit(params[i][param.name]) for i in active])
    edges = np.quantile(units, np.linspace(0, 1, BINS + 1)[1:-1])
    labels[active] = np.searchsorted(edges, units, side="right")
    return labels


def _explained(accuracy: np.ndarray, labels: np.ndarray, total: float) -> float:
    groups = np.unique(labels)
    count = len(accuracy)
    if total <= 0.0 or len(groups) < 2 or count <= len(groups):
        return 0.0
    between = sum(
        float(np.sum(labels == g)) * float(accuracy[labels == g].mean()) ** 2 for g in groups
    )
    adjusted = 1.0 - (1.0 - between / total) * (count - 1) / (count - len(groups))
    return round(max(0.0, min(1.0, adjusted)), 4)
