"""Per-epoch metrics and checkpoint rows of a trial."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hpsearch.db.base import StoreBase
from hpsearch.db.convert import check_non_negative, finite_or_none, json_safe, to_record, utc_now
from hpsearch.db.models import CheckpointRow, EpochMetricRow, TrialRow
from hpsearch.db.records import CheckpointRecord, EpochRecord
from hpsearch.errors import ConflictError

__all__ = ["EPOCH_METRICS", "MetricStore"]

# The scalar metrics of an epoch; anything else goes under "stats" (JSON).
EPOCH_METRICS = (
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "ema_val_accuracy",
    "learning_rate",
)


def _epoch_values(trial_id: int, epoch: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(metrics) - {*EPOCH_METRICS, "stats"}
    if unknown:
        raise ValueError(
            f"metrics has unknown keys {sorted(unknown)}; allowed: {[*EPOCH_METRICS, 'stats']}"
        )
    values: dict[str, Any] = {name: finite_or_none(metrics.get(name)) for name in EPOCH_METRICS}
    values["stats"] = json_safe(metrics.get("stats") or {}, "metrics['stats']")
    return {"trial_id": trial_id, "epoch": epoch, **values}


def _same_epoch(row: EpochMetricRow, values: Mapping[str, Any]) -> bool:
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
        trial's best_val_accuracy, last_epoch and heartbeat move in the same
        transaction.
        """
        check_non_negative(epoch, "epoch")
        values = _epoch_values(trial_id, epoch, metrics)
        with self._write() as session:
            trial = self._owned_trial(session, trial_id, worker_id)
            existing = _epoch_row(session, trial_id, epoch)
            if existing is not None:
                if not _same_epoch(existing, values):
                    raise ConflictError(
                        f"trial {trial_id} already has epoch {epoch} with other values"
                    )
                return to_record(EpochRecord, existing)
            row = EpochMetricRow(**values, created_at=utc_now())
            session.add(row)
            _raise_progress(trial, epoch, values["val_accuracy"])
            session.flush()
            return to_record(EpochRecord, row)

    def discard_epochs_after(self, trial_id: int, worker_id: str, epoch: int) -> int:
        """Delete the trial's epochs after `epoch` (to resume from an older checkpoint).

        Recomputes best_val_accuracy and last_epoch; returns how many rows went.
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
            return int(getattr(result, "rowcount", 0) or 0)

    def trial_curves(self, trial_id: int) -> list[EpochRecord]:
        """Every committed epoch of the trial, in epoch order."""
        with self._read() as session:
            self._trial_row(session, trial_id)
            rows = session.scalars(
                select(EpochMetricRow)
                .where(EpochMetricRow.trial_id == trial_id)
                .order_by(EpochMetricRow.epoch)
            ).all()
            return [to_record(EpochRecord, row) for row in rows]

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
        with self._read() as session:
            self._trial_row(session, trial_id)
            rows = session.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.trial_id == trial_id)
                .order_by(CheckpointRow.epoch)
            ).all()
            return [to_record(CheckpointRecord, row) for row in rows]

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


def _epoch_row(session: Session, trial_id: int, epoch: int) -> EpochMetricRow | None:
    return session.scalars(
        select(EpochMetricRow).where(
            EpochMetricRow.trial_id == trial_id, EpochMetricRow.epoch == epoch
        )
    ).one_or_none()


def _raise_progress(trial: TrialRow, epoch: int, val_accuracy: float | None) -> None:
    trial.last_epoch = max(trial.last_epoch if trial.last_epoch is not None else -1, epoch)
    if val_accuracy is not None and (
        trial.best_val_accuracy is None or val_accuracy > trial.best_val_accuracy
    ):
        trial.best_val_accuracy = val_accuracy
    trial.heartbeat_at = utc_now()
