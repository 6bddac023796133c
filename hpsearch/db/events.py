"""The trial event history: each state change of a trial, kept in `trial_events`.

Every storage function that changes a trial's status (create, claim, finish,
cancel, requeue, hand back, reap) adds its events in the same transaction as
the change (`record_events`), and writes them as structured log lines once
the transaction committed (`log_events`). `EventStore` reads them back.

An event: `event` (what happened, TRIAL_EVENTS), `status` (the trial's status
after it), `worker_id` (the worker that ran or was running the attempt),
`attempt` (the trial's attempt number then) and `reason` (for requeues,
failures, cancels).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select
from sqlalchemy.orm import Session

from hpsearch.db.base import StoreBase
from hpsearch.db.convert import check_positive, utc_now
from hpsearch.db.models import TrialEventRow, TrialRow
from hpsearch.db.records import TrialEventRecord
from hpsearch.db.statements import EVENTS, TRIALS
from hpsearch.logs import log_event

__all__ = ["TRIAL_EVENTS", "EventStore", "event_row", "log_events", "record_events"]

TRIAL_EVENTS = (
    "created",
    "claimed",
    "completed",
    "diverged",
    "failed",
    "cancelled",
    "cancel_requested",
    "requeued",
    "handed_back",
    "reaped",
)
_EVENTS = cast(Table, TrialEventRow.__table__)
_COLUMNS = tuple(_EVENTS.c[name] for name in TrialEventRecord.__dataclass_fields__)
_LEVELS = {"failed": logging.WARNING, "reaped": logging.WARNING}


def event_row(
    trial_id: int,
    event: str,
    status: str,
    attempt: int,
    worker_id: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The values of one `trial_events` row (`event` one of TRIAL_EVENTS)."""
    if event not in TRIAL_EVENTS:
        raise ValueError(f"event must be one of {list(TRIAL_EVENTS)}; got {event!r}")
    return {"trial_id": trial_id, "at": at or utc_now(), "event": event, "status": status,
            "worker_id": worker_id, "attempt": attempt, "reason": reason}  # fmt: skip


def ended_event(trial_id: int, status: str, attempt: int, worker_id: str | None,
                reason: str | None) -> dict[str, Any]:  # fmt: skip
    """The event of an attempt that ended with `status` (`queued`: it was requeued)."""
    event = "requeued" if status == "queued" else status
    return event_row(trial_id, event, status, attempt, worker_id, reason)


def record_events(executor: Connection | Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the event rows in the caller's transaction."""
    if rows:
        executor.execute(insert(_EVENTS), list(rows))


def log_events(rows: Sequence[dict[str, Any]]) -> None:
    """One structured log line per committed event (logger `hpsearch.trials`)."""
    for row in rows:
        fields = {k: v for k, v in row.items() if k not in ("event", "at") and v is not None}
        level = _LEVELS.get(row["event"], logging.INFO)
        log_event("trials", f"trial.{row['event']}", level, **fields)


class EventStore(StoreBase):
    def trial_events(self, trial_id: int) -> list[TrialEventRecord]:
        """The trial's history, oldest first. NotFoundError when the trial does not exist."""
        with self._read_core() as connection:
            rows = self._rows_of(connection, EVENTS, TRIALS, trial_id, {"trial": trial_id})
        return [TrialEventRecord(**row._mapping) for row in rows]

    def search_events(self, search_id: int, limit: int = 20) -> list[TrialEventRecord]:
        """The newest `limit` events of the search's trials, oldest first."""
        check_positive(limit, "limit")
        query = (
            select(*_COLUMNS)
            .join(TrialRow, TrialRow.id == _EVENTS.c.trial_id)
            .where(TrialRow.search_id == search_id)
            .order_by(_EVENTS.c.id.desc())
            .limit(limit)
        )
        with self._read_core() as connection:
            rows = connection.execute(query).all()
        return [TrialEventRecord(*row) for row in reversed(rows)]
