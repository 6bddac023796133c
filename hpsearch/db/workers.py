"""The registry of worker processes: register, heartbeat, deregister, reap, list.

A worker row is `idle` or `busy` while its process beats, `stopped` once
it deregistered (a clean stop), and `dead` once the reaper found it silent
for `stale_after_s`; rows stopped or dead for `prune_after_s` are deleted.
A dead worker that beats again (it was only cut off) is idle or busy again.

Heartbeats and liveness use the database server's clock (`hpsearch.db.clock`);
the `now` arguments stand in for it in tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from hpsearch.db.base import StoreBase
from hpsearch.db.clock import database_now
from hpsearch.db.convert import check_choice, check_non_negative, to_record
from hpsearch.db.models import WorkerRow
from hpsearch.db.records import WorkerRecord

__all__ = ["WORKER_STATUSES", "WorkerStore"]

WORKER_STATUSES = ("idle", "busy", "stopped", "dead")
_LIVE_STATUSES = ("idle", "busy")


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

    def deregister_worker(self, worker_id: str, now: datetime | None = None) -> None:
        """Mark the worker `stopped` (it stops cleanly); a missing row is left missing."""
        with self._write() as session:
            values = {"status": "stopped", "current_trial_id": None,
                      "last_heartbeat": now or database_now(session)}  # fmt: skip
            session.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(**values))

    def reap_workers(
        self, stale_after_s: float, prune_after_s: float, now: datetime | None = None
    ) -> tuple[list[str], int]:
        """Mark silent idle/busy workers `dead`, delete long-stopped or long-dead rows.

        Returns (ids of the workers marked dead now, how many rows were deleted).
        """
        if not stale_after_s > 0 or not prune_after_s > 0:
            raise ValueError(
                f"stale_after_s and prune_after_s must be positive; got {stale_after_s!r}, "
                f"{prune_after_s!r}"
            )
        with self._write() as session:
            now = now or database_now(session)
            silent = now - timedelta(seconds=stale_after_s)
            dead = session.scalars(
                update(WorkerRow)
                .where(WorkerRow.status.in_(_LIVE_STATUSES), WorkerRow.last_heartbeat < silent)
                .values(status="dead", current_trial_id=None)
                .returning(WorkerRow.id)
            ).all()
            pruned = session.execute(
                delete(WorkerRow).where(
                    WorkerRow.status.not_in(_LIVE_STATUSES),
                    WorkerRow.last_heartbeat < now - timedelta(seconds=prune_after_s),
                )
            )
        return sorted(dead), int(getattr(pruned, "rowcount", 0) or 0)

    def list_workers(self, stale_after_s: float, now: datetime | None = None) -> list[WorkerRecord]:
        """Every registered worker; `alive` means not stopped and heard from recently."""
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be positive; got {stale_after_s!r}")
        with self._read() as session:
            now = now or database_now(session)
            rows = session.scalars(select(WorkerRow).order_by(WorkerRow.id)).all()
            return [_worker_record(row, now, stale_after_s) for row in rows]


def _worker_record(row: WorkerRow, now: datetime, stale_after_s: float | None) -> WorkerRecord:
    alive = row.status in _LIVE_STATUSES
    if stale_after_s is not None:
        alive = alive and row.last_heartbeat >= now - timedelta(seconds=stale_after_s)
    return to_record(WorkerRecord, row, alive=alive)
