"""Worker process entry points: an RQ worker (cluster) and a database-polling loop (laptop).

Both call `worker.trial.run_trial`, in the same process for every trial (no
fork per job): the data set is loaded and preprocessed once per process.
A worker that cannot reach the database or Redis logs `worker.connection_lost`
and retries with a growing delay (then `worker.reconnected`) instead of
crashing in a loop; an RQ worker that loses Redis mid-job starts serving
again once Redis answers. SIGTERM (or SIGINT) stops a worker cleanly: its
running trial stops between two iterations and is handed back to the queue
at once, then the worker deregisters (`worker.stopped`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hpsearch.errors import HpsearchError
from hpsearch.executors import QUEUE_NAME
from hpsearch.logs import configure_logging, log_event, stop_on_signals
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
    delay, attempt, lost_at = 1.0, 0, None
    while True:
        attempt += 1
        try:
            result = action()
        except (HpsearchError, OSError, ConnectionError) as error:
            if attempts is not None and attempt >= attempts:
                raise
            lost_at = lost_at or time.monotonic()
            log_event("worker", "worker.connection_lost", logging.WARNING, to=what,
                      error=str(error).strip().split("\n")[0], retry_in_s=delay)  # fmt: skip
            time.sleep(delay)
            delay = min(delay * 2, max_delay_s)
            continue
        if lost_at is not None:
            log_event("worker", "worker.reconnected", to=what,
                      after_s=round(time.monotonic() - lost_at, 3))  # fmt: skip
        return result


def _connect_context(settings: Settings) -> worker_context.WorkerContext:
    configure_logging(settings.log_format, settings.log_level)
    context = with_retries("the database", lambda: worker_context.make_context(settings))
    worker_context._context = context
    return context


def local_worker_loop(
    search_id: int | None = None, idle_sleep_s: float = 0.05, exit_when_done: bool = True
) -> None:
    """Claim and run queued trials (of one search, or any) straight from the database,
    then its queued ensemble builds; with `exit_when_done`, return once the search
    ended and none of its ensembles is queued or being built. With nothing queued
    while this worker's own advance (worker.trial._Advancer) runs, it looks again as
    soon as that advance is done rather than after `idle_sleep_s`."""
    settings = get_settings()
    context = _connect_context(settings)
    stop_on_signals(context.stopping, "worker", worker_id=context.worker_id)
    storage = context.storage
    reason = "stopped"
    try:
        while not context.stopping.is_set():
            if _run_one_queued(context, search_id):
                continue
            if context.advancer is not None and not context.advancer.wait_idle(0):
                context.advancer.wait_idle(idle_sleep_s)  # its advance queues trials: look again
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
                reason = "search finished"
                return
            context.stopping.wait(idle_sleep_s)
        reason = "asked to stop"
    finally:
        worker_context.close_context(context, reason)


def _run_one_queued(context: worker_context.WorkerContext, search_id: int | None) -> bool:
    """Claim and run one queued trial; False when none could be claimed.

    The head of the queue (a retry, if any: `queued_trial_ids`) is tried
    first, then up to 8 of the oldest trials from an offset of this worker's
    own, so that workers starting together do not all race for one trial.
    """
    queued = context.storage.queued_trial_ids(search_id)
    window = min(len(queued), 8)
    offset = abs(hash(context.worker_id))
    candidates = queued[:1] + [queued[(offset + k) % window] for k in range(window)]
    for trial_id in dict.fromkeys(candidates):
        if context.stopping.is_set():
            return False
        if run_trial(trial_id, context) != "skipped":
            return True
    return False


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
    context = _connect_context(settings)
    with_retries(where, ping)
    queue = Queue(QUEUE_NAME, connection=connection)

    def rq_worker() -> TrialWorker:
        made = TrialWorker([queue], connection=connection)
        made.stopping = context.stopping
        return made

    try:
        while not _serve_rq(rq_worker(), burst):
            with_retries(where, ping)
    finally:
        worker_context.close_context(context, "asked to stop" if context.stopping.is_set() else
                                     "queue empty" if burst else "stopped")  # fmt: skip


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
        log_event("worker", "worker.connection_lost", logging.WARNING, to="Redis",
                  error=f"{type(error).__name__}: {error}", during="rq loop")  # fmt: skip
    if burst or rq_worker._stop_requested or rq_worker.stopping.is_set():
        return True
    log_event("worker", "worker.rq_loop_restarting")
    time.sleep(1.0)
    return False
