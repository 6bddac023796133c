"""Read-only, column-narrow queries for the dashboard's figures.

A search page at 10,000 trials reads one narrow row per trial (never the
configurations) and the validation curves of a handful of trials; the
aggregation and downsampling happen in `api.figures`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from hpsearch.db.base import StoreBase
from hpsearch.db.models import EpochMetricRow, SearchRow, TrialRow
from hpsearch.errors import NotFoundError

__all__ = ["FigureQueries", "TrialPoint"]

MAX_CURVE_TRIALS = 100


@dataclass(frozen=True)
class TrialPoint:
    """One trial as the search figures need it (scatter, parallel coordinates, timeline)."""

    trial_id: int
    stage: int
    status: str
    params: dict[str, Any]
    best_val_accuracy: float | None
    last_epoch: int | None
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime | None


_POINT_COLUMNS = (
    TrialRow.id,
    TrialRow.stage,
    TrialRow.status,
    TrialRow.params,
    TrialRow.best_val_accuracy,
    TrialRow.last_epoch,
    TrialRow.worker_id,
    TrialRow.started_at,
    TrialRow.finished_at,
)


class FigureQueries(StoreBase):
    def trial_points(self, search_id: int) -> list[TrialPoint]:
        """Every trial of the search in id order, narrow; NotFoundError for a missing search."""
        with self._read_core() as connection:
            if (
                connection.execute(select(SearchRow.id).where(SearchRow.id == search_id)).first()
                is None
            ):
                raise NotFoundError(f"search {search_id!r} does not exist")
            rows = connection.execute(
                select(*_POINT_COLUMNS).where(TrialRow.search_id == search_id).order_by(TrialRow.id)
            ).all()
        return [TrialPoint(*row) for row in rows]

    def epochs_trained(self, search_id: int) -> int:
        """Epoch records committed by the search's trials (a promotion counts only its own)."""
        with self._read_core() as connection:
            count = connection.execute(
                select(func.count(EpochMetricRow.id))
                .join(TrialRow, TrialRow.id == EpochMetricRow.trial_id)
                .where(TrialRow.search_id == search_id)
            ).scalar_one()
        return int(count)

    def worker_trial_spans(
        self, worker_ids: Sequence[str]
    ) -> list[tuple[str, datetime | None, datetime | None]]:
        """(worker_id, started_at, finished_at) of every trial these workers ran or run."""
        if not worker_ids:
            return []
        with self._read_core() as connection:
            rows = connection.execute(
                select(TrialRow.worker_id, TrialRow.started_at, TrialRow.finished_at).where(
                    TrialRow.worker_id.in_(list(worker_ids))
                )
            ).all()
        return [(str(worker_id), started, finished) for worker_id, started, finished in rows]

    def validation_curves(self, trial_ids: Sequence[int]) -> dict[int, list[tuple[int, float]]]:
        """(epoch, val_accuracy) per epoch of each trial (at most MAX_CURVE_TRIALS trials)."""
        if len(trial_ids) > MAX_CURVE_TRIALS:
            raise ValueError(f"trial_ids: at most {MAX_CURVE_TRIALS} trials, got {len(trial_ids)}")
        curves: dict[int, list[tuple[int, float]]] = {trial_id: [] for trial_id in trial_ids}
        if not trial_ids:
            return curves
        with self._read_core() as connection:
            rows = connection.execute(
                select(EpochMetricRow.trial_id, EpochMetricRow.epoch, EpochMetricRow.val_accuracy)
                .where(EpochMetricRow.trial_id.in_(list(trial_ids)))
                .order_by(EpochMetricRow.trial_id, EpochMetricRow.epoch)
            ).all()
        for trial_id, epoch, val_accuracy in rows:
            if val_accuracy is not None:
                curves[trial_id].append((epoch, val_accuracy))
        return curves
