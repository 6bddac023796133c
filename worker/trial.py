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
   have the master's `advance` run for the search on a background thread
   (when the queue runs low), while the worker takes its next trial.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import traceback
from typing import Any

from hpsearch.checkpoints import Checkpoint
from hpsearch.config import TrainConfig
from hpsearch.db.records import TrialRecord
from hpsearch.master import advance
from hpsearch.training import EPOCH_SUMMARY_KEYS, CheckpointTarget, prepare, run_training
from worker.context import WorkerContext, get_context

__all__ = ["KEEP_BEST_PER_TRIAL", "advance_if_needed", "run_trial"]

KEEP_BEST_PER_TRIAL = 2
_THRESHOLD_TTL_S = 10.0  # a search's concurrency may change while it runs
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
    if finished is not None and finished.status == "queued":
        context.executor.enqueue([trial_id])
    _advancer_of(context).request(trial.search_id)
    return finished.status if finished is not None else "lost"


def _advancer_of(context: WorkerContext) -> _Advancer:
    if context.advancer is None:
        context.advancer = _Advancer(context)
    return context.advancer


class _Advancer:
    """A background thread that runs `advance_if_needed` for searches whose trials finished.

    The worker goes on to its next queued trial at once instead of waiting
    for the master's full-state decision. Requests for one search coalesce.
    A request lost with the process is made again by the periodic master.
    """

    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        threading.Thread(target=self._run, name="advancer", daemon=True).start()

    def request(self, search_id: int) -> None:
        with self._lock:
            self._pending.add(search_id)
            self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until every requested advance ran (for an orderly shutdown, and tests)."""
        return self._idle.wait(timeout_s)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                search_ids, self._pending = self._pending, set()
            for search_id in sorted(search_ids):
                try:
                    advance_if_needed(self.context, search_id)
                except Exception as error:  # the periodic master advances again
                    print(f"hpsearch worker: advance of search {search_id} failed: {error}",
                          file=sys.stderr, flush=True)  # fmt: skip
            with self._lock:
                if not self._pending:
                    self._idle.set()


def advance_if_needed(context: WorkerContext, search_id: int) -> None:
    """Run the master's `advance` unless plenty of trials still wait for a worker.

    With `concurrency` C, a finished trial frees one slot; while at least
    C // 2 trials wait in the queue the workers stay busy, and the worker
    that brings the queue below that advances for all the freed slots at
    once (the periodic master advances too). This turns one full-state
    `advance` per trial into one per C // 2 trials on wide searches, and
    changes nothing on narrow ones (C <= 3 always advances).
    """
    storage = context.storage
    threshold = _queue_threshold(context, search_id)
    if threshold > 0:
        waiting = context.executor.backlog()  # RQ: one LLEN instead of a query
        if waiting is None:
            waiting = len(storage.queued_trial_ids(search_id))
        if waiting >= threshold:
            return
    advance(storage, search_id, context.executor)


def _queue_threshold(context: WorkerContext, search_id: int) -> int:
    cached = context.queue_thresholds.get(search_id)
    if cached is None or time.monotonic() - cached[1] > _THRESHOLD_TTL_S:
        concurrency = context.storage.get_search(search_id).concurrency
        cached = (concurrency // 2 if concurrency > 3 else 0, time.monotonic())
        context.queue_thresholds[search_id] = cached
    return cached[0]


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
    if trial.attempts > 1:  # a first attempt has no epochs to discard
        storage.discard_epochs_after(trial.id, context.worker_id, own_epochs)
    checkpoints_kept = [0 if trial.attempts == 1 else KEEP_BEST_PER_TRIAL + 1]
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
            checkpoints_kept[0] += 1
            if checkpoints_kept[0] > KEEP_BEST_PER_TRIAL + 1:
                checkpoints_kept[0] = _prune(context, trial.id)
        if record["epoch"] < config.epochs:
            beat.check_now()  # a cancel stops the trial before its next epoch

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
    own = trial.id if trial.attempts > 1 else None  # a first attempt has no checkpoint
    for source in (own, trial.parent_trial_id):
        if source is None:
            continue
        record = context.storage.latest_checkpoint(source)
        if record is not None:
            return context.checkpoints.load(record.path)
    return None


def _prune(context: WorkerContext, trial_id: int) -> int:
    """Keep the trial's best KEEP_BEST_PER_TRIAL checkpoints and its last one; how many kept."""
    records = context.storage.list_checkpoints(trial_id)
    if len(records) <= KEEP_BEST_PER_TRIAL + 1:
        return len(records)
    last = max(records, key=lambda record: record.epoch)
    ranked = sorted(records, key=lambda record: -(record.val_accuracy or 0.0))
    keep = {record.id for record in ranked[:KEEP_BEST_PER_TRIAL]} | {last.id}
    doomed = [record for record in records if record.id not in keep]
    context.storage.delete_checkpoint_rows([record.id for record in doomed])
    for record in doomed:
        context.checkpoints.delete(record.path)
    return len(records) - len(doomed)


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
        self._thread.start()

    def check_now(self) -> None:
        """Read the trial's cancel flag and owner now (between epochs), not at the next beat."""
        trial = self.context.storage.get_trial(self.trial_id)
        if trial.cancel_requested:
            self.cancel.set()
        if trial.status != "running" or trial.worker_id != self.context.worker_id:
            self.lost.set()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        """Mark the worker busy (off the training thread), then beat every heartbeat_s."""
        storage, worker_id = self.context.storage, self.context.worker_id
        interval = self.context.settings.heartbeat_s
        # Short trials come faster than heartbeats: the trial row already names its
        # worker, so the worker row is refreshed at most once per heartbeat_s.
        if time.monotonic() - self.context.worker_beat_at >= interval:
            with contextlib.suppress(Exception):  # the next beat reports it again
                storage.worker_heartbeat(worker_id, self.trial_id, "busy")
                self.context.worker_beat_at = time.monotonic()
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
