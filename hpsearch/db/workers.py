"""The registry of worker processes: register, heartbeat, list with liveness.

Heartbeats and liveness use the database server's clock (`hpsearch.db.clock`);
the `now` arguments stand in for it in tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from hpsearch.db.base import StoreBase
from hpsearch.db.clock import database_now
from hpsearch.db.convert import check_choice, check_non_negative, to_record
from hpsearch.db.models import WorkerRow
from hpsearch.db.records import WorkerRecord

__all__ = ["WORKER_STATUSES", "WorkerStore"]

WORKER_STATUSES = ("idle", "busy", "stopped")


class WorkerStore(StoreBase):
    def register_worker(
        self, worker_id: str, host: str, pid: int, now: datetime | None = None
    ) -> WorkerRecord:
        """Create or restart the worker's row (status idle)."""
        if not isinstance(worker_id, str) or not worker_id or len(worker_id) > 200:
            raise ValueError(f"worker_id must be 1 to 200 characters; got {worker_id!r}")
        check_non_negative(pid, "pid")
        with self._write() as session:
            now = now or database_now(session)
            values = {"host": host, "pid": pid, "started_at": now, "last_heartbeat": now}
            values |= {"current_trial_id": None, "status": "idle"}
            statement = self._insert(session, WorkerRow).values(id=worker_id, **values)
            session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=values))
            return _worker_record(self._get(session, WorkerRow, worker_id), now, None)

    def worker_heartbeat(
        self,
        worker_id: str,
        current_trial_id: int | None = None,
        status: str = "idle",
        now: datetime | None = None,
    ) -> WorkerRecord:
        """Record that the worker lives, what it runs and its status (idle|busy|stopped)."""
        check_choice(status, WORKER_STATUSES, "status")
        with self._write() as session:
            now = now or database_now(session)
            row = self._get(session, WorkerRow, worker_id)
            row.last_heartbeat = now
            row.current_trial_id = current_trial_id
            row.status = status
            session.flush()
            return _worker_record(row, now, None)

    def list_workers(self, stale_after_s: float, now: datetime | None = None) -> list[WorkerRecord]:
        """Every registered worker; `alive` means not stopped and heard from recently."""
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be positive; got {stale_after_s!r}")
        with self._read() as session:
            now = now or database_now(session)
            rows = session.scalars(select(WorkerRow).order_by(WorkerRow.id)).all()
            return [_worker_record(row, now, stale_after_s) for row in rows]


def _worker_record(row: WorkerRow, now: datetime, stale_after_s: float | None) -> WorkerRecord:
    alive = row.status != "stopped"
    if stale_after_s is not None:
        alive = alive and row.last_heartbeat >= now - timedelta(seconds=stale_after_s)
    return to_record(WorkerRecord, row, alive=alive)
