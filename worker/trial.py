"""`run_trial(trial_id)`: the one code path of a trial, for local and RQ workers alike.

1. Claim the trial with a conditional update; a trial delivered twice runs once.
2. Resume: a retry continues from the trial's own last checkpoint, a promoted
   trial from its parent's; epochs committed after that checkpoint are
   discarded first, so epochs are neither duplicated nor missing.
3. Train while the process's beat thread (`worker.beat`) refreshes the
   trial's heartbeat every `heartbeat_s` and turns a cancel request (or lost
   ownership, after a requeue) into a stop between iterations.
4. After every epoch: the checkpoint file is written atomically first, then
   the epoch row and the checkpoint row are committed in one transaction
   (`Storage.commit_epoch`, which also reports a cancel request); after the
   last epoch that same transaction finishes the trial as completed. The
   rows of checkpoints beyond the search spec's keep-policy (`worker.keep`,
   the spec's `[checkpoints]` table) are deleted in that transaction too,
   their files after it.
5. A trial that ends otherwise (diverged / failed / cancelled, or a retry
   with nothing left to train) finishes with `finish_trial`, under the same
   retry budgets. A trial stopped because its worker is stopping (SIGTERM)
   is handed back (`Storage.hand_back_trial`): requeued at once, at the
   front of the queue, its epochs kept. Then the master's `advance` runs for the search on a
   background thread (when the queue runs low), while the worker takes its
   next trial.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any

from hpsearch.checkpoints import Checkpoint
from hpsearch.config import TrainConfig
from hpsearch.db.records import TrialRecord
from hpsearch.errors import StorageError
from hpsearch.logs import log_event
from hpsearch.master import advance, search_spec
from hpsearch.nn.train_stats import SCALAR_METRICS
from hpsearch.training import CheckpointTarget, prepare, run_training
from worker.beat import TrialWatch, WorkerBeat
from worker.context import WorkerContext, get_context
from worker.keep import KEEP_BEST_PER_TRIAL, CheckpointKeeper, KeptCheckpoint

__all__ = ["KEEP_BEST_PER_TRIAL", "advance_if_needed", "run_trial"]

_THRESHOLD_TTL_S = 10.0  # a search's concurrency may change while it runs
_STATUS_OF_RESULT = {"completed": "completed", "diverged": "diverged", "stopped": "cancelled"}
HAND_BACK = "handed_back"  # the outcome of a trial stopped by its stopping worker


def run_trial(trial_id: int, context: WorkerContext | None = None) -> str:
    """Run one trial to its end; returns its final status, or "skipped" if not claimable."""
    context = context or get_context()
    storage = context.storage
    trial = storage.claim_trial(trial_id, context.worker_id)
    if trial is None:
        return "skipped"
    watch = TrialWatch(trial_id, stopping=context.stopping)
    beat = _beat_of(context)
    beat.watch(watch)
    try:
        outcome = _run_claimed(context, trial, watch)
    finally:
        beat.watch(None)
    if isinstance(outcome, str):  # finished by the last epoch's commit
        final_status: str | None = outcome
    elif watch.lost.is_set():
        log_event("worker", "trial.lost", logging.WARNING, trial_id=trial_id,
                  worker_id=context.worker_id, attempt=trial.attempts)  # fmt: skip
        return "lost"
    elif outcome[0] == HAND_BACK:
        back = storage.hand_back_trial(trial_id, context.worker_id, outcome[1] or "worker stopping")
        final_status = HAND_BACK if back is not None and back.status == "queued" else (
            back.status if back is not None else None)  # fmt: skip
    else:
        finished = storage.finish_trial(trial_id, context.worker_id, *outcome)
        final_status = finished.status if finished is not None else None
    if final_status in ("queued", HAND_BACK):
        context.executor.enqueue([trial_id], at_front=True)
    if final_status != HAND_BACK:
        _advancer_of(context).request(trial.search_id)
    return final_status if final_status is not None else "lost"


def _run_claimed(
    context: WorkerContext, trial: TrialRecord, watch: TrialWatch
) -> str | tuple[str, str | None, str | None]:
    """Train the claimed trial: its status if already finished, else (status, error, kind)."""
    try:
        return _train(context, trial, watch)
    except MemoryError:
        return "failed", "out of memory", "oom"
    except StorageError as exception:  # the database went away mid-trial: retried
        return "failed", str(exception), "infrastructure"
    except Exception as exception:  # recorded as the failure reason
        detail = traceback.format_exception_only(exception)[-1].strip()
        return "failed", detail, "error"


def _beat_of(context: WorkerContext) -> WorkerBeat:
    """The context's beat thread, started here for a context made without one."""
    if context.beat is None:
        context.beat = WorkerBeat(context.storage, context.worker_id, context.settings.heartbeat_s)
        context.beat.start()
    return context.beat


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
                    log_event("worker", "search.advance_failed", logging.WARNING,
                              search_id=search_id, error=str(error))  # fmt: skip
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
    context: WorkerContext, trial: TrialRecord, watch: TrialWatch
) -> str | tuple[str, str | None, str | None]:
    storage = context.storage
    config = TrainConfig.model_validate(trial.config)
    settings = context.settings
    prepared = prepare(config, settings.data_root, settings.resolved_prepared_root)
    resume = _resume_point(context, trial)
    own_epochs = (
        resume.epoch if resume is not None and resume.extra.get("trial_id") == trial.id else 0
    )
    keeper = _keeper_of(context, trial.search_id)
    if trial.last_epoch is not None:  # a first run has no epochs to discard nor checkpoints
        storage.discard_epochs_after(trial.id, context.worker_id, own_epochs)
        keeper.kept = [KeptCheckpoint(c.id, c.epoch, c.path, c.val_accuracy)
                       for c in storage.list_checkpoints(trial.id)]  # fmt: skip
    sink = _EpochSink(context, trial.id, config.epochs, watch, keeper)
    target = CheckpointTarget(
        storage=context.checkpoints,
        key_dir=f"search_{trial.search_id:06d}",
        stage=trial.stage,
        trial=trial.id,
        extra={"search_id": trial.search_id, "stage": trial.stage, "trial_id": trial.id},
    )
    try:
        _, result = run_training(
            config, prepared, target=target, on_epoch=sink.on_epoch,
            should_stop=watch.should_stop, resume=resume,
        )  # fmt: skip
    except _LostOwnershipError:
        return "failed", "lost ownership of the trial", "infrastructure"
    if sink.finished is not None:
        return sink.finished
    status = _STATUS_OF_RESULT[result.status]
    if status == "cancelled" and not watch.cancel.is_set():
        if watch.stopping.is_set():
            return HAND_BACK, f"worker {context.worker_id} stopping (SIGTERM)", None
        return "failed", "lost ownership of the trial", "infrastructure"
    return status, None if status == "completed" else result.reason, None


def _keeper_of(context: WorkerContext, search_id: int) -> CheckpointKeeper:
    """An empty keeper with the search spec's keep-policy (best k + last m), read once
    per search and process (a database read and a spec per trial otherwise)."""
    policy = context.keep_policies.get(search_id)
    if policy is None:
        spec = search_spec(context.storage, search_id)
        policy = (spec.checkpoints.keep_best, spec.checkpoints.last_to_keep(spec.ensembles))
        context.keep_policies[search_id] = policy
    return CheckpointKeeper(keep_best=policy[0], keep_last=policy[1])


class _EpochSink:
    """Commits each epoch of a trial (with its checkpoint, and the finish after the last)."""

    def __init__(
        self,
        context: WorkerContext,
        trial_id: int,
        epochs: int,
        watch: TrialWatch,
        keeper: CheckpointKeeper,
    ) -> None:
        self.context, self.trial_id, self.epochs = context, trial_id, epochs
        self.watch, self.keeper = watch, keeper
        self.finished: str | None = None  # the trial's status once the last epoch finished it

    def on_epoch(self, record: dict[str, Any], path: str | None) -> None:
        """The checkpoint file at `path` is written; commit the epoch, drop surplus checkpoints."""
        if self.watch.lost.is_set():
            raise _LostOwnershipError()
        metrics = {key: record.get(key) for key in SCALAR_METRICS}
        metrics["stats"] = {k: v for k, v in record.items() if k not in SCALAR_METRICS}
        last = record["epoch"] >= self.epochs  # the trainer ends after this epoch
        accuracy = record.get("val_accuracy")
        dropped = self.keeper.surplus_with_new(accuracy) if path is not None else []
        commit = self.context.storage.commit_epoch(
            self.trial_id, self.context.worker_id, record["epoch"], metrics, path,
            "completed" if last else None, drop_checkpoint_ids=[c.id for c in dropped],
        )  # fmt: skip
        log_event("worker", "epoch.committed", logging.DEBUG, trial_id=self.trial_id,
                  epoch=record["epoch"], val_accuracy=accuracy, checkpoint=path)  # fmt: skip
        if commit.cancel_requested:
            self.watch.cancel.set()  # a cancel stops the trial before its next epoch
        if last:
            self.finished = commit.status
        if path is not None and commit.checkpoint_id is not None:
            new = KeptCheckpoint(commit.checkpoint_id, record["epoch"], path, accuracy)
            self.keeper.replace(dropped, new)
            for checkpoint in dropped:
                self._delete_file(checkpoint.path)

    def _delete_file(self, path: str) -> None:
        """A pruned checkpoint's file (its row is gone): a failure is only reported."""
        try:
            self.context.checkpoints.delete(path)
        except Exception as error:
            log_event("worker", "checkpoint.delete_failed", logging.WARNING, path=path,
                      error=str(error))  # fmt: skip


class _LostOwnershipError(Exception):
    """The trial was requeued while this worker still ran it."""


def _resume_point(context: WorkerContext, trial: TrialRecord) -> Checkpoint | None:
    """The trial's own last checkpoint (a retry), else its parent's (a promotion)."""
    own = trial.id if trial.last_epoch is not None else None  # a first run has no checkpoint
    for source in (own, trial.parent_trial_id):
        if source is None:
            continue
        record = context.storage.latest_checkpoint(source)
        if record is not None:
            return context.checkpoints.load(record.path)
    return None
