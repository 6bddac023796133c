"""Recovery on PostgreSQL + Redis with 2 RQ workers, a backlog and `hpsearch master` as deployed.

Times are read from the trial event history (the facts the service
recorded), not from the test's own sense of how fast the machine is:
kill -> the trial claimed again, SIGTERM -> the trial handed back.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime

from service_tools import CLI_MASTER, Service, WorkerProcess, parse, spiral_spec, wait_for

from hpsearch.db import Storage, TrialEventRecord
from hpsearch.executors import RQExecutor
from hpsearch.master import create_search

KILLS = 5
EPOCHS = 15
MAX_KILL_TO_RUNNING_S = 10.0
MAX_SIGTERM_TO_REQUEUED_S = 2.0
# Trials of many short epochs (a ~12 MB checkpoint each): always one running on each worker.
BIG = {"hidden_sizes": (1024, 1024), "points_per_class": 30}
# Learning rates at which these trials train (rather than diverge and end in a second).
STEADY = {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-4, "high": 1e-3}}


def _start_master(service: Service) -> WorkerProcess:
    """`hpsearch master` in its own process, as deployed (HPSEARCH_API_MASTER=false)."""
    return service.start_worker(code=CLI_MASTER)


def _pid_of(worker_id: str | None) -> int | None:
    return int(worker_id.split("-")[-2]) if worker_id else None


def _running_on(storage: Storage, search_id: int, worker: WorkerProcess) -> int | None:
    for trial in storage.best_trials(search_id, limit=100, status="running"):
        if _pid_of(trial.worker_id) == worker.pid:
            return trial.id
    return None


def _events_since(storage: Storage, trial_id: int, since: datetime) -> list[TrialEventRecord]:
    return [event for event in storage.trial_events(trial_id) if event.at >= since]


def _claims_before_retry(storage: Storage, search_id: int, back: TrialEventRecord) -> list[int]:
    """Trials claimed after `back` (a requeue) and before the retry's own next claim.

    With retries at the front, that is at most one dequeue by the other worker
    racing the requeue; at the back, the whole backlog would run first.
    """
    claims = [e for e in storage.search_events(search_id, limit=1000)
              if e.event == "claimed" and e.at >= back.at]  # fmt: skip
    claims.sort(key=lambda event: event.at)
    retry_at = next(e.at for e in claims if e.trial_id == back.trial_id)
    return [e.trial_id for e in claims if e.at < retry_at]


def _busy_worker(
    storage: Storage, search_id: int, service: Service, spare: set[int] = frozenset()
) -> tuple[WorkerProcess, int]:
    """A live worker running a checkpointed trial not in `spare` (a trial is killed once)."""

    def found() -> tuple[WorkerProcess, int] | None:
        for worker in service.workers[1:]:
            if worker.process.poll() is None:
                trial_id = _running_on(storage, search_id, worker)
                if trial_id is None or trial_id in spare:
                    continue
                epochs_done = storage.get_trial(trial_id).last_epoch or 0
                if 1 <= epochs_done <= EPOCHS - 5:  # checkpointed, and not about to finish
                    return worker, trial_id
        return None

    return wait_for(found, 60, "a worker running a checkpointed trial")


def test_killed_workers_trials_run_again_within_10_s_and_go_first(
    rq_service: Service, rq_storage: Storage
) -> None:
    assert rq_service.redis_url is not None
    rq_service.heartbeat_s, rq_service.stale_after_s = 0.5, 3.0
    # Short trials: the surviving worker is soon free too, so the retry waits for whichever
    # comes first, it or the restarted worker (whose start is slow on a loaded machine).
    stages = [{"trials": 60, "epochs": EPOCHS}]
    raw = spiral_spec(stages, concurrency=6, space=STEADY, **BIG)
    search_id = create_search(rq_storage, parse(raw), RQExecutor(rq_service.redis_url))
    _start_master(rq_service)
    for _ in range(2):
        rq_service.start_worker()
    recoveries: list[float] = []
    killed: set[int] = set()
    while len(recoveries) < KILLS and len(killed) < 3 * KILLS:
        worker, trial_id = _busy_worker(rq_storage, search_id, rq_service, killed)
        killed.add(trial_id)
        killed_at = datetime.now(UTC)
        worker.kill()
        rq_service.start_worker()  # the supervisor (compose, systemd) restarts it
        before = [e for e in rq_storage.trial_events(trial_id) if e.at < killed_at]
        if before[-1].event != "claimed":
            continue  # the trial ended just before the kill: the kill hit no trial

        def claimed_again(trial_id: int = trial_id, since: datetime = killed_at) -> list:
            return [e for e in _events_since(rq_storage, trial_id, since) if e.event == "claimed"]

        try:
            claim = wait_for(claimed_again, 60, f"trial {trial_id} running again")[0]
        except AssertionError as error:  # say what the service recorded and logged
            history = rq_storage.trial_events(trial_id)
            raise AssertionError(f"{error}\n{history}\n{rq_service.logs()[-4000:]}") from None
        reaped = [e for e in _events_since(rq_storage, trial_id, killed_at) if e.event == "reaped"]
        assert reaped and reaped[0].worker_id is not None and str(worker.pid) in reaped[0].worker_id
        # The retry went to the front: at most a racing dequeue came between requeue and claim.
        assert len(_claims_before_retry(rq_storage, search_id, reaped[0])) <= 1
        recoveries.append((claim.at - killed_at).total_seconds())
    print(
        f"kill -> running again: {[round(s, 2) for s in recoveries]} s; max {max(recoveries):.2f}"
    )
    assert len(recoveries) == KILLS, f"only {len(recoveries)} kills hit a running trial"
    assert max(recoveries) <= MAX_KILL_TO_RUNNING_S, recoveries
    rq_storage.request_cancel_search(search_id)


def test_a_sigterm_hands_the_trial_back_at_once_and_the_worker_deregisters(
    rq_service: Service, rq_storage: Storage
) -> None:
    assert rq_service.redis_url is not None
    raw = spiral_spec([{"trials": 6, "epochs": 2 * EPOCHS}], concurrency=4, space=STEADY, **BIG)
    search_id = create_search(rq_storage, parse(raw), RQExecutor(rq_service.redis_url))
    _start_master(rq_service)
    for _ in range(2):
        rq_service.start_worker(HPSEARCH_LOG_FORMAT="json")
    worker, trial_id = _busy_worker(rq_storage, search_id, rq_service)
    epochs_before = rq_storage.get_trial(trial_id).last_epoch or 0
    asked_at = datetime.now(UTC)
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0
    (back,) = [e for e in _events_since(rq_storage, trial_id, asked_at) if e.event == "handed_back"]
    assert (back.at - asked_at).total_seconds() <= MAX_SIGTERM_TO_REQUEUED_S
    assert back.reason is not None and "SIGTERM" in back.reason
    handed = rq_storage.get_trial(trial_id)
    assert handed.last_epoch is not None and handed.last_epoch >= epochs_before  # epochs kept
    rows = {w.id: w.status for w in rq_storage.list_workers(60.0)}
    assert [status for wid, status in rows.items() if _pid_of(wid) == worker.pid] == ["stopped"]
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    events = [line.get("event") for line in lines]
    for expected in ("worker.started", "trial.claimed", "worker.stopping", "trial.handed_back",
                     "worker.stopped"):  # fmt: skip
        assert expected in events, (expected, worker.log())

    # Another worker continues it from its checkpoint, before the trials queued after it.
    def claimed_again() -> list[TrialEventRecord]:
        return [e for e in _events_since(rq_storage, trial_id, back.at) if e.event == "claimed"]

    claim = wait_for(claimed_again, 60, "the trial claimed again")[0]
    assert len(_claims_before_retry(rq_storage, search_id, back)) <= 1
    assert claim.attempt == back.attempt  # a hand-back uses up no attempt
    rq_storage.request_cancel_search(search_id)
