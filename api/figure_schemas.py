"""Response bodies of the dashboard's figure routes (aggregated and downsampled server-side)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, RootModel

__all__ = [
    "CurveListPublic",
    "CurvePublic",
    "HeatmapPublic",
    "LossCurvePublic",
    "SearchPointsPublic",
    "TimelineBarPublic",
    "TimelinePublic",
    "TrialFiguresPublic",
    "WorkerActivityPublic",
    "WorkerShare",
]


class SearchPointsPublic(BaseModel):
    """One column per field, one entry per trial shown (the best quarter + an even spread)."""

    total: int = Field(description="trials in the search")
    shown: int = Field(description="trials in these columns (at most max_points)")
    trial_id: list[int]
    stage: list[int]
    status: list[str]
    val_accuracy: list[float | None]
    params: dict[str, list[Any]] = Field(description="parameter name -> value per trial")


class CurvePublic(BaseModel):
    trial_id: int
    stage: int
    best_val_accuracy: float | None
    epoch: list[int]
    val_accuracy: list[float]


class CurveListPublic(RootModel[list[CurvePublic]]):
    """The best trials' validation curves, best first."""


class TimelineBarPublic(BaseModel):
    trial_id: int
    worker_id: str
    status: str
    started_at: datetime
    finished_at: datetime | None


class WorkerShare(BaseModel):
    worker_id: str
    trials: int
    busy_s: float
    busy_share: float = Field(description="busy seconds / seconds since its first trial started")


class TimelinePublic(BaseModel):
    total: int = Field(description="trials that have started")
    bars: list[TimelineBarPublic] = Field(description="the most recently started trials")
    workers: list[WorkerShare]


class LossCurvePublic(BaseModel):
    x: list[float] = Field(description="position in epochs")
    y: list[float | None]


class HeatmapPublic(BaseModel):
    edges: list[float]
    fractions: list[list[float]] = Field(description="per epoch: share of values in each bin")


class TrialFiguresPublic(BaseModel):
    trial_id: int
    epochs_recorded: int
    epoch: list[int]
    train_loss: list[float | None]
    val_loss: list[float | None]
    train_accuracy: list[float | None]
    val_accuracy: list[float | None]
    loss_per_iteration: LossCurvePublic
    update_ratios: dict[str, list[float | None]]
    dead_relu_fraction: dict[str, list[float | None]]
    activation_histograms: dict[str, HeatmapPublic]
    gradient_histograms: dict[str, HeatmapPublic]
    first_layer_image: bool = Field(description="GET first-layer.png has an image")


class WorkerActivityPublic(BaseModel):
    id: str
    alive: bool
    status: str
    current_trial_id: int | None
    trials_done: int
    busy_share: float = Field(description="busy seconds / seconds since the worker started")
