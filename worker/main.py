"""Worker process entry points: an RQ worker (cluster) and a database-polling loop (laptop).

Both call `worker.trial.run_trial`, in the same process for every trial (no
fork per job): the data set is loaded and preprocessed once per process.
A worker that cannot reach the database or Redis says so and retries with a
growing delay instead of crashing in a loop; an RQ worker that loses Redis
mid-job starts serving again once Redis answers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hpsearch.errors import HpsearchError
from hpsearch.executors import QUEUE_NAME
from hpsearch.settings import Settings, get_settings
from worker import context as worker_context
from worker.ensembles import run_ensemble_builds
from worker.trial import run_trial

__all__ = ["local_worker_loop", "run_rq_worker", "with_retries"]

T = TypeVar("T")
_FINISHED_SEARCH = {"completed", "cancelled", "failed"}


def with_retries(
    what: str, action: Callable[[], T], max_delay_s: float = 30.0, attempts: int | None = None
) -> T:
    """Call `action` until it succeeds, logging each failure to stderr with a backoff."""
    delay, attempt = 1.0, 0
    while True:
        attempt += 1
        try:
            return action()
        except (HpsearchError, OSError, ConnectionError) as error:
            if attempts is not None and attempt >= attempts:
                raise
            print(f"hpsearch worker: cannot reach {what}: {error}; retrying in {delay:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
            time.sleep(delay)
            delay = min(delay * 2, max_delay_s)


def _connect_context(settings: Settings) -> worker_context.WorkerContext:
    context = with_retries("the database", lambda: worker_context.make_context(settings))
    worker_context._context = context
    return context


def local_worker_loop(
    search_id: int | None = None, idle_sleep_s: float = 0.05, exit_when_done: bool = True
) -> None:
    """Claim and run queued trials (of one search, or any) straight from the database,
    then its queued ensemble builds; with `exit_when_done`, return once the search
    ended and none of its ensembles is queued or being built."""
    settings = get_settings()
    context = _connect_context(settings)
    storage = context.storage
    offset = abs(hash(context.worker_id))
    while True:
        queued = storage.queued_trial_ids(search_id)
        ran = False
        for position in range(min(len(queued), 8)):
            trial_id = queued[(offset + position) % min(len(queued), 8)]
            if run_trial(trial_id, context) != "skipped":
                ran = True
                break
        if ran:
            continue
        ensemble_ids = storage.queued_ensemble_ids(search_id)
        if ensemble_ids:
            run_ensemble_builds(ensemble_ids, context)
            continue
        if (
            exit_when_done
            and search_id is not None
            and (storage.get_search(search_id).status in _FINISHED_SEARCH)
            and storage.pending_ensembles(search_id) == 0
        ):
            return
        time.sleep(idle_sleep_s)


def run_rq_worker(redis_url: str | None = None, burst: bool = False) -> None:
    """Serve trials from the RQ queue in this process (no fork per job: `TrialWorker`)."""
    from redis import Redis
    from rq import Queue

    from worker.rq_worker import TrialWorker

    settings = get_settings()
    url = redis_url or settings.redis_url
    if not url:
        raise HpsearchError("no Redis URL: set HPSEARCH_REDIS_URL or pass --redis-url")
    connection = Redis.from_url(url, socket_connect_timeout=5)

    def ping() -> bool:
        try:
            return bool(connection.ping())
        except Exception as error:  # redis raises its own ConnectionError family
            raise ConnectionError(str(error)) from error

    where = f"Redis at {url.split('@')[-1]}"
    with_retries(where, ping)
    _connect_context(settings)
    queue = Queue(QUEUE_NAME, connection=connection)
    while not _serve_rq(TrialWorker([queue], connection=connection), burst):
        with_retries(where, ping)


def _serve_rq(rq_worker: Any, burst: bool) -> bool:
    """Run RQ's loop; False when it ended on a lost Redis (or another error), to start again.

    RQ survives a lost connection while it waits for a job, but quits when it
    loses Redis while recording a job's end; the trial's end is in the
    database already, so the worker serves on once Redis answers again.
    """
    from redis.exceptions import RedisError

    try:
        rq_worker.work(burst=burst, logging_level="WARNING")
    except RedisError as error:
        print(f"event=rq_loop_ended error={error!r}", file=sys.stderr, flush=True)
    if burst or rq_worker._stop_requested:
        return True
    print("event=rq_loop_restarting", file=sys.stderr, flush=True)
    time.sleep(1.0)
    return False
