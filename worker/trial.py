"""`run_trial(trial_id)`: the one code path of a trial, for local and RQ workers alike.

1. Claim the trial with a conditional update; a trial delivered twice runs once.
2. Resume: a retry continues from the trial's own last checkpoint, a promoted
   trial from its parent's; epochs committed after that checkpoint are
   discarded first, so epochs are neither duplicated nor missing.
3. Train with a heartbeat thread that refreshes the trial's heartbeat every
   `heartbeat_s` and turns a cancel request (or lost ownership, after a
   requeue) into a stop between iterations.
4. After every epoch: the checkpoint file is written atomically, then the
   epoch row is committed, then the checkpoint row; older checkpoints of the
   trial beyond the keep-policy are pruned.
5. Finish as completed / diverged / failed / cancelled with a reason, then
   run the master's `advance` for the search so the next trials start at once.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

from hpsearch.checkpoints import Checkpoint
from hpsearch.config import TrainConfig
from hpsearch.db.records import TrialRecord
from hpsearch.master import advance
from hpsearch.training import EPOCH_SUMMARY_KEYS, CheckpointTarget, prepare, run_training
from worker.context import WorkerContext, get_context

__all__ = ["KEEP_BEST_PER_TRIAL", "run_trial"]

KEEP_BEST_PER_TRIAL = 2
_STATUS_OF_RESULT = {"completed": "completed", "diverged": "diverged", "stopped": "cancelled"}


def run_trial(trial_id: int, context: WorkerContext | None = None) -> str:
    """Run one trial to its end; returns its final status, or "skipped" if not claimable."""
    context = context or get_context()
    storage = context.storage
    trial = storage.claim_trial(trial_id, context.worker_id)
    if trial is None:
        return "skipped"
    beat = _Heartbeat(context, trial_id)
    beat.start()
    try:
        status, error, kind = _train(context, trial, beat)
    except MemoryError:
        status, error, kind = "failed", "out of memory", "oom"
    except Exception as exception:  # recorded as the failure reason
        detail = traceback.format_exception_only(exception)[-1].strip()
        status, error, kind = "failed", detail, "error"
    finally:
        beat.stop()
    if beat.lost.is_set():
        return "lost"
    finished = storage.finish_trial(trial_id, context.worker_id, status, error, kind)
    storage.worker_heartbeat(context.worker_id, None, "idle")
    if finished is not None and finished.status == "queued":
        context.executor.enqueue([trial_id])
    advance(storage, trial.search_id, context.executor)
    return finished.status if finished is not None else "lost"


def _train(
    context: WorkerContext, trial: TrialRecord, beat: _Heartbeat
) -> tuple[str, str | None, str | None]:
    storage = context.storage
    config = TrainConfig.model_validate(trial.config)
    prepared = prepare(config, context.settings.data_root)
    resume = _resume_point(context, trial)
    own_epochs = (
        resume.epoch if resume is not None and resume.extra.get("trial_id") == trial.id else 0
    )
    storage.discard_epochs_after(trial.id, context.worker_id, own_epochs)
    target = CheckpointTarget(
        storage=context.checkpoints,
        key_dir=f"search_{trial.search_id:06d}",
        stage=trial.stage,
        trial=trial.id,
        extra={"search_id": trial.search_id, "stage": trial.stage, "trial_id": trial.id},
    )

    def on_epoch(record: dict[str, Any], path: str | None) -> None:
        if beat.lost.is_set():
            raise _LostOwnershipError()
        metrics = {key: record.get(key) for key in EPOCH_SUMMARY_KEYS}
        metrics["stats"] = {k: v for k, v in record.items() if k not in EPOCH_SUMMARY_KEYS}
        storage.record_epoch(trial.id, context.worker_id, record["epoch"], metrics)
        if path is not None:
            storage.record_checkpoint(trial.id, record["epoch"], path, record["val_accuracy"])
            _prune(context, trial.id)

    try:
        _, result = run_training(
            config, prepared, target=target, on_epoch=on_epoch,
            should_stop=beat.should_stop, resume=resume,
        )  # fmt: skip
    except _LostOwnershipError:
        return "failed", "lost ownership of the trial", "infrastructure"
    status = _STATUS_OF_RESULT[result.status]
    if status == "cancelled" and not beat.cancel.is_set():
        return "failed", "lost ownership of the trial", "infrastructure"
    return status, None if status == "completed" else result.reason, None


class _LostOwnershipError(Exception):
    """The trial was requeued while this worker still ran it."""


def _resume_point(context: WorkerContext, trial: TrialRecord) -> Checkpoint | None:
    """The trial's own last checkpoint (a retry), else its parent's (a promotion)."""
    for source in (trial.id, trial.parent_trial_id):
        if source is None:
            continue
        record = context.storage.latest_checkpoint(source)
        if record is not None:
            return context.checkpoints.load(record.path)
    return None


def _prune(context: WorkerContext, trial_id: int) -> None:
    """Keep the trial's best KEEP_BEST_PER_TRIAL checkpoints and its last one."""
    records = context.storage.list_checkpoints(trial_id)
    if len(records) <= KEEP_BEST_PER_TRIAL + 1:
        return
    last = max(records, key=lambda record: record.epoch)
    ranked = sorted(records, key=lambda record: -(record.val_accuracy or 0.0))
    keep = {record.id for record in ranked[:KEEP_BEST_PER_TRIAL]} | {last.id}
    doomed = [record for record in records if record.id not in keep]
    context.storage.delete_checkpoint_rows([record.id for record in doomed])
    for record in doomed:
        context.checkpoints.delete(record.path)


class _Heartbeat:
    """A daemon thread that heartbeats the trial and the worker, and watches for cancels."""

    def __init__(self, context: WorkerContext, trial_id: int) -> None:
        self.context, self.trial_id = context, trial_id
        self.cancel = threading.Event()
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def should_stop(self) -> bool:
        return self.cancel.is_set() or self.lost.is_set()

    def start(self) -> None:
        self.context.storage.worker_heartbeat(self.context.worker_id, self.trial_id, "busy")
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self.context.settings.heartbeat_s
        while not self._done.wait(interval):
            try:
                beat = self.context.storage.heartbeat(self.trial_id, self.context.worker_id)
                self.context.storage.worker_heartbeat(self.context.worker_id, self.trial_id, "busy")
            except Exception:  # a missed beat is retried; the reaper decides
                continue
            if beat.cancel_requested:
                self.cancel.set()
            if not beat.owned:
                self.lost.set()
