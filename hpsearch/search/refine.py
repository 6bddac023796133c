"""Coarse to fine: narrow a space around the best results, warn and widen at borders.

`refine(space, results, policy)` is a pure function. Only results with a
finite validation accuracy count; diverged, failed and cancelled trials (no
accuracy) rank last and never drive narrowing. The top `keep` of the valid
results (a count, or a fraction rounded up, at least 1) define the new ranges:

- numeric parameters: the robust span of the top values plus `margin` times
  the current range width on each side, measured in log10 space for log
  parameters, clipped to the current range. The robust span runs between the
  10 % and 90 % quantiles of the top values weighted by rank (weight k - i for
  the i-th best of k; plain min-max below 3 values), stretched to hold the best
  one: short, noisy stages put lucky stragglers at the edge of the top set, and
  they should not hold the range open alone. Integers are rounded outward and
  always keep at least two values; a range never shrinks below 1 % of its width;
- choices: the values present among the top results, in their original order
  (all of them kept when no top value is one of them: results drawn in a wider
  space, such as promotions into a narrowed rung);
- a parameter no top result used (inactive) keeps its range.

Border rule (numeric parameters): side "low" (or "high") is flagged when the
best result's value lies in the outer `border_fraction` of the current range
on that side (positions in log10 space for log parameters) and at least half of
the top values lie in that half of the range. With `widen_on_border`, that side
of the next range is moved out beyond the current bound by as much room as the
good results take inside it: the robust span of the top values (in log10 space
for log parameters), at least `margin` times the current range width, at most
one decade (log) or one range width (linear). The region explored beyond the
border is then the size of the region that earned the warning: learning rates
whose top results span a decade move a decade, a width whose best values sit
between 128 and 256 moves to 512, not 2,560 (a size parameter widened by a
fixed decade multiplies a trial's cost far beyond what the results asked for).
Integer kinds are rounded outward; the bound is clipped to the parameter's hard
limits (the config field's own bounds, and `limit_low` / `limit_high` in the
spec). A flagged side already at its limit is reported with `widened_to=None`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hpsearch.search.distributions import Choice, NumericDistribution
from hpsearch.search.space import Param, SearchSpace

__all__ = [
    "BorderWarning",
    "RefinePolicy",
    "TrialResult",
    "keep_count",
    "rank_results",
    "refine",
]

MIN_WIDTH_FRACTION = 0.01
SPAN_QUANTILE = 0.1


@dataclass(frozen=True)
class TrialResult:
    """A finished trial as refinement sees it; `val_accuracy=None` = no usable result."""

    params: Mapping[str, Any]
    val_accuracy: float | None


@dataclass(frozen=True)
class RefinePolicy:
    """How to narrow: `keep` best (count >= 1 or fraction in (0, 1]), margins, borders."""

    keep: int | float = 0.25
    margin: float = 0.1
    widen_on_border: bool = True
    border_fraction: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.keep, bool) or not (
            (isinstance(self.keep, int) and self.keep >= 1)
            or (isinstance(self.keep, float) and 0.0 < self.keep <= 1.0)
        ):
            raise ValueError(f"keep must be an int >= 1 or a fraction in (0, 1], got {self.keep!r}")
        if not (math.isfinite(self.margin) and self.margin >= 0.0):
            raise ValueError(f"margin must be finite and >= 0, got {self.margin!r}")
        if not 0.0 < self.border_fraction < 0.5:
            raise ValueError(f"border_fraction must be in (0, 0.5), got {self.border_fraction!r}")


@dataclass(frozen=True)
class BorderWarning:
    """The best results of `param` sit at the `side` border of `range`."""

    param: str
    side: Literal["low", "high"]
    evidence: tuple[float, ...]
    range: tuple[float, float]
    widened_to: float | None = None

    def message(self) -> str:
        """One human sentence for logs and the dashboard."""
        action = (
            f"widened to {self.widened_to:.4g}"
            if self.widened_to is not None
            else "not widened (at its limit or widening off)"
        )
        best = ", ".join(f"{v:.4g}" for v in self.evidence)
        return (
            f"{self.param}: best values [{best}] sit at the {self.side} border of "
            f"[{self.range[0]:.4g}, {self.range[1]:.4g}]; {action}"
        )


def keep_count(keep: int | float, available: int) -> int:
    """How many of `available` results `keep` selects (0 only when none are available)."""
    if available <= 0:
        return 0
    if isinstance(keep, float):
        return min(available, max(1, math.ceil(keep * available - 1e-9)))
    return min(available, keep)


def rank_results(results: Sequence[TrialResult]) -> list[TrialResult]:
    """Valid results best first (stable for ties); results without accuracy dropped."""
    valid = [r for r in results if r.val_accuracy is not None and math.isfinite(r.val_accuracy)]
    return sorted(valid, key=lambda r: -float(r.val_accuracy))  # type: ignore[arg-type]


def refine(
    space: SearchSpace, results: Sequence[TrialResult], policy: RefinePolicy
) -> tuple[SearchSpace, list[BorderWarning]]:
    """The next stage's space from `results` of the current one, and its border warnings."""
    ranked = rank_results(results)
    top = ranked[: keep_count(policy.keep, len(ranked))]
    warnings: list[BorderWarning] = []
    refined = space
    for param in space.params:
        values = [r.params[param.name] for r in top if param.name in r.params]
        if not values:
            continue
        if isinstance(param.distribution, Choice):
            present = [v for v in param.distribution.values if any(_same(v, x) for x in values)]
            if present:  # top values drawn in a wider space may all lie outside this one
                refined = refined.replace_distribution(param.name, Choice(present))
        elif isinstance(param.distribution, NumericDistribution):
            distribution, found = _refine_numeric(param, values, policy)
            refined = refined.replace_distribution(param.name, distribution)
            warnings.extend(found)
    return refined, warnings


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _refine_numeric(
    param: Param, values: list[Any], policy: RefinePolicy
) -> tuple[NumericDistribution, list[BorderWarning]]:
    current = param.distribution
    assert isinstance(current, NumericDistribution)
    scaled = [current._scale(float(v)) for v in values]
    low, high = current._scale(current.low), current._scale(current.high)
    width = high - low
    span_low, span_high = _robust_span(scaled)
    new_low = max(low, span_low - policy.margin * width)
    new_high = min(high, span_high + policy.margin * width)
    if new_high - new_low < MIN_WIDTH_FRACTION * width:
        center = min(max((new_low + new_high) / 2, low + width / 200), high - width / 200)
        new_low, new_high = center - width / 200, center + width / 200
    low_value = current.low if new_low <= low else current._unscale(new_low)
    high_value = current.high if new_high >= high else current._unscale(new_high)
    warnings = []
    reach = max(span_high - span_low, policy.margin * width)
    for side in _border_sides(current, values, policy.border_fraction):
        widened = _widen(param, side, reach) if policy.widen_on_border else None
        if widened is not None and side == "low":
            low_value = widened
        elif widened is not None:
            high_value = widened
        evidence = tuple(float(v) for v in values)
        warnings.append(
            BorderWarning(param.name, side, evidence, (current.low, current.high), widened)
        )
    return _build(current, low_value, high_value), warnings


def _robust_span(scaled: list[float]) -> tuple[float, float]:
    """The rank-weighted 10 %-90 % span of the top values (best first), widened to hold
    the best one: weight k - i for the i-th best of k, so one lucky straggler near
    the cut moves the span less than the leaders do."""
    if len(scaled) < 3:
        return min(scaled), max(scaled)
    weights = [float(len(scaled) - i) for i in range(len(scaled))]
    order = sorted(range(len(scaled)), key=lambda i: scaled[i])
    cumulative, total = 0.0, sum(weights)
    positions = []
    for i in order:
        positions.append(((cumulative + weights[i] / 2) / total, scaled[i]))
        cumulative += weights[i]
    quantile_low = _interpolate(positions, SPAN_QUANTILE)
    quantile_high = _interpolate(positions, 1.0 - SPAN_QUANTILE)
    return min(quantile_low, scaled[0]), max(quantile_high, scaled[0])


def _interpolate(positions: list[tuple[float, float]], q: float) -> float:
    if q <= positions[0][0]:
        return positions[0][1]
    for (p0, v0), (p1, v1) in itertools.pairwise(positions):
        if p0 <= q <= p1:
            return v0 + (v1 - v0) * (q - p0) / (p1 - p0)
    return positions[-1][1]


def _border_sides(
    distribution: NumericDistribution, values: list[Any], fraction: float
) -> list[Literal["low", "high"]]:
    positions = [min(max(distribution.to_unit(v), 0.0), 1.0) for v in values]
    best = positions[0]
    sides: list[Literal["low", "high"]] = []
    if best <= fraction and 2 * sum(p < 0.5 for p in positions) >= len(positions):
        sides.append("low")
    if best >= 1.0 - fraction and 2 * sum(p > 0.5 for p in positions) >= len(positions):
        sides.append("high")
    return sides


def _widen(param: Param, side: Literal["low", "high"], reach: float) -> float | None:
    """The bound `reach` (scaled units) beyond `side`, at most one decade (log) or one range
    width (linear), rounded outward for integers, within the hard limits; None when that
    does not move the bound."""
    current = param.distribution
    assert isinstance(current, NumericDistribution)
    low, high = current._scale(current.low), current._scale(current.high)
    reach = min(reach, 1.0 if current.log else high - low)
    limit_low, limit_high = _int_limits(current, param.limits)
    if side == "low":
        target = current._unscale(low - reach)
        if current.log and current.is_int:
            target = max(target, 1.0)
        if current.is_int:
            target = math.floor(target + 1e-9)
        if limit_low is not None:
            target = max(target, limit_low)
        return target if target < current.low else None
    target = current._unscale(high + reach)
    if current.is_int:
        target = math.ceil(target - 1e-9)
    if limit_high is not None:
        target = min(target, limit_high)
    return target if target > current.high else None


def _int_limits(
    distribution: NumericDistribution, limits: tuple[float | None, float | None]
) -> tuple[float | None, float | None]:
    low, high = limits
    if distribution.is_int:
        low = None if low is None else math.ceil(low)
        high = None if high is None else math.floor(high)
    return low, high


def _build(current: NumericDistribution, low: float, high: float) -> NumericDistribution:
    """A valid distribution of `current`'s kind over [low, high] (never empty)."""
    if current.is_int:
        low, high = math.floor(low + 1e-9), math.ceil(high - 1e-9)
        if low >= high and low + 1 <= max(current.high, high):
            high = low + 1
        elif low >= high:
            low = high - 1
    try:
        return current.with_bounds(low, high)
    except ValueError:
        return current
