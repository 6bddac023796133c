"""Request and response bodies of the REST API: `XCreate` / `XUpdate` in, `XPublic` out.

A search is launched with the same document as a search TOML file, as JSON
(`SearchCreate` is `hpsearch.search.SearchSpec`). Responses copy the frozen
records of `hpsearch.db.records`; checkpoint paths on the shared volume are
never shown, only file names and download URLs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hpsearch.ensembles.kinds import Kind
from hpsearch.search import SearchSpec

__all__ = [
    "MAX_ID",
    "CheckpointPublic",
    "DatasetPublic",
    "EnsembleCreate",
    "EnsembleMemberPublic",
    "EnsemblePublic",
    "EnsembleSinglePublic",
    "EpochPublic",
    "ErrorPublic",
    "HealthPublic",
    "SearchCreate",
    "SearchDetailPublic",
    "SearchLearnedPublic",
    "SearchPublic",
    "SearchUpdate",
    "SessionCreate",
    "SessionPublic",
    "SpecUpload",
    "StagePublic",
    "StageRangesPublic",
    "TrialCountsPublic",
    "TrialDetailPublic",
    "TrialPublic",
    "WorkerPublic",
]

# Ids are 32-bit integer columns; larger path values are refused with 422.
MAX_ID = 2**31 - 1


class SearchCreate(SearchSpec):
    """A search spec, exactly as in a search TOML file (see hpsearch.search.spec)."""


class SearchUpdate(BaseModel):
    """New limits for a running or paused search; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    budget_epochs: int | None = Field(None, ge=1, le=MAX_ID)
    concurrency: int | None = Field(None, ge=1, le=10_000)


class SpecUpload(BaseModel):
    """A search spec file's text, as the dashboard's upload form reads it."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255, description="ends in .toml or .json")
    content: str = Field(description="the file's text (TOML, or JSON for a .json file)")


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=4096, description="an API token")


class SessionPublic(BaseModel):
    csrf_token: str = Field(description="send as X-CSRF-Token with unsafe requests")
    expires_at: int = Field(description="Unix time at which the session ends")


class ErrorPublic(BaseModel):
    detail: str


class TrialCountsPublic(BaseModel):
    queued: int
    running: int
    completed: int
    diverged: int
    failed: int
    cancelled: int
    total: int
    planned: int = Field(description="trials the spec's stages plan in all")
    epochs_trained: int = Field(0, description="epochs committed (against budget_epochs)")


class SearchPublic(BaseModel):
    id: int
    name: str
    status: Literal["running", "paused", "completed", "cancelled", "failed"]
    seed: int
    created_at: datetime
    finished_at: datetime | None
    budget_epochs: int | None
    concurrency: int
    best_trial_id: int | None
    reason: str | None
    result: Literal["best", "last"] = Field(
        description="which epoch of a trial is its result: its best by validation accuracy, "
        "or its last (the spec's `result`; ranks trials everywhere)"
    )
    progress: TrialCountsPublic


class TrialPublic(BaseModel):
    id: int
    search_id: int
    stage: int
    index: int
    params: dict[str, Any]
    epochs: int
    status: Literal["queued", "running", "completed", "diverged", "failed", "cancelled"]
    attempts: int
    best_val_accuracy: float | None
    last_val_accuracy: float | None = Field(description="validation accuracy of its last epoch")
    result_val_accuracy: float | None = Field(
        description="its result under the search's `result`: best_val_accuracy or last_val_accuracy"
    )
    last_epoch: int | None
    parent_trial_id: int | None
    worker_id: str | None
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    failure_kind: str | None
    cancel_requested: bool


class StagePublic(BaseModel):
    """A stage's search space (its ranges) and the border warnings it was started with."""

    stage: int
    space: dict[str, Any]
    warnings: list[Any]
    started_at: datetime


class StageRangesPublic(BaseModel):
    """A stage's ranges: `[low, high]` per numeric parameter, the values of a choice."""

    stage: int
    ranges: dict[str, list[Any]]


class SearchLearnedPublic(BaseModel):
    """What a search learned: each stage's ranges, and the share of validation-accuracy
    variance each parameter's main effect explains (highest first; empty below 8 results)."""

    stages: list[StageRangesPublic]
    importance: dict[str, float]


class SearchDetailPublic(SearchPublic):
    spec: dict[str, Any]
    stages: list[StagePublic]
    best_trial: TrialPublic | None


class EpochPublic(BaseModel):
    epoch: int
    train_loss: float | None
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    ema_val_accuracy: float | None
    learning_rate: float | None
    stats: dict[str, Any] | None = Field(
        None, description="babysitting statistics; only with include_stats=true"
    )


class CheckpointPublic(BaseModel):
    epoch: int
    val_accuracy: float | None
    name: str
    created_at: datetime
    download_url: str


class TrialEventPublic(BaseModel):
    """One state change of a trial: when, what, the status after it, worker, attempt, why."""

    at: datetime
    event: Literal[
        "created", "claimed", "completed", "diverged", "failed", "cancelled",
        "cancel_requested", "requeued", "handed_back", "reaped",
    ]  # fmt: skip
    status: Literal["queued", "running", "completed", "diverged", "failed", "cancelled"]
    worker_id: str | None
    attempt: int
    reason: str | None


class TrialDetailPublic(TrialPublic):
    """A trial with its configuration, timestamps of its status, curves and checkpoints."""

    config: dict[str, Any]
    train_seed: int
    max_attempts: int
    heartbeat_at: datetime | None
    curves: list[EpochPublic]
    epochs_recorded: int = Field(description="epochs committed, before any downsampling")
    checkpoints: list[CheckpointPublic]
    events: list[TrialEventPublic] = Field(
        description="the trial's history, oldest first: every state change"
    )


class DatasetPublic(BaseModel):
    name: str
    path: str = Field(description="the value for data.path in a spec (relative to the data root)")
    size_bytes: int
    arrays: dict[str, list[int]] = Field(description="array name -> shape")
    modified_at: datetime


class WorkerPublic(BaseModel):
    id: str
    host: str
    pid: int
    started_at: datetime
    last_heartbeat: datetime
    current_trial_id: int | None
    status: str
    alive: bool


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    redis: str


class EnsembleCreate(BaseModel):
    """An ensemble to build from a search's checkpoints (`hpsearch.ensembles.kinds`).

    size: members (top_k, snapshots, seeds), checkpoints averaged (polyak) or
    most picks (greedy); omitted: the kind's default, capped by what exists.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    size: int | None = Field(None, ge=1, le=1000)


class EnsembleMemberPublic(BaseModel):
    """One member: the trial and epoch of its checkpoint and its weight (weights sum to 1).

    polyak's single member is a parameter average: `variant` is "uniform"
    (the mean of `epochs`) or "ema" (the trainer's running average).
    """

    trial_id: int | None = None
    stage: int | None = None
    epoch: int | None = None
    val_accuracy: float | None = None
    weight: float
    variant: str | None = None
    epochs: list[int] | None = None


class EnsembleSinglePublic(BaseModel):
    """The search's best single checkpoint by validation accuracy, for comparison."""

    trial_id: int | None = None
    epoch: int | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None


class EnsemblePublic(BaseModel):
    """An ensemble: queued, running, completed (members, figures, file) or failed (error).

    test_accuracy is None without a test split; it never chose anything.
    diversity: mean pairwise disagreement of the members' validation predictions.
    figures: every figure of the build (build_s, extra_epochs, greedy's history,
    polyak's variants, ...).
    """

    id: int
    search_id: int
    kind: str
    size: int
    status: Literal["queued", "running", "completed", "failed"]
    val_accuracy: float | None
    test_accuracy: float | None
    best_single: EnsembleSinglePublic | None
    diversity: float | None
    members: list[EnsembleMemberPublic]
    figures: dict[str, Any]
    error: str | None
    name: str | None
    download_url: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
