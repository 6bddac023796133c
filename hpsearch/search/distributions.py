"""Search-space distributions: validated in `__init__`, round-trip to plain dicts.

Every distribution maps a point `u` of the unit interval onto a value
(`from_unit`) and back (`to_unit`). Random search draws `u ~ U[0, 1)`; the grid
sampler uses lattice points; border detection reads positions with `to_unit`.
Positions are measured in log10 space for the log distributions, so the
"outer 10 % of the range" of `learning_rate = 10**uniform(-6, 1)` is the top
0.7 decades, as the notes mean it.

    LogUniform(low, high)   10**uniform(log10 low, log10 high), 0 < low < high
    Uniform(low, high)      uniform(low, high), low < high
    IntUniform(low, high)   integers low..high inclusive, equally likely
    LogInt(low, high)       integers low..high, log-uniform, 1 <= low < high
    Choice(values)          one of a non-empty list of distinct scalars
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

__all__ = [
    "Choice",
    "Distribution",
    "IntUniform",
    "LogInt",
    "LogUniform",
    "NumericDistribution",
    "Uniform",
    "distribution_from_dict",
]

Scalar = bool | int | float | str


class Distribution(ABC):
    """A one-dimensional search distribution; `kind` names it in dicts."""

    kind: ClassVar[str]

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """The value at position `u` in [0, 1] of the (log) range."""

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """The position of `value` in [0, 1] (log space for log kinds)."""

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether `value` can be sampled from this distribution."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A plain dict that `distribution_from_dict` turns back into an equal object."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{key}={value!r}" for key, value in self.to_dict().items() if key != "kind"
        )
        return f"{type(self).__name__}({fields})"


class NumericDistribution(Distribution):
    """A range `[low, high]` of floats or integers, linear or logarithmic."""

    log: ClassVar[bool]
    is_int: ClassVar[bool]

    def __init__(self, low: float, high: float) -> None:
        name = type(self).__name__
        for label, bound in (("low", low), ("high", high)):
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                raise ValueError(f"{name}: {label} must be a number, got {label}={bound!r}")
            if not math.isfinite(bound):
                raise ValueError(f"{name}: bounds must be finite, got {label}={bound!r}")
            if self.is_int and int(bound) != bound:
                raise ValueError(f"{name}: {label} must be an integer, got {label}={bound!r}")
        if not low < high:
            raise ValueError(f"{name}: low must be < high, got low={low!r}, high={high!r}")
        if self.log and low <= 0:
            raise ValueError(f"{name}: log bounds must be > 0, got low={low!r}")
        if isinstance(self, LogInt) and low < 1:
            raise ValueError(f"{name}: low must be >= 1, got low={low!r}")
        self.low: float = int(low) if self.is_int else float(low)
        self.high: float = int(high) if self.is_int else float(high)

    def _scale(self, value: float) -> float:
        return math.log10(value) if self.log else float(value)

    def _unscale(self, value: float) -> float:
        return 10.0**value if self.log else value

    def to_unit(self, value: Any) -> float:
        low, high = self._scale(self.low), self._scale(self.high)
        return (self._scale(float(value)) - low) / (high - low)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.is_int and int(value) != value:
            return False
        return self.low <= value <= self.high

    def with_bounds(self, low: float, high: float) -> NumericDistribution:
        """The same kind over a new range (rounded outward for integers)."""
        if self.is_int:
            return type(self)(math.floor(low + 1e-9), math.ceil(high - 1e-9))
        return type(self)(low, high)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": self.low, "high": self.high}


class Uniform(NumericDistribution):
    """Floats uniform on `[low, high)`: `low + u * (high - low)`."""

    kind = "uniform"
    log = False
    is_int = False

    def from_unit(self, u: float) -> float:
        return min(max(self.low + u * (self.high - self.low), self.low), self.high)


class LogUniform(NumericDistribution):
    """Floats `10**uniform(log10 low, log10 high)`; both bounds > 0."""

    kind = "log_uniform"
    log = True
    is_int = False

    def from_unit(self, u: float) -> float:
        low, high = math.log10(self.low), math.log10(self.high)
        return min(max(10.0 ** (low + u * (high - low)), self.low), self.high)


class IntUniform(NumericDistribution):
    """Integers `low..high` inclusive, each with probability 1/(high-low+1)."""

    kind = "int"
    log = False
    is_int = True

    def from_unit(self, u: float) -> int:
        count = int(self.high - self.low) + 1
        return int(self.low) + min(math.floor(u * count), count - 1)


class LogInt(NumericDistribution):
    """Integers `low..high` (low >= 1), log-uniform: `round(10**uniform(...))`.

    Each integer k owns the interval [k - 0.5, k + 0.5) in log space, so the
    end points are as likely as their neighbours.
    """

    kind = "log_int"
    log = True
    is_int = True

    def from_unit(self, u: float) -> int:
        low, high = math.log10(self.low - 0.5), math.log10(self.high + 0.5)
        value = round(10.0 ** (low + u * (high - low)))
        return int(min(max(value, self.low), self.high))


class Choice(Distribution):
    """One of `values` (distinct bools, ints, floats or strings), equally likely."""

    kind = "choice"

    def __init__(self, values: list[Scalar] | tuple[Scalar, ...]) -> None:
        if not isinstance(values, list | tuple) or len(values) == 0:
            raise ValueError(f"Choice: values must be a non-empty list, got values={values!r}")
        for value in values:
            if not isinstance(value, bool | int | float | str):
                raise ValueError(f"Choice: values must be scalars, got {value!r} in {values!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"Choice: values must be finite, got {value!r} in {values!r}")
        keys = [(type(value).__name__, value) for value in values]
        if len(set(keys)) != len(keys):
            raise ValueError(f"Choice: values must be distinct, got values={list(values)!r}")
        self.values: tuple[Scalar, ...] = tuple(values)

    def _index(self, value: Any) -> int:
        for index, candidate in enumerate(self.values):
            if type(candidate) is type(value) and candidate == value:
                return index
        raise ValueError(f"Choice: {value!r} is not one of {list(self.values)!r}")

    def from_unit(self, u: float) -> Scalar:
        count = len(self.values)
        return self.values[min(max(math.floor(u * count), 0), count - 1)]

    def to_unit(self, value: Any) -> float:
        return (self._index(value) + 0.5) / len(self.values)

    def contains(self, value: Any) -> bool:
        try:
            self._index(value)
        except ValueError:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "values": list(self.values)}


_KINDS: dict[str, type[NumericDistribution]] = {
    cls.kind: cls for cls in (Uniform, LogUniform, IntUniform, LogInt)
}


def distribution_from_dict(data: dict[str, Any]) -> Distribution:
    """Rebuild a distribution from `to_dict()` output; errors name the bad key."""
    if not isinstance(data, dict):
        raise ValueError(f"distribution must be a table, got {data!r}")
    kind = data.get("kind")
    if kind == "choice":
        extra = set(data) - {"kind", "values"}
        if extra:
            raise ValueError(f"choice: unexpected keys {sorted(extra)}")
        return Choice(data.get("values"))  # type: ignore[arg-type]
    if not isinstance(kind, str) or kind not in _KINDS:
        raise ValueError(f"kind must be one of {[*_KINDS, 'choice']}, got kind={kind!r}")
    extra = set(data) - {"kind", "low", "high"}
    if extra:
        raise ValueError(f"{kind}: unexpected keys {sorted(extra)}")
    if "low" not in data or "high" not in data:
        raise ValueError(f"{kind}: needs both low and high, got {data!r}")
    return _KINDS[kind](data["low"], data["high"])
