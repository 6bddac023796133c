"""Searches and their stages: creation, status transitions, limits, stage spaces."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select
from sqlalchemy.orm import Session

from hpsearch.db.base import StoreBase
from hpsearch.db.convert import (
    check_choice,
    check_non_negative,
    check_positive,
    json_safe,
    to_record,
    utc_now,
)
from hpsearch.db.models import SearchRow, StageRow, TrialRow
from hpsearch.db.records import (
    RESULTS,
    SEARCH_STATUSES,
    SEARCH_TRANSITIONS,
    SearchRecord,
    StageRecord,
)
from hpsearch.errors import ConflictError, NotFoundError

__all__ = ["SearchStore", "best_trial_id_of", "result_column", "result_of"]

MAX_SEED = 2**63 - 1


def result_column(result: str) -> Any:
    """The trials' column holding their result under a search's `result` ("best" | "last")."""
    check_choice(result, RESULTS, "result")
    return TrialRow.last_val_accuracy if result == "last" else TrialRow.best_val_accuracy


_RESULT_OF = select(SearchRow.result).where(SearchRow.id == bindparam("search"))


def result_of(connection: Connection, search_id: int) -> str:
    """The search's `result`; NotFoundError when the search does not exist."""
    result = connection.execute(_RESULT_OF, {"search": search_id}).scalar_one_or_none()
    if result is None:
        raise NotFoundError(f"search {search_id!r} does not exist")
    return str(result)


def best_trial_id_of(search_id: Any, result: str) -> Select[int]:
    """The id of the search's trial with the highest result (`result_column`; ties: lowest id).

    Ordered like the leaderboard (NULLS LAST, though there are none), so that
    its index serves it.
    """
    column = result_column(result)
    return (
        select(TrialRow.id)
        .where(TrialRow.search_id == search_id, column.is_not(None))
        .order_by(column.desc().nulls_last(), TrialRow.id)
        .limit(1)
    )


class SearchStore(StoreBase):
    def create_search(
        self,
        name: str,
        spec: Mapping[str, Any],
        seed: int,
        budget_epochs: int | None = None,
        concurrency: int = 1,
        result: str = "best",
    ) -> SearchRecord:
        """Store a new search in status `running`; `result`: which epoch of each trial
        ranks it ("best" by validation accuracy, or "last")."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ValueError(f"name must be 1 to 200 characters; got {name!r}")
        if not isinstance(spec, Mapping):
            raise TypeError(f"spec must be a mapping; got {type(spec).__name__}")
        if check_non_negative(seed, "seed") > MAX_SEED:
            raise ValueError(f"seed must be below 2**63; got {seed}")
        if budget_epochs is not None:
            check_positive(budget_epochs, "budget_epochs")
        check_positive(concurrency, "concurrency")
        check_choice(result, RESULTS, "result")
        row = SearchRow(
            name=name,
            spec=json_safe(spec, "spec"),
            status="running",
            seed=seed,
            created_at=utc_now(),
            budget_epochs=budget_epochs,
            concurrency=concurrency,
            result=result,
        )
        with self._write() as session:
            session.add(row)
            session.flush()
            return self._search_record(session, row)

    def get_search(self, search_id: int) -> SearchRecord:
        with self._read() as session:
            return self._search_record(session, self._search_row(session, search_id))

    def search_result(self, search_id: int) -> str:
        """The search's `result` ("best" | "last": which epoch ranks its trials); one read."""
        with self._read_core() as connection:
            return result_of(connection, search_id)

    def list_searches(
        self, limit: int = 50, offset: int = 0, status: str | None = None
    ) -> list[SearchRecord]:
        """Searches, newest first."""
        check_positive(limit, "limit")
        check_non_negative(offset, "offset")
        query = select(SearchRow).order_by(SearchRow.id.desc()).limit(limit).offset(offset)
        if status is not None:
            query = query.where(SearchRow.status == check_choice(status, SEARCH_STATUSES, "status"))
        with self._read() as session:
            rows = session.scalars(query).all()
            return [self._search_record(session, row) for row in rows]

    def set_search_status(
        self, search_id: int, status: str, reason: str | None = None
    ) -> SearchRecord:
        """Move a search along SEARCH_TRANSITIONS; setting the current status is a no-op.

        Raises ConflictError for a transition the table does not allow.
        """
        check_choice(status, SEARCH_STATUSES, "status")
        with self._write() as session:
            row = self._search_row(session, search_id, lock=True)
            if row.status != status:
                if status not in SEARCH_TRANSITIONS[row.status]:
                    raise ConflictError(
                        f"search {search_id} is {row.status}; it cannot become {status}"
                    )
                row.status = status
                if not SEARCH_TRANSITIONS[status]:
                    row.finished_at = utc_now()
                    row.best_trial_id = session.scalar(best_trial_id_of(search_id, row.result))
            if reason is not None:
                row.reason = reason
            session.flush()
            return self._search_record(session, row)

    def update_search_limits(
        self, search_id: int, budget_epochs: int | None = None, concurrency: int | None = None
    ) -> SearchRecord:
        """Change the epoch budget and/or concurrency of a running or paused search."""
        if budget_epochs is not None:
            check_positive(budget_epochs, "budget_epochs")
        if concurrency is not None:
            check_positive(concurrency, "concurrency")
        with self._write() as session:
            row = self._search_row(session, search_id, lock=True)
            if not SEARCH_TRANSITIONS[row.status]:
                raise ConflictError(f"search {search_id} is {row.status}; its limits are final")
            if budget_epochs is not None:
                row.budget_epochs = budget_epochs
            if concurrency is not None:
                row.concurrency = concurrency
            session.flush()
            return self._search_record(session, row)

    def record_stage(
        self,
        search_id: int,
        stage: int,
        space: Mapping[str, Any],
        warnings: Sequence[Any] = (),
    ) -> StageRecord:
        """Store the space of a stage; if the stage exists already, the stored one wins."""
        check_non_negative(stage, "stage")
        values = {
            "search_id": search_id,
            "stage": stage,
            "space": json_safe(space, "space"),
            "warnings": json_safe(list(warnings), "warnings"),
            "started_at": utc_now(),
        }
        with self._write() as session:
            self._search_row(session, search_id)
            self._insert_ignoring_conflicts(session, StageRow, [values], ["search_id", "stage"])
            row = session.scalars(
                select(StageRow).where(StageRow.search_id == search_id, StageRow.stage == stage)
            ).one()
            return to_record(StageRecord, row)

    def list_stages(self, search_id: int) -> list[StageRecord]:
        with self._read() as session:
            self._search_row(session, search_id)
            rows = session.scalars(
                select(StageRow).where(StageRow.search_id == search_id).order_by(StageRow.stage)
            ).all()
            return [to_record(StageRecord, row) for row in rows]

    @staticmethod
    def _search_record(session: Session, row: SearchRow) -> SearchRecord:
        """The record; while a search runs, best_trial_id is computed from its trials."""
        best = row.best_trial_id
        if best is None and SEARCH_TRANSITIONS[row.status]:
            best = session.scalar(best_trial_id_of(row.id, row.result))
        return to_record(SearchRecord, row, best_trial_id=best)
