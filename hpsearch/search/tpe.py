"""`sampler = "tpe"`: a tree-structured Parzen estimator over the space's own distributions.

`tpe_params(space, results, seed, stage, index)` draws one configuration:

1. Results (completed trials with an accuracy) are split per stage: the best
   ceil(GAMMA * n) of each stage's n results are "good", the others "bad", so
   results of 1-epoch and 20-epoch stages are never ranked against each other.
2. Every parameter is modelled in its unit coordinate (`to_unit`: log10 space
   for log kinds): numeric ones by a Parzen mixture of Gaussians truncated to
   [0, 1], one per observed value with bandwidth (n + 1) ** -1/5 / 2, plus a
   uniform prior with the weight of one observation; choices by counts plus
   one. A parameter is modelled only from the results where it was active, so
   conditional parameters (`when`) get their own densities.
3. CANDIDATES unit vectors are drawn from the good densities; the one with the
   largest sum over active parameters of log l(x) - log g(x) wins, and
   `space.point` turns it into values, so a draw always lies in the space
   and respects its conditions.

Reproducible: the generator is `SeedSequence([seed, stage, index, 2])` and
the results are sorted by (stage, index) first, so a trial's configuration is
a function of the search seed, its stage and index, and the results known
when it was drawn. With fewer than `min_results(space)` results the draw is
the random one (`sample_params`).

When it helps: many trials of one smooth space, where random search wastes
trials in bad regions; with few trials, or noisy 1-epoch results, random
search within a well-chosen range (the default) is as good and simpler.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpsearch.search.distributions import Choice
from hpsearch.search.space import Param, SearchSpace, sample_params

__all__ = ["CANDIDATES", "GAMMA", "RecordedResult", "check_tpe_space", "min_results", "tpe_params"]

GAMMA = 0.25
CANDIDATES = 24
_TPE_STREAM = 2


@dataclass(frozen=True)
class RecordedResult:
    """One completed trial as the sampler sees it."""

    stage: int
    index: int
    params: Mapping[str, Any]
    val_accuracy: float


def check_tpe_space(space: SearchSpace) -> None:
    """Refuse a space the estimator cannot model (nothing in it takes two values)."""
    if not any(_varies(param) for param in space.params):
        raise ValueError(
            "sampler: tpe models parameters that take more than one value; every parameter "
            f"of this space is fixed ({space.names}); use sampler = 'random'"
        )


def _varies(param: Param) -> bool:
    distribution = param.distribution
    return not isinstance(distribution, Choice) or len(distribution.values) > 1


def min_results(space: SearchSpace) -> int:
    """Results needed before the estimator replaces random draws: max(10, 2 x parameters)."""
    return max(10, 2 * len(space.params))


def tpe_params(
    space: SearchSpace, results: Sequence[RecordedResult], seed: int, stage: int, index: int
) -> dict[str, Any]:
    """One configuration for trial `index` of `stage` (see the module doc)."""
    usable = sorted(
        (r for r in results if math.isfinite(r.val_accuracy)), key=lambda r: (r.stage, r.index)
    )
    if len(usable) < min_results(space):
        return sample_params(space, seed, stage, index)
    good, bad = _split(usable)
    rng = np.random.default_rng(np.random.SeedSequence([seed, stage, index, _TPE_STREAM]))
    candidates = np.empty((CANDIDATES, len(space.params)))
    score = np.zeros(CANDIDATES)
    for column, param in enumerate(space.params):
        good_units = _units(param, good)
        bad_units = _units(param, bad)
        candidates[:, column] = _draw(param, good_units, rng)
        score += _activity(space, param, candidates, column) * (
            _log_density(param, good_units, candidates[:, column])
            - _log_density(param, bad_units, candidates[:, column])
        )
    return space.point(candidates[int(np.argmax(score))])


def _split(results: list[RecordedResult]) -> tuple[list[RecordedResult], list[RecordedResult]]:
    """Good = the best ceil(GAMMA * n) of each stage (ties: lower index), bad = the rest."""
    good, bad = [], []
    for stage in sorted({r.stage for r in results}):
        ranked = sorted((r for r in results if r.stage == stage), key=lambda r: -r.val_accuracy)
        count = math.ceil(GAMMA * len(ranked))
        good.extend(ranked[:count])
        bad.extend(ranked[count:])
    return good, bad


def _units(param: Param, results: list[RecordedResult]) -> np.ndarray:
    """Unit coordinates of `param` in the results where it was active (inside the range)."""
    distribution = param.distribution
    units = [
        distribution.to_unit(r.params[param.name])
        for r in results
        if param.name in r.params
        and (not isinstance(distribution, Choice) or distribution.contains(r.params[param.name]))
    ]
    return np.clip(np.asarray(units, dtype=float), 0.0, 1.0)


def _bandwidth(count: int) -> float:
    return 0.5 * (count + 1) ** -0.2


def _draw(param: Param, units: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """CANDIDATES unit coordinates from the good density of `param` (prior included)."""
    picks = rng.integers(0, len(units) + 1, size=CANDIDATES)  # len(units) = the prior
    uniform = rng.random(CANDIDATES)
    noise = rng.standard_normal((CANDIDATES, 8))
    if isinstance(param.distribution, Choice) or len(units) == 0:
        if isinstance(param.distribution, Choice) and len(units):
            counts = _choice_weights(param.distribution, units)
            return (
                np.searchsorted(np.cumsum(counts), uniform * counts.sum(), side="right") + 0.5
            ) / len(counts)
        return uniform
    width = _bandwidth(len(units))
    draws = uniform.copy()
    for row, pick in enumerate(picks):
        if pick == len(units):
            continue
        inside = units[pick] + width * noise[row]
        inside = inside[(inside >= 0.0) & (inside < 1.0)]
        draws[row] = inside[0] if inside.size else units[pick]
    return draws


def _choice_weights(distribution: Choice, units: np.ndarray) -> np.ndarray:
    slots = np.minimum((units * len(distribution.values)).astype(int), len(distribution.values) - 1)
    return np.bincount(slots, minlength=len(distribution.values)).astype(float) + 1.0


def _log_density(param: Param, units: np.ndarray, points: np.ndarray) -> np.ndarray:
    """log of the Parzen density of `units` (prior included) at `points`, shape (CANDIDATES,)."""
    if isinstance(param.distribution, Choice):
        counts = _choice_weights(param.distribution, units)
        slots = np.minimum((points * len(counts)).astype(int), len(counts) - 1)
        return np.log(counts[slots] / counts.sum() * len(counts))
    if len(units) == 0:
        return np.zeros_like(points)
    width = _bandwidth(len(units))
    z = (points[:, None] - units[None, :]) / width
    mass = _normal_cdf((1.0 - units) / width) - _normal_cdf(-units / width)
    kernels = np.exp(-0.5 * z**2) / (width * math.sqrt(2 * math.pi) * np.maximum(mass, 1e-12))
    return np.log((kernels.sum(axis=1) + 1.0) / (len(units) + 1))


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _activity(space: SearchSpace, param: Param, candidates: np.ndarray, column: int) -> np.ndarray:
    """1.0 where `param` is active in a candidate (its parents drawn in earlier columns)."""
    if not param.conditions:
        return np.ones(len(candidates))
    active = np.zeros(len(candidates))
    for row, units in enumerate(candidates):
        values = space.point(
            np.concatenate([units[:column], np.full(len(space.params) - column, 0.5)])
        )
        active[row] = float(space.is_active(param, values))
    return active
