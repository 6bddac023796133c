"""Workers die at any instant: SIGKILL mid-trial and mid-checkpoint, a flushed Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from redis import Redis
from service_tools import (
    Service,
    checkpoint_files,
    drive_search,
    epochs_of,
    parse,
    spiral_spec,
    wait_for,
)

from hpsearch.checkpoints import is_temporary_name, load_checkpoint
from hpsearch.db import Storage, open_storage
from hpsearch.executors import LocalExecutor, RQExecutor
from hpsearch.master import create_search, reap

# One trial whose epochs are dominated by writing a ~12 MB checkpoint (0.2-0.5 s each).
EPOCHS = 10
TORN_EPOCHS = 24
BIG = {"hidden_sizes": (1024, 1024), "points_per_class": 30}


def _one_long_trial(epochs: int) -> dict:
    return spiral_spec([{"trials": 1, "epochs": epochs}], concurrency=1, **BIG)


def _checkpointed_epoch(storage: Storage, trial_id: int) -> int:
    checkpoint = storage.latest_checkpoint(trial_id)
    return checkpoint.epoch if checkpoint is not None else 0


def test_a_trial_whose_worker_is_killed_is_requeued_and_resumes_from_its_checkpoint(
    rq_service: Service, rq_storage: Storage
) -> None:
    assert rq_service.redis_url is not None
    executor = RQExecutor(rq_service.redis_url)
    doomed = rq_service.start_worker()
    search_id = create_search(rq_storage, parse(_one_long_trial(EPOCHS)), executor)
    (trial,) = rq_storage.best_trials(search_id)

    wait_for(lambda: _checkpointed_epoch(rq_storage, trial.id) >= 2, 60, "two checkpoints")
    doomed.kill()
    killed_at = datetime.now(UTC)
    resume_epoch = _checkpointed_epoch(rq_storage, trial.id)
    rq_service.start_worker()

    def requeued() -> bool:
        reap(rq_storage, executor, rq_service.stale_after_s)
        return rq_storage.get_trial(trial.id).attempts == 2

    wait_for(requeued, 20, "the killed worker's trial to be requeued and claimed again")
    assert drive_search(rq_storage, executor, rq_service, search_id) == "completed"

    finished = rq_storage.get_trial(trial.id)
    assert (finished.status, finished.attempts, finished.last_epoch) == ("completed", 2, EPOCHS)
    curve = rq_storage.trial_curves(trial.id)
    assert [epoch.epoch for epoch in curve] == list(range(1, EPOCHS + 1))
    # Resumed, not restarted: the epochs up to the checkpoint are the first attempt's rows.
    kept = [e.epoch for e in curve if e.created_at and e.created_at.replace(tzinfo=UTC) < killed_at]
    assert kept[:resume_epoch] == list(range(1, resume_epoch + 1))


def _temporaries(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if is_temporary_name(path.name)}


def test_sigkill_during_checkpoint_writes_leaves_no_torn_file(local_service: Service) -> None:
    local_service.heartbeat_s, local_service.stale_after_s = 0.3, 1.5
    storage = open_storage(local_service.database_url)
    executor = LocalExecutor()
    root = local_service.checkpoint_root
    try:
        search_id = create_search(storage, parse(_one_long_trial(TORN_EPOCHS)), executor)
        (trial,) = storage.best_trials(search_id)
        inside_writes = 0
        for kill in range(3):  # the trial's infrastructure retries: 3
            worker = local_service.start_worker()
            done_before = _checkpointed_epoch(storage, trial.id)

            def progressed(attempt: int = kill + 1, done: int = done_before) -> bool:
                now = storage.get_trial(trial.id)
                checkpointed = _checkpointed_epoch(storage, trial.id)
                return now.status == "running" and now.attempts == attempt and checkpointed > done

            wait_for(progressed, 60, "a new checkpoint in this attempt")
            old = _temporaries(root) if root.exists() else set()
            writing = wait_for(lambda old=old: _temporaries(root) - old, 30,
                               "a checkpoint write in progress", poll_s=0.002)  # fmt: skip
            worker.kill()
            # Killed as the write began (seen at its first 2 ms): inside it if its temporary
            # file is still there, not renamed into a checkpoint.
            inside_writes += bool(writing & _temporaries(root))
            files = checkpoint_files(root)
            assert files, "the trial wrote checkpoints"
            for path in files:
                load_checkpoint(path)  # a torn or partial file raises CheckpointError
            wait_for(lambda: reap(storage, executor, local_service.stale_after_s), 20, "requeue")
        assert inside_writes == 3, f"only {inside_writes} of the kills landed inside a write"
        local_service.start_worker()
        assert drive_search(storage, executor, local_service, search_id) == "completed"
        finished = storage.get_trial(trial.id)
        assert (finished.status, finished.last_epoch) == ("completed", TORN_EPOCHS)
        assert epochs_of(storage, finished) == list(range(1, TORN_EPOCHS + 1))
        for path in checkpoint_files(root):
            load_checkpoint(path)
    finally:
        storage.close()


def test_flushing_redis_mid_search_still_finishes_the_search(
    rq_service: Service, rq_storage: Storage
) -> None:
    assert rq_service.redis_url is not None
    executor = RQExecutor(rq_service.redis_url)
    stages = [{"trials": 10, "epochs": 1}, {"trials": 4, "epochs": 2, "keep": 0.25}]
    raw = spiral_spec(stages, concurrency=4, hidden_sizes=(256,), points_per_class=400)
    search_id = create_search(rq_storage, parse(raw), executor)
    # The first flush lands before any worker runs: every queued job is lost for certain, and
    # only the database still knows the stage's trials (a flush timed on progress can miss a
    # search that finishes between two polls on a fast machine).
    Redis.from_url(rq_service.redis_url).flushdb()
    assert rq_storage.trial_counts(search_id)["queued"] > 0
    for _ in range(2):
        rq_service.start_worker()
    flushed: list[dict[str, int]] = []

    def flush_again() -> None:  # and again while trials run, when a poll catches one
        counts = rq_storage.trial_counts(search_id)
        if not flushed and counts["running"] + counts["completed"] > 0:
            Redis.from_url(rq_service.redis_url).flushdb()
            flushed.append(counts)

    status = drive_search(rq_storage, executor, rq_service, search_id, on_tick=flush_again)
    assert status == "completed"
    counts = rq_storage.trial_counts(search_id)
    assert counts["completed"] == 14
    assert all(w.process.poll() is None for w in rq_service.workers), "workers survived"
