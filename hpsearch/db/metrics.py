"""Per-epoch metrics and checkpoint rows of a trial."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, select, update
from sqlalchemy.orm import Session

from hpsearch.db.base import StoreBase
from hpsearch.db.convert import (
    check_choice,
    check_non_negative,
    finite_or_none,
    json_safe,
    to_record,
    utc_now,
)
from hpsearch.db.events import ended_event, log_events, record_events
from hpsearch.db.models import CheckpointRow, EpochMetricRow, TrialRow
from hpsearch.db.records import (
    FAILURE_KINDS,
    FINISHED_TRIAL_STATUSES,
    CheckpointRecord,
    EpochCommit,
    EpochRecord,
)
from hpsearch.db.statements import (
    CHECKPOINTS,
    CURVES,
    PROGRESS,
    PROGRESS_AND_END,
    TRIALS,
    insert_epoch,
    upsert_checkpoint,
)
from hpsearch.db.trials import default_failure_kind, ended_values, finish_values
from hpsearch.errors import ConflictError, NotFoundError
from hpsearch.nn.train_stats import SCALAR_METRICS as EPOCH_METRICS  # anything else: "stats"

__all__ = ["EPOCH_METRICS", "MetricStore"]

_EPOCH_COLUMNS = tuple(cast(Table, EpochMetricRow.__table__).c[f.name] for f in fields(EpochRecord))


def _epoch_values(trial_id: int, epoch: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(metrics) - {*EPOCH_METRICS, "stats"}
    if unknown:
        raise ValueError(
            f"metrics has unknown keys {sorted(unknown)}; allowed: {[*EPOCH_METRICS, 'stats']}"
        )
    values: dict[str, Any] = {name: finite_or_none(metrics.get(name)) for name in EPOCH_METRICS}
    values["stats"] = json_safe(metrics.get("stats") or {}, "metrics['stats']")
    return {"trial_id": trial_id, "epoch": epoch, **values}


def _finish_kind(finish: str | None, failure_kind: str | None) -> str | None:
    """The failure kind a finish records (checked), as `finish_trial` chooses it."""
    if finish is None:
        return None
    check_choice(finish, sorted(FINISHED_TRIAL_STATUSES), "finish")
    kind = failure_kind if failure_kind is not None else default_failure_kind(finish)
    if kind is not None:
        check_choice(kind, FAILURE_KINDS, "failure_kind")
    return kind


def _same_epoch(row: Any, values: Mapping[str, Any]) -> bool:
    return all(getattr(row, name) == values[name] for name in (*EPOCH_METRICS, "stats"))


class MetricStore(StoreBase):
    def record_epoch(
        self, trial_id: int, worker_id: str, epoch: int, metrics: Mapping[str, Any]
    ) -> EpochRecord:
        """Commit one epoch of a trial running under `worker_id`.

        `metrics` holds EPOCH_METRICS (floats; NaN/inf are stored as None) and
        an optional JSON `stats` dict. Recording the same epoch again with the
        same values is a no-op (retry-safe); different values raise
        ConflictError, as does a trial not running under `worker_id`. The
        trial's best_val_accuracy, last_epoch, last_val_accuracy and heartbeat
        move in the same transaction.
        """
        check_non_negative(epoch, "epoch")
        values = _epoch_values(trial_id, epoch, metrics) | {"created_at": utc_now()}
        with self._write_core() as connection:
            self._advance_progress(connection, trial_id, worker_id, epoch, values, {})
            return self._insert_epoch(connection, values)

    def commit_epoch(
        self,
        trial_id: int,
        worker_id: str,
        epoch: int,
        metrics: Mapping[str, Any],
        checkpoint_path: str | None = None,
        finish: str | None = None,
        error: str | None = None,
        failure_kind: str | None = None,
        drop_checkpoint_ids: Sequence[int] = (),
    ) -> EpochCommit:
        """`record_epoch` + `record_checkpoint` (+ `finish_trial`) in one transaction.

        The checkpoint file at `checkpoint_path` must already be written: its
        row (epoch, path, the epoch's val_accuracy) is stored with the epoch.
        With `finish` (completed | diverged | failed | cancelled), the trial's
        attempt also ends as `finish_trial` would end it (a failed attempt with
        retries left is requeued). `drop_checkpoint_ids`: checkpoint rows of
        this trial to delete in the same transaction (pruned; their files go
        after the commit). Duplicates with the same values are no-ops;
        ConflictError when the trial does not run under `worker_id`.
        """
        check_non_negative(epoch, "epoch")
        if checkpoint_path is not None and (
            not isinstance(checkpoint_path, str) or not checkpoint_path
        ):
            raise ValueError(f"checkpoint_path must be a non-empty string; got {checkpoint_path!r}")
        kind = _finish_kind(finish, failure_kind)
        now = utc_now()
        values = _epoch_values(trial_id, epoch, metrics) | {"created_at": now}
        # Every end but a failure needs no retry decision: it goes in the progress UPDATE.
        ending = ended_values(finish, error, kind if finish != "completed" else None) if (
            finish is not None and finish != "failed") else {}  # fmt: skip
        with self._write_core() as connection:
            state = self._advance_progress(connection, trial_id, worker_id, epoch, values, ending)
            self._insert_epoch(connection, values)
            checkpoint_id = None
            if checkpoint_path is not None:
                row = {"trial_id": trial_id, "epoch": epoch, "path": checkpoint_path,
                       "val_accuracy": values["val_accuracy"], "created_at": now}  # fmt: skip
                statement = upsert_checkpoint(connection.dialect.name)
                checkpoint_id = int(connection.execute(statement, row).scalar_one())
            if drop_checkpoint_ids:
                connection.execute(
                    delete(CheckpointRow).where(
                        CheckpointRow.trial_id == trial_id,
                        CheckpointRow.id.in_(list(drop_checkpoint_ids)),
                    )
                )
            status = state.status
            if finish == "failed":
                failed = finish_values(state, finish, error, kind)
                connection.execute(update(TrialRow).where(TrialRow.id == trial_id).values(**failed))
                status = failed["status"]
            events = [ended_event(trial_id, status, state.attempts, worker_id, error)] if (
                finish is not None) else []  # fmt: skip
            record_events(connection, events)
        log_events(events)
        return EpochCommit(trial_id, epoch, status, bool(state.cancel_requested), checkpoint_id)

    def _advance_progress(
        self,
        connection: Connection,
        trial_id: int,
        worker_id: str,
        epoch: int,
        values: Mapping[str, Any],
        ending: Mapping[str, Any],
    ) -> Any:
        """Lock the trial if it runs under `worker_id`, raise its progress, maybe end it.

        `ending`: the ended_values() of a finish, or empty. Returns its
        attempts, max_attempts, cancel_requested and (new) status;
        NotFoundError / ConflictError when it does not exist / is not owned.
        """
        params = {"trial": trial_id, "owner": worker_id, "epoch": epoch,
                  "accuracy": values["val_accuracy"]}  # fmt: skip
        if ending:
            params |= {"new_status": ending["status"], "new_error": ending["error"],
                       "new_failure_kind": ending["failure_kind"]}  # fmt: skip
        state = connection.execute(PROGRESS_AND_END if ending else PROGRESS, params).first()
        if state is None:
            owner = connection.execute(
                select(TrialRow.status, TrialRow.worker_id).where(TrialRow.id == trial_id)
            ).first()
            if owner is None:
                raise NotFoundError(f"trial {trial_id!r} does not exist")
            raise ConflictError(
                f"trial {trial_id} is {owner.status} under worker {owner.worker_id}, "
                f"not running under {worker_id}"
            )
        return state

    def _insert_epoch(self, connection: Connection, values: Mapping[str, Any]) -> EpochRecord:
        """Insert the epoch row; an equal stored row is kept, a different one is a conflict."""
        inserted = connection.execute(insert_epoch(connection.dialect.name), dict(values))
        if inserted.first() is not None:
            return EpochRecord(**values)
        existing = connection.execute(
            select(*_EPOCH_COLUMNS).where(
                EpochMetricRow.trial_id == values["trial_id"],
                EpochMetricRow.epoch == values["epoch"],
            )
        ).one()
        if not _same_epoch(existing, values):
            raise ConflictError(
                f"trial {values['trial_id']} already has epoch {values['epoch']} with other values"
            )
        return EpochRecord(**existing._mapping)

    def discard_epochs_after(self, trial_id: int, worker_id: str, epoch: int) -> int:
        """Delete the trial's epochs after `epoch` (to resume from an older checkpoint).

        Recomputes best_val_accuracy, last_epoch and last_val_accuracy; returns
        how many rows went.
        """
        with self._write() as session:
            trial = self._owned_trial(session, trial_id, worker_id)
            result = session.execute(
                delete(EpochMetricRow).where(
                    EpochMetricRow.trial_id == trial_id, EpochMetricRow.epoch > epoch
                )
            )
            kept = session.execute(
                select(func.max(EpochMetricRow.val_accuracy), func.max(EpochMetricRow.epoch)).where(
                    EpochMetricRow.trial_id == trial_id
                )
            ).one()
            trial.best_val_accuracy, trial.last_epoch = kept[0], kept[1]
            trial.last_val_accuracy = session.scalar(
                select(EpochMetricRow.val_accuracy).where(
                    EpochMetricRow.trial_id == trial_id, EpochMetricRow.epoch == kept[1]
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def trial_curves(self, trial_id: int) -> list[EpochRecord]:
        """Every committed epoch of the trial, in epoch order."""
        with self._read_core() as connection:
            rows = self._rows_of(connection, CURVES, TRIALS, trial_id, {"trial": trial_id})
        return [EpochRecord(**row._mapping) for row in rows]

    def record_checkpoint(
        self, trial_id: int, epoch: int, path: str, val_accuracy: float | None
    ) -> CheckpointRecord:
        """Store (or replace) the checkpoint row of the trial's epoch."""
        check_non_negative(epoch, "epoch")
        if not isinstance(path, str) or not path:
            raise ValueError(f"path must be a non-empty string; got {path!r}")
        values: dict[str, Any] = {"path": path, "val_accuracy": finite_or_none(val_accuracy)}
        values["created_at"] = utc_now()
        with self._write() as session:
            self._trial_row(session, trial_id)
            statement = self._insert(session, CheckpointRow).values(
                trial_id=trial_id, epoch=epoch, **values
            )
            session.execute(
                statement.on_conflict_do_update(index_elements=["trial_id", "epoch"], set_=values)
            )
            row = session.scalars(
                select(CheckpointRow).where(
                    CheckpointRow.trial_id == trial_id, CheckpointRow.epoch == epoch
                )
            ).one()
            return to_record(CheckpointRecord, row)

    def latest_checkpoint(self, trial_id: int) -> CheckpointRecord | None:
        """The trial's checkpoint with the highest epoch, to resume from; None if none."""
        checkpoints = self.list_checkpoints(trial_id)
        return checkpoints[-1] if checkpoints else None

    def list_checkpoints(self, trial_id: int) -> list[CheckpointRecord]:
        """The trial's checkpoint rows in epoch order."""
        with self._read_core() as connection:
            rows = self._rows_of(connection, CHECKPOINTS, TRIALS, trial_id, {"trial": trial_id})
        return [CheckpointRecord(**row._mapping) for row in rows]

    def delete_checkpoint_rows(self, checkpoint_ids: Sequence[int]) -> int:
        """Forget checkpoints whose files were pruned; returns how many rows went."""
        if not checkpoint_ids:
            return 0
        with self._write() as session:
            result = session.execute(
                delete(CheckpointRow).where(CheckpointRow.id.in_(list(checkpoint_ids)))
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def _owned_trial(self, session: Session, trial_id: int, worker_id: str) -> TrialRow:
        trial = self._trial_row(session, trial_id, lock=True)
        if trial.status != "running" or trial.worker_id != worker_id:
            raise ConflictError(
                f"trial {trial_id} is {trial.status} under worker {trial.worker_id}, "
                f"not running under {worker_id}"
            )
        return trial
