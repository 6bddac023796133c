"""The trial lifecycle: add, claim, heartbeat, finish, cancel, requeue, reap.

Every state change is a conditional UPDATE (or a locked read) inside one
transaction, so a trial delivered twice runs once, a requeued trial ignores
its old worker, and concurrent masters never duplicate a (stage, index).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from hpsearch.db.base import StoreBase
from hpsearch.db.clock import database_now, db_now
from hpsearch.db.convert import (
    check_choice,
    check_non_negative,
    check_positive,
    json_safe,
    to_record,
    utc_now,
)
from hpsearch.db.events import ended_event, event_row, log_events, record_events
from hpsearch.db.models import SearchRow, TrialRow
from hpsearch.db.records import (
    FAILURE_KINDS,
    FINISHED_TRIAL_STATUSES,
    RETRY_BUDGETS,
    SEARCH_TRANSITIONS,
    NewTrial,
    TrialHeartbeat,
    TrialRecord,
)
from hpsearch.db.statements import CLAIM, TRIAL_COLUMNS
from hpsearch.errors import ConflictError, NotFoundError

__all__ = [
    "TRIAL_COLUMNS",
    "TrialStore",
    "default_failure_kind",
    "ended_values",
    "finish_values",
    "may_retry",
    "requeue_values",
]

_OWNER_COLUMNS = (TrialRow.status, TrialRow.worker_id, TrialRow.attempts,
                  TrialRow.max_attempts, TrialRow.cancel_requested)  # fmt: skip

_DEFAULT_FAILURE_KIND = {"diverged": "divergence", "cancelled": "cancel", "failed": "error"}


def default_failure_kind(status: str) -> str | None:
    return _DEFAULT_FAILURE_KIND.get(status)


def may_retry(row: Any, failure_kind: str) -> bool:
    """Whether a trial that failed this way gets another attempt (RETRY_BUDGETS)."""
    retries_used = max(row.attempts - 1, 0)
    return (
        not row.cancel_requested
        and retries_used < RETRY_BUDGETS[failure_kind]
        and row.attempts < row.max_attempts
    )


def _check_new_trial(trial: NewTrial, position: int) -> None:
    name = f"trials[{position}]"
    check_non_negative(trial.stage, f"{name}.stage")
    check_non_negative(trial.index, f"{name}.index")
    check_non_negative(trial.train_seed, f"{name}.train_seed")
    check_positive(trial.epochs, f"{name}.epochs")
    check_positive(trial.max_attempts, f"{name}.max_attempts")


def _checked_values(search_id: int, trials: Sequence[NewTrial]) -> list[dict[str, object]]:
    """The rows of `trials` to insert; ValueError/TypeError for bad or repeated trials."""
    keys = [(trial.stage, trial.index) for trial in trials]
    for position, trial in enumerate(trials):
        _check_new_trial(trial, position)
    if len(set(keys)) != len(keys):
        raise ValueError("trials repeat a (stage, index) pair")
    now = utc_now()
    return [_new_trial_values(search_id, trial, now) for trial in trials]


def _check_search_takes_trials(connection: Connection, search_id: int) -> None:
    """Share-lock the search row (a concurrent cancel waits for the new trials, then
    cancels them); ConflictError unless it still takes trials."""
    status = connection.execute(
        select(SearchRow.status).where(SearchRow.id == search_id).with_for_update(read=True)
    ).scalar()
    if status is None:
        raise NotFoundError(f"search {search_id!r} does not exist")
    if not SEARCH_TRANSITIONS[status]:
        raise ConflictError(f"search {search_id} is {status}; it takes no trials")


def _new_trial_values(search_id: int, trial: NewTrial, now: datetime) -> dict[str, object]:
    return {
        "search_id": search_id,
        "stage": trial.stage,
        "index": trial.index,
        "params": json_safe(trial.params, "params"),
        "config": json_safe(trial.config, "config"),
        "train_seed": trial.train_seed,
        "epochs": trial.epochs,
        "parent_trial_id": trial.parent_trial_id,
        "status": "queued",
        "attempts": 0,
        "max_attempts": trial.max_attempts,
        "enqueued_at": now,
        "cancel_requested": False,
    }


class TrialStore(StoreBase):
    def add_trials(self, search_id: int, trials: Sequence[NewTrial]) -> list[TrialRecord]:
        """Create the trials that do not exist yet; return all of them, in input order.

        A (stage, index) already stored keeps its stored row (INSERT ... ON
        CONFLICT DO NOTHING), so concurrent callers never duplicate a trial.
        """
        keys = [(trial.stage, trial.index) for trial in trials]
        values = _checked_values(search_id, trials)
        with self._write() as session:
            # A share lock: a concurrent cancel waits for these trials and then cancels them.
            search = self._get(session, SearchRow, search_id, lock="share")
            if not SEARCH_TRANSITIONS[search.status]:
                raise ConflictError(f"search {search_id} is {search.status}; it takes no trials")
            statement = (
                self._insert(session, TrialRow)
                .on_conflict_do_nothing(index_elements=["search_id", "stage", "index"])
                .returning(TrialRow.id)
            )
            created = [_created_event(trial_id) for trial_id in
                       session.scalars(statement, values).all()] if values else []  # fmt: skip
            record_events(session, created)
            stages = sorted({stage for stage, _ in keys})
            rows = session.scalars(
                select(TrialRow).where(TrialRow.search_id == search_id, TrialRow.stage.in_(stages))
            ).all()
            by_key = {(row.stage, row.index): row for row in rows}
            records = [to_record(TrialRecord, by_key[key]) for key in keys]
        log_events(created)
        return records

    def insert_new_trials(self, search_id: int, trials: Sequence[NewTrial]) -> list[int]:
        """Create the trials that do not exist yet; return the ids of those this call created.

        Like `add_trials`, but it reports only the rows it inserted (in input
        order), so that of two concurrent masters only the one that created a
        trial enqueues it, and it reads no rows back.
        """
        values = _checked_values(search_id, trials)
        if not values:
            return []
        statement = (
            self._dialect_insert(TrialRow)
            .on_conflict_do_nothing(index_elements=["search_id", "stage", "index"])
            .returning(TrialRow.id, TrialRow.stage, TrialRow.index)
        )
        with self._write_core() as connection:
            _check_search_takes_trials(connection, search_id)
            inserted = connection.execute(statement, values).all()
            created = [_created_event(trial_id) for trial_id, _, _ in inserted]
            record_events(connection, created)
        log_events(created)
        ids = {(stage, index): trial_id for trial_id, stage, index in inserted}
        return [ids[key] for key in ((t.stage, t.index) for t in trials) if key in ids]

    def claim_trial(self, trial_id: int, worker_id: str) -> TrialRecord | None:
        """Start a queued trial under `worker_id`; None if it is not claimable.

        Not claimable: not queued (already running, finished or cancelled), out
        of attempts, or its search is not running (paused trials stay queued).

        On PostgreSQL the claim's commit does not wait for its WAL flush
        (synchronous_commit=off for this transaction only): a server crash may
        forget the claim, but only together with everything after it, since
        the trial's first epoch commit is synchronous and flushes the WAL up to
        itself. A forgotten claim leaves the trial queued, to be run again.
        """
        _check_worker_id(worker_id)
        params = {"trial": trial_id, "owner": worker_id}
        with self._write_core() as connection:
            self._commit_without_waiting_for_disk(connection)
            row = connection.execute(CLAIM, params).first()
            if row is None:
                _require_trial(connection, trial_id)
                return None
            claimed = TrialRecord(**row._mapping)
            events = [event_row(trial_id, "claimed", "running", claimed.attempts, worker_id)]
            record_events(connection, events)
        log_events(events)
        return claimed

    def heartbeat(self, trial_id: int, worker_id: str) -> TrialHeartbeat:
        """Refresh the trial's heartbeat (the database's clock) if it runs under `worker_id`.

        A heartbeat lost in a server crash is harmless: its commit does not
        wait for the disk (PostgreSQL).
        """
        statement = (
            update(TrialRow)
            .where(
                TrialRow.id == trial_id,
                TrialRow.worker_id == worker_id,
                TrialRow.status == "running",
            )
            .values(heartbeat_at=db_now())
            .returning(TrialRow.cancel_requested)
            .execution_options(synchronize_session=False)
        )
        with self._write() as session:
            self._commit_without_waiting_for_disk(session.connection())
            cancel_requested = session.execute(statement).scalar()
            if cancel_requested is None:
                row = self._trial_row(session, trial_id)
                return TrialHeartbeat(owned=False, cancel_requested=row.cancel_requested)
            return TrialHeartbeat(owned=True, cancel_requested=bool(cancel_requested))

    def finish_trial(
        self,
        trial_id: int,
        worker_id: str,
        status: str,
        error: str | None = None,
        failure_kind: str | None = None,
    ) -> TrialRecord | None:
        """End the trial's current attempt; None if it no longer runs under `worker_id`.

        `status` is one of completed, diverged, failed, cancelled. A `failed`
        attempt whose failure kind (default `error`) still has retries left in
        RETRY_BUDGETS goes back to `queued` instead: look at the returned status.
        """
        check_choice(status, sorted(FINISHED_TRIAL_STATUSES), "status")
        kind = failure_kind if failure_kind is not None else default_failure_kind(status)
        if kind is not None:
            check_choice(kind, FAILURE_KINDS, "failure_kind")
        with self._write_core() as connection:
            state = connection.execute(
                select(*_OWNER_COLUMNS).where(TrialRow.id == trial_id).with_for_update()
            ).first()
            if state is None:
                _require_trial(connection, trial_id)
            assert state is not None
            if state.status != "running" or state.worker_id != worker_id:
                return None
            row = connection.execute(
                update(TrialRow)
                .where(TrialRow.id == trial_id)
                .values(**finish_values(state, status, error, kind))
                .returning(*TRIAL_COLUMNS)
            ).one()
            finished = TrialRecord(**row._mapping)
            events = [ended_event(trial_id, finished.status, finished.attempts, worker_id,
                                  finished.error)]  # fmt: skip
            record_events(connection, events)
        log_events(events)
        return finished

    def hand_back_trial(self, trial_id: int, worker_id: str, reason: str) -> TrialRecord | None:
        """Requeue a trial its worker stops running (a worker asked to stop), at once.

        Its committed epochs and checkpoints are kept (the next attempt resumes
        from them) and the attempt is given back (`attempts` goes down by one),
        so a hand-back never uses up the trial's retries. A trial asked to
        cancel ends cancelled instead. None if it no longer runs under `worker_id`.
        """
        with self._write() as session:
            row = self._trial_row(session, trial_id, lock=True)
            if row.status != "running" or row.worker_id != worker_id:
                return None
            if row.cancel_requested:
                _finish(row, "cancelled", reason, "cancel")
                event = "cancelled"
            else:
                row.attempts -= 1
                _requeue(row, reason, None)
                event = "handed_back"
            attempt = row.attempts + (event == "handed_back")
            events = [event_row(trial_id, event, row.status, attempt, worker_id, reason)]
            record_events(session, events)
            session.flush()
            record = to_record(TrialRecord, row)
        log_events(events)
        return record

    def request_cancel_trial(self, trial_id: int) -> TrialRecord:
        """Cancel a queued trial now; ask a running one to stop; leave finished ones."""
        with self._write() as session:
            row = self._trial_row(session, trial_id, lock=True)
            events = _cancel(row, "cancelled on request")
            record_events(session, events)
            session.flush()
            record = to_record(TrialRecord, row)
        log_events(events)
        return record

    def request_cancel_search(self, search_id: int, reason: str | None = None) -> int:
        """Cancel the search and its unfinished trials; return how many trials it touched.

        Queued trials become cancelled at once, running ones get cancel_requested.
        """
        with self._write() as session:
            search = self._search_row(session, search_id, lock=True)
            if search.status in ("completed", "failed"):
                raise ConflictError(f"search {search_id} is {search.status}; nothing to cancel")
            if search.status != "cancelled":
                search.status = "cancelled"
                search.finished_at = utc_now()
                search.reason = reason or "cancelled on request"
            rows = session.scalars(
                select(TrialRow)
                .where(TrialRow.search_id == search_id, TrialRow.status.in_(("queued", "running")))
                .with_for_update()
            ).all()
            events = [e for row in rows for e in _cancel(row, search.reason or "search cancelled")]
            record_events(session, events)
        log_events(events)
        return len(rows)

    def requeue_trial(self, trial_id: int, reason: str) -> TrialRecord:
        """Put a running, failed, diverged or cancelled trial back in the queue by hand.

        It gets one more attempt if it had used them all. A completed trial, or
        one of a finished search, raises ConflictError.
        """
        with self._write() as session:
            row = self._trial_row(session, trial_id, lock=True)
            search = self._search_row(session, row.search_id)
            if row.status == "completed" or not SEARCH_TRANSITIONS[search.status]:
                raise ConflictError(
                    f"trial {trial_id} is {row.status} in a {search.status} search; "
                    "it cannot be requeued"
                )
            events = []
            if row.status != "queued":
                worker_id = row.worker_id
                row.max_attempts = max(row.max_attempts, row.attempts + 1)
                row.cancel_requested = False
                _requeue(row, reason, None)
                events.append(event_row(trial_id, "requeued", "queued", row.attempts, worker_id,
                                        reason))  # fmt: skip
            record_events(session, events)
            session.flush()
            record = to_record(TrialRecord, row)
        log_events(events)
        return record

    def reap_stale(self, stale_after_s: float, now: datetime | None = None) -> list[TrialRecord]:
        """Requeue (or fail, when out of retries) running trials with a stale heartbeat.

        A silent worker is an `infrastructure` failure. Staleness is judged by
        the database server's clock (`now`, if given, stands in for it).
        Returns the changed trials.
        """
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be positive; got {stale_after_s!r}")
        with self._write() as session:
            now = now or database_now(session)
            cutoff = now - timedelta(seconds=stale_after_s)
            rows = _stale_rows(session, cutoff)
            events = [_reap(row, now) for row in rows]
            record_events(session, events)
            session.flush()
            records = [to_record(TrialRecord, row) for row in rows]
        log_events(events)
        return records


def _reap(row: TrialRow, now: datetime) -> dict[str, Any]:
    """Requeue, fail or cancel the stale trial `row`; returns its `reaped` event."""
    worker_id = row.worker_id
    age_s = (now - row.heartbeat_at).total_seconds() if row.heartbeat_at else None
    reason = f"worker {worker_id} silent for {age_s or 0:.1f} s"
    if row.cancel_requested:
        _finish(row, "cancelled", reason, "cancel")
    elif may_retry(row, "infrastructure"):
        _requeue(row, reason, "infrastructure")
    else:
        reason = f"{reason}; out of retries"
        _finish(row, "failed", reason, "infrastructure")
    return event_row(row.id, "reaped", row.status, row.attempts, worker_id, reason)


def _created_event(trial_id: int) -> dict[str, Any]:
    return event_row(trial_id, "created", "queued", 0)


def _stale_rows(session: Session, cutoff: datetime) -> Sequence[TrialRow]:
    return session.scalars(
        select(TrialRow)
        .where(TrialRow.status == "running", TrialRow.heartbeat_at < cutoff)
        .order_by(TrialRow.id)
        .with_for_update(skip_locked=True)
    ).all()


def _check_worker_id(worker_id: str) -> None:
    if not isinstance(worker_id, str) or not worker_id or len(worker_id) > 200:
        raise ValueError(f"worker_id must be 1 to 200 characters; got {worker_id!r}")


def _require_trial(connection: Connection, trial_id: int) -> None:
    """NotFoundError unless the trial exists."""
    if connection.execute(select(TrialRow.id).where(TrialRow.id == trial_id)).first() is None:
        raise NotFoundError(f"trial {trial_id!r} does not exist")


def requeue_values(reason: str, failure_kind: str | None) -> dict[str, Any]:
    """The column values that put a trial back in the queue."""
    return {"status": "queued", "worker_id": None, "heartbeat_at": None, "started_at": None,
            "enqueued_at": utc_now(), "error": reason, "failure_kind": failure_kind}  # fmt: skip


def ended_values(status: str, error: str | None, failure_kind: str | None) -> dict[str, Any]:
    """The column values that end a trial with `status`."""
    return {"status": status, "finished_at": utc_now(), "error": error,
            "failure_kind": failure_kind}  # fmt: skip


def finish_values(state: Any, status: str, error: str | None, kind: str | None) -> dict[str, Any]:
    """How a running trial's attempt ends (see `finish_trial`): its new column values.

    `state` has the trial's attempts, max_attempts and cancel_requested; a
    `failed` attempt with retries left in RETRY_BUDGETS is requeued.
    """
    if status == "failed" and kind is not None and may_retry(state, kind):
        return requeue_values(error or f"attempt {state.attempts} failed ({kind})", kind)
    return ended_values(status, error, kind if status != "completed" else None)


def _apply(row: TrialRow, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(row, name, value)


def _requeue(row: TrialRow, reason: str, failure_kind: str | None) -> None:
    _apply(row, requeue_values(reason, failure_kind))


def _finish(row: TrialRow, status: str, error: str | None, failure_kind: str | None) -> None:
    _apply(row, ended_values(status, error, failure_kind))


def _cancel(row: TrialRow, reason: str) -> list[dict[str, Any]]:
    """Cancel a queued trial, ask a running one to stop; returns the event (if any)."""
    if row.status == "queued":
        _finish(row, "cancelled", reason, "cancel")
        return [event_row(row.id, "cancelled", "cancelled", row.attempts, None, reason)]
    if row.status == "running" and not row.cancel_requested:
        row.cancel_requested = True
        return [event_row(row.id, "cancel_requested", "running", row.attempts, row.worker_id,
                          reason)]  # fmt: skip
    return []
