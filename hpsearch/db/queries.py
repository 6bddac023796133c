"""Read-only views of trials: one trial, a search's state, leaderboards, the queue."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import fields
from functools import cache
from types import MappingProxyType
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, bindparam, func, select

from hpsearch.db.base import StoreBase
from hpsearch.db.convert import (
    check_choice,
    check_non_negative,
    check_positive,
)
from hpsearch.db.models import SearchRow, StageRow, TrialRow
from hpsearch.db.records import (
    RESULTS,
    SEARCH_TRANSITIONS,
    TRIAL_STATUSES,
    CheckpointRecord,
    EpochRecord,
    Leaderboard,
    SearchRecord,
    SearchSnapshot,
    StageRecord,
    TrialEventRecord,
    TrialPage,
    TrialRecord,
    TrialView,
)
from hpsearch.db.searches import best_trial_id_of, result_column, result_of
from hpsearch.db.statements import (
    CHECKPOINTS,
    CURVES,
    EVENTS,
    TRIAL,
    TRIAL_AND_RESULT,
    TRIAL_COLUMNS,
)
from hpsearch.errors import NotFoundError

__all__ = ["TRIAL_ORDERINGS", "TrialQueries"]

_SEARCHES = cast(Table, SearchRow.__table__)
_STAGES = cast(Table, StageRow.__table__)
# TrialView's fields, in order.
_VIEW_COLUMNS = (
    TrialRow.id,
    TrialRow.stage,
    TrialRow.index,
    TrialRow.status,
    TrialRow.params,
    TrialRow.best_val_accuracy,
    TrialRow.last_val_accuracy,
    TrialRow.last_epoch,
    TrialRow.parent_trial_id,
)

MAX_PAGE = 1000
# Leaderboard orderings: name -> (column, descending). Ties break on trial id.
# "result" is the search's result column (`result_column`: best or last epoch's accuracy).
TRIAL_ORDERINGS: Mapping[str, tuple[Any, bool]] = MappingProxyType(
    {
        "result": (None, True),
        "best_val_accuracy": (TrialRow.best_val_accuracy, True),
        "last_val_accuracy": (TrialRow.last_val_accuracy, True),
        "last_epoch": (TrialRow.last_epoch, True),
        "finished_at": (TrialRow.finished_at, True),
        "started_at": (TrialRow.started_at, False),
        "index": (TrialRow.index, False),
    }
)


class TrialQueries(StoreBase):
    def get_trial(self, trial_id: int) -> TrialRecord:
        with self._read_core() as connection:
            return _trial_of(connection, trial_id)

    def trial_page(self, trial_id: int) -> TrialPage:
        """The trial with its curves, checkpoints and events and its search's `result`
        (what the API shows of it): four statements on one connection."""
        parameters = {"trial": trial_id}
        with self._read_core() as connection:
            row = connection.execute(TRIAL_AND_RESULT, parameters).first()
            if row is None:
                raise NotFoundError(f"trial {trial_id!r} does not exist")
            curves = connection.execute(CURVES, parameters).all()
            checkpoints = connection.execute(CHECKPOINTS, parameters).all()
            events = connection.execute(EVENTS, parameters).all()
        # The statements select their records' fields in order: records are built positionally.
        return TrialPage(
            trial=TrialRecord(*row[:-1]),
            result=str(row[-1]),
            curves=[EpochRecord(*row) for row in curves],
            checkpoints=[CheckpointRecord(*row) for row in checkpoints],
            events=[TrialEventRecord(*row) for row in events],
        )

    def search_state(self, search_id: int) -> list[TrialView]:
        """Every trial of the search, by (stage, index), as the scheduler sees it.

        Reads only the scheduler's columns (never the trials' configurations).
        """
        with self._read_core() as connection:
            rows = connection.execute(_views_of(search_id)).all()
            if not rows and connection.execute(_search_exists(search_id)).first() is None:
                raise NotFoundError(f"search {search_id!r} does not exist")
        return [TrialView(*row) for row in rows]

    def search_snapshot(self, search_id: int) -> SearchSnapshot:
        """`get_search`, `list_stages` and `search_state` in one read transaction
        (what the master's `advance` reads; Core queries, no ORM objects)."""
        running_best = [  # one round trip: the running best under either result
            best_trial_id_of(search_id, result).scalar_subquery().label(f"best_{result}")
            for result in RESULTS
        ]
        with self._read_core() as connection:
            search = connection.execute(
                select(*_SEARCHES.c, *running_best).where(_SEARCHES.c.id == search_id)
            ).first()
            if search is None:
                raise NotFoundError(f"search {search_id!r} does not exist")
            values = {column.name: search._mapping[column.name] for column in _SEARCHES.c}
            if values["best_trial_id"] is None and SEARCH_TRANSITIONS[values["status"]]:
                values["best_trial_id"] = search._mapping[f"best_{values['result']}"]
            stages = connection.execute(
                select(*(_STAGES.c[f.name] for f in fields(StageRecord)))
                .where(_STAGES.c.search_id == search_id)
                .order_by(_STAGES.c.stage)
            ).all()
            trials = connection.execute(_views_of(search_id)).all()
        return SearchSnapshot(
            search=SearchRecord(**values),
            stages=[StageRecord(**row._mapping) for row in stages],
            trials=[TrialView(*row) for row in trials],
        )

    def trial_counts(self, search_id: int) -> dict[str, int]:
        """How many trials of the search are in each status (every status listed)."""
        with self._read() as session:
            self._search_row(session, search_id)
            counted = session.execute(
                select(TrialRow.status, func.count())
                .where(TrialRow.search_id == search_id)
                .group_by(TrialRow.status)
            ).all()
        counts = dict.fromkeys(TRIAL_STATUSES, 0)
        counts.update({status: count for status, count in counted})
        return counts

    def queued_trial_ids(self, search_id: int | None = None) -> list[int]:
        """Ids of queued trials of running searches in the order they should run.

        Retries first (trials that already ran: requeued after a failure, a
        dead worker or a hand-back), then the others; oldest first in each.
        """
        fresh = and_(TrialRow.attempts == 0, TrialRow.last_epoch.is_(None))
        query = (
            select(TrialRow.id)
            .join(SearchRow, SearchRow.id == TrialRow.search_id)
            .where(TrialRow.status == "queued", SearchRow.status == "running")
            .order_by(fresh, TrialRow.id)
        )
        if search_id is not None:
            query = query.where(TrialRow.search_id == search_id)
        with self._read() as session:
            return list(session.scalars(query).all())

    def best_trials(
        self,
        search_id: int,
        limit: int = 10,
        offset: int = 0,
        status: str | Collection[str] | None = None,
        stage: int | None = None,
        order_by: str = "result",
    ) -> list[TrialRecord]:
        """A page of the search's trials, best first by `order_by` (see `leaderboard`)."""
        return self.leaderboard(search_id, limit, offset, status, stage, order_by).trials

    def leaderboard(
        self,
        search_id: int,
        limit: int = 10,
        offset: int = 0,
        status: str | Collection[str] | None = None,
        stage: int | None = None,
        order_by: str = "result",
    ) -> Leaderboard:
        """A page of the search's trials, best first by `order_by` (see TRIAL_ORDERINGS;
        "result": by the search's `result`, its trials' best or last epoch), with that
        `result`: two statements in one transaction.

        Trials without a value for the ordering come last; ties break on id.
        """
        check_choice(order_by, TRIAL_ORDERINGS, "order_by")
        statuses = _checked_statuses(status)
        check_positive(limit, "limit")
        if limit > MAX_PAGE:
            raise ValueError(f"limit must be at most {MAX_PAGE}; got {limit}")
        offset = check_non_negative(offset, "offset")
        parameters: dict[str, Any] = {"search": search_id, "limit": limit, "offset": offset}
        if statuses is not None:
            parameters["statuses"] = statuses
        if stage is not None:
            parameters["stage"] = check_non_negative(stage, "stage")
        with self._read_core() as connection:
            result = result_of(connection, search_id)
            query = _leaderboard_query(order_by, result, statuses is not None, stage is not None)
            rows = connection.execute(query, parameters).all()
        # TRIAL_COLUMNS are TrialRecord's fields in order: rows build records positionally.
        return Leaderboard(result, [TrialRecord(*row) for row in rows])


def _trial_of(connection: Connection, trial_id: int) -> TrialRecord:
    row = connection.execute(TRIAL, {"trial": trial_id}).first()
    if row is None:
        raise NotFoundError(f"trial {trial_id!r} does not exist")
    return TrialRecord(*row)


def _views_of(search_id: int) -> Select[Any]:
    return (
        select(*_VIEW_COLUMNS)
        .where(TrialRow.search_id == search_id)
        .order_by(TrialRow.stage, TrialRow.index)
    )


def _search_exists(search_id: int) -> Select[int]:
    return select(SearchRow.id).where(SearchRow.id == search_id)


def _checked_statuses(status: str | Collection[str] | None) -> list[str] | None:
    if status is None:
        return None
    statuses = [status] if isinstance(status, str) else list(status)
    for value in statuses:
        check_choice(value, TRIAL_STATUSES, "status")
    return statuses


@cache
def _leaderboard_query(order_by: str, result: str, by_status: bool, by_stage: bool) -> Select[Any]:
    """A page of a search's trials (parameters search, limit, offset, and statuses or
    stage when filtered by them), built once per shape (building one per call cost
    about as much as running it)."""
    query = select(*TRIAL_COLUMNS).where(TrialRow.search_id == bindparam("search"))
    if by_status:
        query = query.where(TrialRow.status.in_(bindparam("statuses", expanding=True)))
    if by_stage:
        query = query.where(TrialRow.stage == bindparam("stage"))
    query = query.order_by(_ordering(order_by, result), TrialRow.id)
    return query.limit(bindparam("limit")).offset(bindparam("offset"))


def _ordering(order_by: str, result: str) -> ColumnElement[Any]:
    column, descending = TRIAL_ORDERINGS[order_by]
    if order_by == "result":
        column = result_column(result)
    return column.desc().nulls_last() if descending else column.asc().nulls_last()
