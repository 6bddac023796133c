"""Frozen records returned by the storage API, and the value sets it accepts.

Records are plain immutable values copied out of a transaction; they never
hold a database session. JSON fields are plain `dict`/`list` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

__all__ = [
    "ENSEMBLE_STATUSES",
    "FAILURE_KINDS",
    "FINISHED_TRIAL_STATUSES",
    "RESULTS",
    "RETRY_BUDGETS",
    "SEARCH_STATUSES",
    "SEARCH_TRANSITIONS",
    "TRIAL_STATUSES",
    "CandidateCheckpoint",
    "CheckpointRecord",
    "EnsembleRecord",
    "EpochCommit",
    "EpochRecord",
    "Leaderboard",
    "NewTrial",
    "SearchRecord",
    "SearchSnapshot",
    "StageRecord",
    "TrialEventRecord",
    "TrialHeartbeat",
    "TrialPage",
    "TrialRecord",
    "TrialView",
    "WorkerRecord",
    "result_accuracy",
]

SEARCH_STATUSES = ("running", "paused", "completed", "cancelled", "failed")
SEARCH_TRANSITIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "running": frozenset({"paused", "completed", "cancelled", "failed"}),
        "paused": frozenset({"running", "cancelled", "failed"}),
        "completed": frozenset(),
        "cancelled": frozenset(),
        "failed": frozenset(),
    }
)
TRIAL_STATUSES = ("queued", "running", "completed", "diverged", "failed", "cancelled")
FINISHED_TRIAL_STATUSES = frozenset({"completed", "diverged", "failed", "cancelled"})
FAILURE_KINDS = ("infrastructure", "oom", "divergence", "cancel", "error")
# Retries allowed after a failure of each kind (a trial runs at most 1 + budget times).
RETRY_BUDGETS: Mapping[str, int] = MappingProxyType(
    {"infrastructure": 3, "oom": 1, "divergence": 0, "cancel": 0, "error": 0}
)
DEFAULT_MAX_ATTEMPTS = 1 + max(RETRY_BUDGETS.values())
# Which epoch of a trial is its result (a search's `result`): its best by validation, or its last.
RESULTS = ("best", "last")


@dataclass(frozen=True)
class SearchRecord:
    id: int
    name: str
    spec: dict[str, Any]
    status: str
    seed: int
    created_at: datetime
    finished_at: datetime | None
    budget_epochs: int | None
    concurrency: int
    best_trial_id: int | None
    reason: str | None
    result: str  # "best" | "last": which epoch of a trial is its result


@dataclass(frozen=True)
class StageRecord:
    search_id: int
    stage: int
    space: dict[str, Any]
    warnings: list[Any]
    started_at: datetime


@dataclass(frozen=True)
class NewTrial:
    """A trial the master wants to exist; (stage, index) identifies it in its search."""

    stage: int
    index: int
    params: dict[str, Any]
    config: dict[str, Any]
    train_seed: int
    epochs: int
    parent_trial_id: int | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


@dataclass(frozen=True)
class TrialRecord:
    id: int
    search_id: int
    stage: int
    index: int
    params: dict[str, Any]
    config: dict[str, Any]
    train_seed: int
    epochs: int
    parent_trial_id: int | None
    status: str
    attempts: int
    max_attempts: int
    worker_id: str | None
    heartbeat_at: datetime | None
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    best_val_accuracy: float | None
    last_val_accuracy: float | None
    last_epoch: int | None
    error: str | None
    failure_kind: str | None
    cancel_requested: bool


@dataclass(frozen=True)
class TrialEventRecord:
    """One state change of a trial (see `hpsearch.db.events`)."""

    trial_id: int
    at: datetime
    event: str
    status: str
    worker_id: str | None
    attempt: int
    reason: str | None


@dataclass(frozen=True)
class TrialView:
    """What the scheduler needs to know about one trial of a search."""

    trial_id: int
    stage: int
    index: int
    status: str
    params: dict[str, Any]
    best_val_accuracy: float | None
    last_val_accuracy: float | None
    last_epoch: int | None
    parent_trial_id: int | None


def result_accuracy(trial: TrialRecord | TrialView, result: str) -> float | None:
    """The validation accuracy that is the trial's result under the search's `result`."""
    return trial.last_val_accuracy if result == "last" else trial.best_val_accuracy


@dataclass(frozen=True)
class SearchSnapshot:
    """A search, its stages and its trials as the scheduler sees them, read together."""

    search: SearchRecord
    stages: list[StageRecord]
    trials: list[TrialView]


@dataclass(frozen=True)
class TrialHeartbeat:
    """`owned` is False when the trial is no longer running under this worker."""

    owned: bool
    cancel_requested: bool


@dataclass(frozen=True)
class EpochRecord:
    trial_id: int
    epoch: int
    train_loss: float | None
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    ema_val_accuracy: float | None
    learning_rate: float | None
    stats: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True)
class EpochCommit:
    """What `commit_epoch` stored: the trial's status after it (still `running`
    unless it was finished in the same transaction), its cancel flag, and the
    checkpoint row's id (None without a checkpoint)."""

    trial_id: int
    epoch: int
    status: str
    cancel_requested: bool
    checkpoint_id: int | None


@dataclass(frozen=True)
class CheckpointRecord:
    id: int
    trial_id: int
    epoch: int
    path: str
    val_accuracy: float | None
    created_at: datetime


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    host: str
    pid: int
    started_at: datetime
    last_heartbeat: datetime
    current_trial_id: int | None
    status: str
    alive: bool


ENSEMBLE_STATUSES = ("queued", "running", "completed", "failed")


@dataclass(frozen=True)
class EnsembleRecord:
    id: int
    search_id: int
    kind: str
    size: int
    status: str
    members: list[Any]
    figures: dict[str, Any]
    path: str | None
    val_accuracy: float | None
    test_accuracy: float | None
    error: str | None
    worker_id: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class CandidateCheckpoint:
    """A stored checkpoint with the facts of its trial, for building ensembles."""

    checkpoint_id: int
    trial_id: int
    stage: int
    epoch: int
    path: str
    val_accuracy: float | None
    params: dict[str, Any]
    trial_best_val_accuracy: float | None


@dataclass(frozen=True)
class Leaderboard:
    """A page of a search's trials, best first (`leaderboard`), and the search's
    `result` ("best" | "last") that ranks them, read in one transaction."""

    result: str
    trials: list[TrialRecord]


@dataclass(frozen=True)
class TrialPage:
    """A trial with everything the API shows of it, read together (`trial_page`);
    `result`: its search's ("best" | "last")."""

    trial: TrialRecord
    result: str
    curves: list[EpochRecord]
    checkpoints: list[CheckpointRecord]
    events: list[TrialEventRecord]
