"""Heartbeats and staleness are judged by the database server's clock, not the worker's.

The workers here run with their host clock shifted by an hour: every reading
of `hpsearch.db.convert.utc_now` and `time.time` in the worker process is off
by CLOCK_SHIFT_S. A worker whose clock runs late must not be requeued while
it lives; one whose clock runs early must be requeued soon after it dies.
"""

from __future__ import annotations

from service_tools import RQ_WORKER, Service, drive_search, parse, spiral_spec, wait_for

from hpsearch.db import Storage
from hpsearch.executors import RQExecutor
from hpsearch.master import create_search, reap

HOUR_S = 3600.0
# Runs in the worker before anything else: shift this process's clock by CLOCK_SHIFT_S.
SHIFTED_CLOCK = """
import os, sys, time
from datetime import UTC, datetime, timedelta
shift_s = float(os.environ["CLOCK_SHIFT_S"])
import hpsearch.db.storage, hpsearch.db.convert as convert
real_utc_now, real_time = convert.utc_now, time.time
def shifted_utc_now():
    return real_utc_now() + timedelta(seconds=shift_s)
for module in list(sys.modules.values()):
    if getattr(module, "utc_now", None) is real_utc_now:
        module.utc_now = shifted_utc_now
time.time = lambda: real_time() + shift_s
"""


def _shifted_worker(service: Service, shift_s: float) -> None:
    service.start_worker(SHIFTED_CLOCK + RQ_WORKER, CLOCK_SHIFT_S=str(shift_s))


def _long_trial_spec(epochs: int) -> dict:
    return spiral_spec([{"trials": 1, "epochs": epochs}], concurrency=1,
                       hidden_sizes=(512, 512), points_per_class=30)  # fmt: skip


def test_a_live_worker_whose_clock_runs_an_hour_late_is_not_requeued(
    rq_service: Service, rq_storage: Storage
) -> None:
    assert rq_service.redis_url is not None
    rq_service.heartbeat_s, rq_service.stale_after_s = 0.3, 1.5
    _shifted_worker(rq_service, -HOUR_S)
    executor = RQExecutor(rq_service.redis_url)
    search_id = create_search(rq_storage, parse(_long_trial_spec(epochs=16)), executor)
    (trial,) = rq_storage.best_trials(search_id)
    wait_for(lambda: rq_storage.get_trial(trial.id).status == "running", 60, "the claim")
    alive_seen: list[bool] = []

    def watch_workers() -> None:
        alive_seen.extend(worker.alive for worker in rq_storage.list_workers(1.5))

    assert drive_search(rq_storage, executor, rq_service, search_id, on_tick=watch_workers) == (
        "completed"
    )
    finished = rq_storage.get_trial(trial.id)
    assert (finished.status, finished.attempts) == ("completed", 1), rq_service.logs()
    assert alive_seen and all(alive_seen), "the late-clock worker was listed as dead"


def test_a_dead_worker_whose_clock_ran_an_hour_early_is_requeued(
    rq_service: Service, rq_storage: Storage
) -> None:
    assert rq_service.redis_url is not None
    rq_service.heartbeat_s, rq_service.stale_after_s = 0.3, 1.5
    _shifted_worker(rq_service, +HOUR_S)
    executor = RQExecutor(rq_service.redis_url)
    search_id = create_search(rq_storage, parse(_long_trial_spec(epochs=40)), executor)
    (trial,) = rq_storage.best_trials(search_id)
    wait_for(lambda: rq_storage.get_trial(trial.id).last_epoch, 60, "a committed epoch")
    rq_service.workers[0].kill()

    def requeued() -> bool:
        reap(rq_storage, executor, rq_service.stale_after_s)
        return rq_storage.get_trial(trial.id).status == "queued"

    wait_for(requeued, 20, "the dead early-clock worker's trial to be requeued")
    assert not any(worker.alive for worker in rq_storage.list_workers(1.5))
