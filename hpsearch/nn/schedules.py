"""Learning-rate annealing and momentum schedules (notes, part 3).

Every schedule is a function of the 0-based EPOCH index t of the epoch about
to run, so epoch 0 trains at the initial rate lr0:

- step:         ``lr0 * factor ** (t // step_epochs)``
- exponential:  ``lr0 * exp(-k * t)``
- inverse_time: ``lr0 / (1 + k * t)``
- plateau:      multiply the rate by ``factor`` when validation accuracy has not
  improved for ``patience`` epochs; a pure function over a plain state dict
  (`plateau_state`, `plateau_update`) so the state goes into a checkpoint.

Kind names match `hpsearch.config.ScheduleConfig.kind`, and the keyword
arguments of `learning_rate_at` match its field names.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "SCHEDULE_KINDS",
    "exponential_decay",
    "inverse_time_decay",
    "learning_rate_at",
    "momentum_schedule",
    "plateau_state",
    "plateau_update",
    "step_decay",
]

SCHEDULE_KINDS = ("constant", "step", "exponential", "inverse_time", "plateau")


def _number(name: str, value: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def _positive(name: str, value: float) -> float:
    number = _number(name, value)
    if not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return number


def _non_negative(name: str, value: float) -> float:
    number = _number(name, value)
    if not (math.isfinite(number) and number >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return number


def _integer(name: str, value: int, minimum: int) -> int:
    try:
        number = int(value)
        valid = not isinstance(value, bool) and number == value and number >= minimum
    except (TypeError, ValueError, OverflowError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


def _epoch(epoch: int) -> int:
    return _integer("epoch", epoch, 0)


def _fraction(name: str, value: float, *, allow_one: bool) -> float:
    number = _number(name, value)
    upper_ok = number <= 1.0 if allow_one else number < 1.0
    if not (math.isfinite(number) and number > 0.0 and upper_ok):
        interval = "(0, 1]" if allow_one else "(0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return number


def step_decay(lr0: float, epoch: int, step_epochs: int, factor: float) -> float:
    """``lr0 * factor ** (epoch // step_epochs)``: e.g. halve every 5 epochs."""
    lr0 = _positive("lr0", lr0)
    step_epochs = _integer("step_epochs", step_epochs, 1)
    factor = _fraction("factor", factor, allow_one=True)
    return lr0 * factor ** (_epoch(epoch) // step_epochs)


def exponential_decay(lr0: float, epoch: int, k: float) -> float:
    """``lr0 * exp(-k * epoch)``."""
    return _positive("lr0", lr0) * math.exp(-_non_negative("k", k) * _epoch(epoch))


def inverse_time_decay(lr0: float, epoch: int, k: float) -> float:
    """``lr0 / (1 + k * epoch)``."""
    return _positive("lr0", lr0) / (1.0 + _non_negative("k", k) * _epoch(epoch))


def plateau_state(learning_rate: float) -> dict[str, float | int]:
    """The initial plateau state: no epoch seen yet (``best = -1.0``).

    Keys: best (best validation accuracy so far, in [0, 1]; -1.0 before the
    first epoch), epochs_since_best (int), learning_rate (the current rate).
    Plain numbers only, so it is JSON- and `np.savez`-friendly.
    """
    return {
        "best": -1.0,
        "epochs_since_best": 0,
        "learning_rate": _positive("learning_rate", learning_rate),
    }


def plateau_update(
    state: dict[str, Any], val_accuracy: float, patience: int, factor: float
) -> tuple[float, dict[str, float | int]]:
    """Report one epoch's validation accuracy; returns (learning_rate, new_state).

    An accuracy strictly above ``state["best"]`` becomes the new best and resets
    the counter. Otherwise the counter grows, and when it reaches `patience`
    the rate is multiplied by `factor` (e.g. 0.5: halved) and the counter
    restarts, so the next cut needs another `patience` epochs without
    improvement. `state` is not modified; a state read back from a checkpoint
    (0-d arrays) is accepted.
    """
    missing = {"best", "epochs_since_best", "learning_rate"} - set(state)
    if missing:
        raise ValueError(f"state is missing keys {sorted(missing)}; start from plateau_state()")
    accuracy = _number("val_accuracy", val_accuracy)
    if not (math.isfinite(accuracy) and 0.0 <= accuracy <= 1.0):
        raise ValueError(f"val_accuracy must be in [0, 1], got {val_accuracy!r}")
    patience = _integer("patience", patience, 1)
    factor = _fraction("factor", factor, allow_one=False)
    best = float(state["best"])
    waited = int(state["epochs_since_best"])
    learning_rate = float(state["learning_rate"])
    if accuracy > best:
        best, waited = accuracy, 0
    else:
        waited += 1
        if waited >= patience:
            learning_rate *= factor
            waited = 0
    new_state = {"best": best, "epochs_since_best": waited, "learning_rate": learning_rate}
    return learning_rate, new_state


def momentum_schedule(epoch: int, start: float, end: float, epochs: int) -> float:
    """Momentum rising linearly from `start` at epoch 0 to `end` at `epochs`, then constant.

    ``start + (end - start) * min(epoch / epochs, 1)``; e.g. 0.5 rising to 0.99.
    """
    for name, value in (("start", start), ("end", end)):
        number = _number(name, value)
        if not (math.isfinite(number) and 0.0 <= number < 1.0):
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    progress = min(_epoch(epoch) / _integer("epochs", epochs, 1), 1.0)
    return float(start) + (float(end) - float(start)) * progress


def learning_rate_at(
    kind: str,
    lr0: float,
    epoch: int,
    *,
    step_epochs: int = 10,
    step_factor: float = 0.5,
    decay_k: float = 0.1,
    plateau: dict[str, Any] | None = None,
) -> float:
    """The learning rate for `epoch` under schedule `kind` (a `SCHEDULE_KINDS` name).

    Keyword names and defaults are those of `ScheduleConfig`. The plateau rule
    is stateful: for ``kind="plateau"`` pass its state (from `plateau_state` /
    `plateau_update`) as `plateau` and its current rate is returned.
    """
    if kind == "constant":
        return _positive("lr0", lr0)
    if kind == "step":
        return step_decay(lr0, epoch, step_epochs, step_factor)
    if kind == "exponential":
        return exponential_decay(lr0, epoch, decay_k)
    if kind == "inverse_time":
        return inverse_time_decay(lr0, epoch, decay_k)
    if kind == "plateau":
        if plateau is None or "learning_rate" not in plateau:
            raise ValueError("plateau must be a plateau_state() dict when kind is 'plateau'")
        return float(plateau["learning_rate"])
    raise ValueError(f"kind must be one of {list(SCHEDULE_KINDS)}, got {kind!r}")
