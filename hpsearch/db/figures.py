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

from sqlalchemy import Connection, bindparam, case, func, or_, select, union_all
from sqlalchemy.orm import aliased

from hpsearch.db.base import StoreBase
from hpsearch.db.models import EpochMetricRow, SearchRow, StageRow, TrialRow, UTCDateTime
from hpsearch.db.searches import result_column
from hpsearch.errors import NotFoundError

__all__ = ["FigureQueries", "TrialPoint", "WorkerSpan"]

MAX_CURVE_TRIALS = 100


@dataclass(frozen=True)
class TrialPoint:
    """One trial as the search figures need it (scatter, parallel coordinates, timeline)."""

    trial_id: int
    stage: int
    status: str
    params: dict[str, Any]
    best_val_accuracy: float | None
    result_val_accuracy: float | None  # under the search's `result` (best or last epoch)
    last_epoch: int | None
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class WorkerSpan:
    """What one worker did for a search: trials started, seconds busy, first start, last end."""

    worker_id: str
    trials: int
    busy_s: float
    first_start: datetime
    last_end: datetime


def _point_columns(result: str, params: bool = True) -> list[Any]:
    """TrialPoint's columns (all but params without `params`)."""
    return [
        TrialRow.id.label("trial_id"),
        TrialRow.stage,
        TrialRow.status,
        *([TrialRow.params] if params else []),
        TrialRow.best_val_accuracy,
        result_column(result).label("result_val_accuracy"),
        TrialRow.last_epoch,
        TrialRow.worker_id,
        TrialRow.started_at,
        TrialRow.finished_at,
    ]


class FigureQueries(StoreBase):
    def trial_points(self, search_id: int) -> list[TrialPoint]:
        """The search's trials in id order; NotFoundError for a missing search."""
        with self._read_core() as connection:
            query = select(*_point_columns(_result_of(connection, search_id)))
            query = query.where(TrialRow.search_id == search_id)
            rows = connection.execute(query.order_by(TrialRow.id)).all()
        return [TrialPoint(**row._mapping) for row in rows]

    def sampled_points(self, search_id: int, max_points: int) -> tuple[int, list[TrialPoint]]:
        """(how many trials the search has, at most `max_points` of them in id order): the
        best quarter by result (the search's `result`: best or last epoch's validation
        accuracy; unscored last), then an even spread of the rest by id (positions
        ceil(k * n / m) of the n others, k < m = the places left). All of them when they
        fit. Picked in SQL: only the kept rows leave the database."""
        with self._read_core() as connection:
            result = _result_of(connection, search_id)
            total, query = self._sampled(search_id, max_points, result)
            count = connection.execute(total).scalar_one()
            rows = connection.execute(query).all()
        return int(count), [TrialPoint(**row._mapping) for row in rows]

    @staticmethod
    def _sampled(search_id: int, max_points: int, result: str) -> tuple[Any, Any]:
        """The count query and the kept rows' query of `sampled_points`."""
        best = max_points // 4
        spread = max_points - best
        accuracy = result_column(result)
        ranked = (
            select(
                TrialRow.id,
                func.row_number()
                .over(order_by=(accuracy.is_(None), accuracy.desc(), TrialRow.id))
                .label("rank"),
            )
            .where(TrialRow.search_id == search_id)
            .cte("ranked")
        )
        others = (
            select(
                ranked.c.id,
                (func.row_number().over(order_by=ranked.c.id) - 1).label("position"),
                func.count().over().label("others"),
            )
            .where(ranked.c.rank > best)
            .cte("others")
        )
        # Position p opens the next of `spread` equal runs of the others: p = 0, or p where
        # floor(p * spread / n) steps up (integer division on positive operands).
        position, count_others = others.c.position, others.c.others
        opens_a_run = or_(
            position == 0,
            (position * spread) // count_others != ((position - 1) * spread) // count_others,
        )
        kept = union_all(
            select(ranked.c.id).where(ranked.c.rank <= best),
            select(others.c.id).where(opens_a_run),
        )
        query = (
            select(*_point_columns(result))
            .where(TrialRow.search_id == search_id, TrialRow.id.in_(kept.scalar_subquery()))
            .order_by(TrialRow.id)
        )
        return select(func.count()).where(TrialRow.search_id == search_id), query

    def recent_trials(self, search_id: int, limit: int) -> list[TrialPoint]:
        """The `limit` most recently started trials of the search (parameters left empty),
        oldest first."""
        with self._read_core() as connection:
            query = (
                select(*_point_columns(_result_of(connection, search_id), params=False))
                .where(TrialRow.search_id == search_id, TrialRow.started_at.is_not(None))
                .order_by(TrialRow.started_at.desc(), TrialRow.id.desc())
                .limit(limit)
            )
            rows = connection.execute(query).all()
        return [TrialPoint(**row._mapping, params={}) for row in reversed(rows)]

    def worker_spans(self, search_id: int, now: datetime) -> list[WorkerSpan]:
        """Per worker that ran trials of the search: how many, seconds busy (a running
        trial counts until `now`), first start and last end."""
        end = func.coalesce(TrialRow.finished_at, bindparam("now", now, type_=UTCDateTime()))
        if self.engine.dialect.name == "postgresql":
            seconds: Any = func.extract("epoch", end - TrialRow.started_at)
        else:
            seconds = (func.julianday(end) - func.julianday(TrialRow.started_at)) * 86400.0
        query = (
            select(
                TrialRow.worker_id, func.count(), func.sum(seconds),
                func.min(TrialRow.started_at), func.max(end),
            )
            .where(
                TrialRow.search_id == search_id,
                TrialRow.worker_id.is_not(None),
                TrialRow.started_at.is_not(None),
            )
            .group_by(TrialRow.worker_id)
            .order_by(TrialRow.worker_id)
        )  # fmt: skip
        with self._read_core() as connection:
            rows = connection.execute(query).all()
        return [
            WorkerSpan(str(worker), int(count), max(0.0, float(busy or 0.0)), first, last)
            for worker, count, busy, first, last in rows
        ]

    def epochs_trained(self, search_id: int) -> int:
        """Epochs the search's trials trained: each trial's last epoch minus the epoch its
        parent stopped at (a promotion counts only the epochs it added)."""
        parent = aliased(TrialRow)
        start = func.coalesce(parent.last_epoch, 0)
        own = case((TrialRow.last_epoch > start, TrialRow.last_epoch - start), else_=0)
        with self._read_core() as connection:
            total = connection.execute(
                select(func.coalesce(func.sum(own), 0))
                .select_from(TrialRow)
                .outerjoin(parent, parent.id == TrialRow.parent_trial_id)
                .where(TrialRow.search_id == search_id)
            ).scalar_one()
        return int(total)

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

    def learned_version(self, search_id: int) -> str:
        """A string that changes whenever what the search learned can change: its stages
        and its completed trials with an accuracy (ids, count, last finish). Trials never
        leave `completed` and stages are written once, so equal strings mean equal inputs.
        NotFoundError for a missing search."""
        completed = select(
            func.count(), func.coalesce(func.sum(TrialRow.id), 0), func.max(TrialRow.finished_at)
        ).where(
            TrialRow.search_id == search_id,
            TrialRow.status == "completed",
            TrialRow.best_val_accuracy.is_not(None),
        )
        stages = select(func.count(), func.max(StageRow.stage)).where(
            StageRow.search_id == search_id
        )
        with self._read_core() as connection:
            _result_of(connection, search_id)
            count, id_sum, last = connection.execute(completed).one()
            stage_count, top_stage = connection.execute(stages).one()
        finished = last.isoformat() if last is not None else "-"
        return f"{search_id}:{stage_count}:{top_stage}:{count}:{id_sum}:{finished}"

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


def _result_of(connection: Connection, search_id: int) -> str:
    """The search's `result`; NotFoundError for a missing search."""
    result = connection.execute(select(SearchRow.result).where(SearchRow.id == search_id)).scalar()
    if result is None:
        raise NotFoundError(f"search {search_id!r} does not exist")
    return str(result)
