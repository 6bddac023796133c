"""Search spaces: named, possibly conditional parameters, and how to sample them.

A parameter is named by the dotted path it overrides in `TrainConfig`
(`optimizer.learning_rate`, `model.hidden_sizes.1`), or by a pseudo-parameter:
`model.depth` (the number of hidden layers) or `model.hidden_sizes.*` (one
width shared by every hidden layer; not together with per-layer widths).

Conditions (`when`) make a parameter active only for some values of another
one. Plain-dict form, one entry per parent parameter, all must hold:

    when = {"model.activation" = "leaky_relu"}          equality
    when = {"model.activation" = ["relu", "leaky_relu"]} membership
    when = {"model.depth" = {min = 2}}                   parent >= 2 (also `max`)

When `model.depth` is in the space, `model.hidden_sizes.i` without an explicit
condition on it is active only when `model.depth >= i + 1`. An inactive
parameter is absent from the sampled dict; a parameter whose parent is inactive
is inactive too.

Sampling is reproducible: trial `index` of stage `stage` draws its unit
vector from `default_rng(SeedSequence([seed, stage, index]))` (one draw per
parameter, active or not, so the values of the others do not shift), and its
training seed from the distinct stream `SeedSequence([seed, stage, index, 1])`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hpsearch.search.distributions import (
    Choice,
    Distribution,
    NumericDistribution,
    distribution_from_dict,
)

__all__ = [
    "DEPTH",
    "SHARED_WIDTH",
    "Condition",
    "Param",
    "SearchSpace",
    "check_conditions",
    "grid_params",
    "sample_params",
    "train_seed",
]

DEPTH = "model.depth"
SHARED_WIDTH = "model.hidden_sizes.*"
_WIDTH = re.compile(r"^model\.hidden_sizes\.(\d+)$")
_TRAIN_STREAM = 1


@dataclass(frozen=True)
class Condition:
    """Parent `parent` must equal one of `values`, and/or lie in [minimum, maximum]."""

    parent: str
    values: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @classmethod
    def from_raw(cls, parent: str, raw: Any) -> Condition:
        """Parse the plain form: a scalar, a list of scalars, or {min, max}."""
        if isinstance(raw, dict):
            extra = set(raw) - {"min", "max"}
            if extra or not raw:
                raise ValueError(f"when.{parent}: a table takes min and/or max, got {raw!r}")
            for key, bound in raw.items():
                if isinstance(bound, bool) or not isinstance(bound, int | float):
                    raise ValueError(f"when.{parent}.{key} must be a number, got {bound!r}")
            return cls(parent, minimum=raw.get("min"), maximum=raw.get("max"))
        values = tuple(raw) if isinstance(raw, list | tuple) else (raw,)
        if not values or not all(isinstance(v, bool | int | float | str) for v in values):
            raise ValueError(f"when.{parent}: expected scalars, got {raw!r}")
        return cls(parent, values=values)

    def to_raw(self) -> Any:
        """The plain form `from_raw` reads."""
        if self.values is not None:
            return self.values[0] if len(self.values) == 1 else list(self.values)
        bounds = {"min": self.minimum, "max": self.maximum}
        return {key: bound for key, bound in bounds.items() if bound is not None}

    def holds(self, value: Any) -> bool:
        """Whether the parent's sampled `value` activates the child."""
        if self.values is not None:
            return any(type(v) is type(value) and v == value for v in self.values)
        if self.minimum is not None and value < self.minimum:
            return False
        return not (self.maximum is not None and value > self.maximum)


@dataclass(frozen=True)
class Param:
    """One named parameter: its distribution, conditions and hard limits.

    `limits` are the bounds no widening may cross (from the config's own
    validation, e.g. keep_prob <= 1, or given in the spec); None = unbounded.
    """

    name: str
    distribution: Distribution
    conditions: tuple[Condition, ...] = ()
    limits: tuple[float | None, float | None] = (None, None)

    def to_dict(self) -> dict[str, Any]:
        """`{kind, low, high | values, [when], [limit_low], [limit_high]}`."""
        data = self.distribution.to_dict()
        if self.conditions:
            data["when"] = {c.parent: c.to_raw() for c in self.conditions}
        for key, bound in zip(("limit_low", "limit_high"), self.limits, strict=True):
            if bound is not None:
                data[key] = bound
        return data

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Param:
        """Parse the plain form of `to_dict`; errors name the parameter."""
        body = dict(data)
        when = body.pop("when", None) or {}
        limits = (body.pop("limit_low", None), body.pop("limit_high", None))
        try:
            distribution = distribution_from_dict(body)
            if not isinstance(when, dict):
                raise ValueError(f"when must be a table, got {when!r}")
            conditions = tuple(Condition.from_raw(parent, raw) for parent, raw in when.items())
            for key, bound in zip(("limit_low", "limit_high"), limits, strict=True):
                if bound is not None and not _is_real(bound):
                    raise ValueError(f"{key} must be a finite number, got {bound!r}")
        except ValueError as exc:
            raise ValueError(f"space.{name}: {exc}") from exc
        return cls(name, distribution, conditions, limits)


def _is_real(value: Any) -> bool:
    """A finite int or float (not a bool): what a hard bound may be."""
    return type(value) in (int, float) and math.isfinite(value)


@dataclass(frozen=True)
class SearchSpace:
    """Validated parameters in an order where parents come before children."""

    params: tuple[Param, ...]
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        params = _with_depth_conditions(tuple(self.params))
        ordered = _topological(params)
        object.__setattr__(self, "params", ordered)
        object.__setattr__(self, "_index", {p.name: k for k, p in enumerate(ordered)})

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        return self.params[self._index[name]]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def replace_distribution(self, name: str, distribution: Distribution) -> SearchSpace:
        """A copy with one parameter's distribution changed."""
        params = [
            replace(p, distribution=distribution) if p.name == name else p for p in self.params
        ]
        return SearchSpace(tuple(params))

    def is_active(self, param: Param, values: Mapping[str, Any]) -> bool:
        """Whether `param` is active given the values sampled so far."""
        return all(c.parent in values and c.holds(values[c.parent]) for c in param.conditions)

    def point(self, units: Iterable[float]) -> dict[str, Any]:
        """The parameter dict at unit coordinates (one per parameter, in order)."""
        values: dict[str, Any] = {}
        for param, u in zip(self.params, units, strict=True):
            if self.is_active(param, values):
                values[param.name] = param.distribution.from_unit(float(u))
        return values

    def contains(self, values: Mapping[str, Any]) -> bool:
        """Whether `values` holds exactly the active parameters, each in range."""
        expected: dict[str, Any] = {}
        for param in self.params:
            if self.is_active(param, expected) and param.name in values:
                expected[param.name] = values[param.name]
        active = {p.name for p in self.params if self.is_active(p, expected)}
        if set(values) != active:
            return False
        return all(self[name].distribution.contains(value) for name, value in values.items())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """`{name: param.to_dict()}`, the form of a spec's `[space]` table."""
        return {p.name: p.to_dict() for p in self.params}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        """Parse `{name: {kind, ...}}`; raises ValueError naming the parameter."""
        return cls(tuple(Param.from_dict(name, body) for name, body in data.items()))


def _with_depth_conditions(params: tuple[Param, ...]) -> tuple[Param, ...]:
    if DEPTH not in {p.name for p in params}:
        return params
    result = []
    for param in params:
        match = _WIDTH.match(param.name)
        if match and all(c.parent != DEPTH for c in param.conditions):
            implied = Condition(DEPTH, minimum=int(match.group(1)) + 1)
            param = replace(param, conditions=(*param.conditions, implied))
        result.append(param)
    return tuple(result)


def _topological(params: tuple[Param, ...]) -> tuple[Param, ...]:
    """Stable order with parents first; refuses duplicates, unknown parents, cycles."""
    names = [p.name for p in params]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"space: duplicate parameter names {duplicates}")
    for param in params:
        for condition in param.conditions:
            if condition.parent not in names:
                raise ValueError(
                    f"space.{param.name}.when: condition on {condition.parent!r}, "
                    f"which is not a parameter of the space"
                )
    ordered: list[Param] = []
    placed: set[str] = set()
    while len(ordered) < len(params):
        ready = [
            p
            for p in params
            if p.name not in placed and all(c.parent in placed for c in p.conditions)
        ]
        if not ready:
            stuck = sorted(set(names) - placed)
            raise ValueError(f"space: conditions form a cycle among {stuck}")
        ordered.append(ready[0])
        placed.add(ready[0].name)
    return tuple(ordered)


def check_conditions(space: SearchSpace) -> None:
    """Refuse conditions that can never hold in `space` (for user specs; a refined
    space may legitimately drop a parent's value and leave its child inactive)."""
    for param in space.params:
        for condition in param.conditions:
            _check_condition(param.name, condition, space[condition.parent].distribution)


def _check_condition(name: str, condition: Condition, parent: Distribution) -> None:
    if condition.values is not None and isinstance(parent, Choice):
        missing = [v for v in condition.values if not parent.contains(v)]
        if missing:
            raise ValueError(
                f"space.{name}.when: {condition.parent} can never be {missing!r}; "
                f"its values are {list(parent.values)!r}"
            )
    numeric_choice = isinstance(parent, Choice) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in parent.values
    )
    if condition.values is None and not (isinstance(parent, NumericDistribution) or numeric_choice):
        raise ValueError(f"space.{name}.when: min/max needs a numeric parent {condition.parent!r}")


def sample_params(space: SearchSpace, seed: int, stage: int, index: int) -> dict[str, Any]:
    """The random configuration of trial `index` of `stage`: a pure function of its arguments."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, stage, index]))
    return space.point(rng.random(len(space.params)))


def train_seed(seed: int, stage: int, index: int) -> int:
    """The training seed of trial `index` of `stage`, from a stream distinct from its params."""
    sequence = np.random.SeedSequence([seed, stage, index, _TRAIN_STREAM])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def grid_params(space: SearchSpace, count: int, index: int) -> dict[str, Any]:
    """Point `index` of a full grid of at most `count` points over `space`.

    Each parameter gets `m` levels at unit positions (j + 0.5) / m (log space
    for log parameters; every value for a small choice); levels are added one
    at a time to the parameter with the fewest, while the product stays within
    `count`. Indexes past the grid's size wrap around.
    """
    if count < 1 or index < 0:
        raise ValueError(f"grid: count must be >= 1 and index >= 0, got {count}, {index}")
    levels = _grid_levels(space, count)
    remainder = index % math.prod(levels)
    units = []
    for level_count in levels:
        remainder, level = divmod(remainder, level_count)
        units.append((level + 0.5) / level_count)
    return space.point(units)


def _grid_levels(space: SearchSpace, count: int) -> list[int]:
    caps = [_level_cap(p.distribution) for p in space.params]
    levels = [1] * len(caps)
    while True:
        total = math.prod(levels)
        open_dims = [
            k
            for k in sorted(range(len(levels)), key=lambda d: levels[d])
            if levels[k] < caps[k] and total // levels[k] * (levels[k] + 1) <= count
        ]
        if not open_dims:
            return levels
        levels[open_dims[0]] += 1


def _level_cap(distribution: Distribution) -> int:
    if isinstance(distribution, Choice):
        return len(distribution.values)
    if isinstance(distribution, NumericDistribution) and distribution.is_int:
        return int(distribution.high - distribution.low) + 1
    return 1_000_000
