"""Checkpoint file names: the validation accuracy first, so sorting names sorts models.

Format (see the package docstring for the full rules)::

    val<A.AAAA>_s<SSSS>_t<TTTTTT>_e<EEE>.npz     e.g.  val0.8312_s0007_t000042_e005.npz
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from numbers import Real

__all__ = [
    "CHECKPOINT_NAME_PATTERN",
    "ENSEMBLE_NAME_PATTERN",
    "CheckpointName",
    "checkpoint_name",
    "ensemble_name",
    "is_checkpoint_name",
    "is_ensemble_name",
    "parse_checkpoint_name",
]

CHECKPOINT_NAME_PATTERN = re.compile(
    r"^val(?P<val_accuracy>[01]\.[0-9]{4})"
    r"_s(?P<stage>[0-9]{4,})"
    r"_t(?P<trial>[0-9]{6,})"
    r"_e(?P<epoch>[0-9]{3,})\.npz$"
)
"""Matches final checkpoint names only; temporaries (".*.tmp") never match."""

ENSEMBLE_NAME_PATTERN = re.compile(
    r"^val(?P<val_accuracy>[01]\.[0-9]{4})_ensemble_(?P<ensemble>[0-9]{6,})_(?P<kind>[a-z_]+)\.npz$"
)
"""Ensemble files (`hpsearch.ensembles.files`): they sort with checkpoints, listings skip them."""


@dataclass(frozen=True, order=True)
class CheckpointName:
    """The four numbers a checkpoint name carries.

    Ordering compares (val_accuracy, stage, trial, epoch), so
    `sorted(names, reverse=True)` is best-first, exactly like `ls | sort -r`.
    """

    val_accuracy: float
    stage: int
    trial: int
    epoch: int

    def __str__(self) -> str:
        return checkpoint_name(self.val_accuracy, self.stage, self.trial, self.epoch)


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _format_accuracy(val_accuracy: object) -> str:
    """Fixed four decimals, clamped to [0, 1]; NaN, inf and None are refused."""
    if isinstance(val_accuracy, bool) or not isinstance(val_accuracy, Real):
        raise ValueError(f"val_accuracy must be a real number, got {val_accuracy!r}")
    value = float(val_accuracy)
    if not math.isfinite(value):
        raise ValueError(
            f"val_accuracy must be finite to name a checkpoint, got {value!r}; "
            "a trial without a validation accuracy gets no named checkpoint"
        )
    clamped = 0.0 if value <= 0.0 else min(value, 1.0)
    return f"{clamped:.4f}"


def checkpoint_name(val_accuracy: float, stage: int, trial: int, epoch: int) -> str:
    """Return the file name of a checkpoint, e.g. ``val0.8312_s0007_t000042_e005.npz``.

    Inputs:
    - val_accuracy: validation accuracy of this epoch; clamped to [0, 1] and
      rounded to 4 decimals. NaN, +-inf and None raise ValueError.
    - stage, trial, epoch: non-negative ints, zero-padded to 4, 6 and 3 digits
      (larger numbers use more digits and still parse).
    """
    accuracy = _format_accuracy(val_accuracy)
    stage = _check_count("stage", stage)
    trial = _check_count("trial", trial)
    epoch = _check_count("epoch", epoch)
    return f"val{accuracy}_s{stage:04d}_t{trial:06d}_e{epoch:03d}.npz"


def parse_checkpoint_name(name: str) -> CheckpointName:
    """Parse a final checkpoint name; anything else raises ValueError naming it."""
    match = CHECKPOINT_NAME_PATTERN.match(name)
    accuracy = float(match["val_accuracy"]) if match else math.nan
    if match is None or accuracy > 1.0:
        raise ValueError(
            f"name {name!r} is not a checkpoint name like 'val0.8312_s0007_t000042_e005.npz'"
        )
    return CheckpointName(accuracy, int(match["stage"]), int(match["trial"]), int(match["epoch"]))


def is_checkpoint_name(name: str) -> bool:
    """True when `name` is a final checkpoint name (listings ignore everything else)."""
    try:
        parse_checkpoint_name(name)
    except ValueError:
        return False
    return True


def ensemble_name(val_accuracy: float, ensemble_id: int, kind: str) -> str:
    """The file name of an ensemble, e.g. ``val0.9650_ensemble_000003_greedy.npz``.

    The accuracy is formatted exactly as in `checkpoint_name`, so the names of
    a folder's ensembles and checkpoints sort together by validation accuracy.
    """
    if not re.fullmatch(r"[a-z_]+", str(kind)):
        raise ValueError(f"kind must be lowercase letters and '_', got {kind!r}")
    ensemble_id = _check_count("ensemble_id", ensemble_id)
    return f"val{_format_accuracy(val_accuracy)}_ensemble_{ensemble_id:06d}_{kind}.npz"


def is_ensemble_name(name: str) -> bool:
    """True when `name` is an ensemble file name."""
    match = ENSEMBLE_NAME_PATTERN.match(name)
    return match is not None and float(match["val_accuracy"]) <= 1.0
