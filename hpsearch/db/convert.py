"""Row-to-record copies, JSON sanitising and argument checks shared by the storage API."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

__all__ = [
    "check_choice",
    "check_non_negative",
    "check_positive",
    "finite_or_none",
    "json_safe",
    "to_record",
    "utc_now",
]

RecordT = TypeVar("RecordT")


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_record(record_type: type[RecordT], row: Any, **extra: Any) -> RecordT:
    """Copy the fields of the dataclass `record_type` from the ORM `row`."""
    names = [f.name for f in fields(record_type)]  # type: ignore[arg-type]
    values = {name: extra[name] if name in extra else getattr(row, name) for name in names}
    return record_type(**values)


def json_safe(value: Any, name: str) -> Any:
    """`value` as plain JSON: non-finite floats become None, array-likes become lists.

    Raises TypeError naming `name` for anything else that JSON cannot hold.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item, name) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item, name) for item in value]
    if hasattr(value, "tolist"):
        return json_safe(value.tolist(), name)
    raise TypeError(f"{name} holds {type(value).__name__} {value!r}, which JSON cannot store")


def finite_or_none(value: Any) -> float | None:
    """A finite float, or None for None / NaN / ±inf."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def check_choice(value: str, allowed: Iterable[str], name: str) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def check_positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return value


def check_non_negative(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return value
