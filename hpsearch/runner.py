"""`hpsearch run`: a whole search on this machine, with local worker processes.

The main process is the master: it stores the search, starts N worker
processes (database-polling loops by default, RQ workers when
`HPSEARCH_REDIS_URL` is set), and until the search ends it advances it, reaps
stale trials, restarts dead workers and reports progress; then it waits for
the workers to build the search's ensembles. Workers are started
with the `spawn` method: each opens its own database connection and maps the
data set the master prepared for them (`prepare_for_workers`).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized

from hpsearch.db import Storage
from hpsearch.db.records import EnsembleRecord, SearchRecord, TrialRecord
from hpsearch.executors import Executor
from hpsearch.master import advance, reap
from hpsearch.search import SearchSpec
from hpsearch.settings import Settings
from hpsearch.training import prepare

__all__ = [
    "FINISHED_SEARCH_STATUSES",
    "Progress",
    "WorkerPool",
    "prepare_for_workers",
    "progress_of",
    "supervise",
    "wait_for_ensembles",
]

FINISHED_SEARCH_STATUSES = frozenset({"completed", "cancelled", "failed"})


def prepare_for_workers(spec: SearchSpec, settings: Settings) -> None:
    """Prepare the spec's base data set once, in the prepared store the workers map.

    Otherwise every worker loads and preprocesses it again before its first
    trial (MNIST-1D is regenerated: about 2 CPU-seconds each, on the path to
    the first result). Trials whose searched preprocessing differs prepare
    their own.
    """
    prepare(spec.base, settings.data_root, settings.resolved_prepared_root)


def _worker_entry(search: Synchronized[int], redis_url: str | None) -> None:
    from worker.main import local_worker_loop, run_rq_worker

    while search.value == 0:  # imported while the master checks and stores the search
        time.sleep(0.01)
    if redis_url:
        run_rq_worker(redis_url)
    else:
        local_worker_loop(search.value)


class WorkerPool:
    """N worker processes; `ensure()` starts them and restarts any that died.

    They start before the search exists: a worker starting up spends about a second
    importing, so `hpsearch run` starts them before it checks the data, prepares it
    and stores the search, and they connect to nothing until `serve(search_id)`:
    then local workers (database polling) claim that search's trials, RQ workers
    serve the queue. A search refused meanwhile stops them having changed nothing.
    """

    def __init__(self, count: int, redis_url: str | None) -> None:
        self.count, self.redis_url = count, redis_url
        self._context = multiprocessing.get_context("spawn")
        self._search = self._context.Value("q", 0)
        self.processes: list[BaseProcess] = []
        self.restarts = 0

    def serve(self, search_id: int) -> None:
        self._search.value = search_id

    def _start_one(self) -> BaseProcess:
        process = self._context.Process(
            target=_worker_entry, args=(self._search, self.redis_url), daemon=True
        )
        process.start()
        return process

    def ensure(self) -> None:
        alive = [process for process in self.processes if process.is_alive()]
        self.restarts += (len(self.processes) - len(alive)) if self.processes else 0
        while len(alive) < self.count:
            alive.append(self._start_one())
        self.processes = alive

    def stop(self, timeout_s: float = 5.0) -> None:
        for process in self.processes:
            process.terminate()
        deadline = time.monotonic() + timeout_s
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        self.processes = []


@dataclass(frozen=True)
class Progress:
    search: SearchRecord
    counts: dict[str, int]
    stage: int
    best: TrialRecord | None


def progress_of(storage: Storage, search_id: int) -> Progress:
    search = storage.get_search(search_id)
    stages = storage.list_stages(search_id)
    best = storage.best_trials(search_id, limit=1, status="completed")
    return Progress(
        search=search,
        counts=storage.trial_counts(search_id),
        stage=max((stage.stage for stage in stages), default=0),
        best=best[0] if best else None,
    )


def supervise(
    storage: Storage,
    executor: Executor,
    settings: Settings,
    search_id: int,
    pool: WorkerPool | None,
    on_tick: Callable[[Progress], None] | None = None,
    tick_s: float = 0.25,
) -> Progress:
    """Drive the search until it ends and its ensembles are built; returns its final progress.

    Every `tick_s`: restart dead workers and read the search's status. Every
    `settings.master_tick_s`, and as soon as the search ended: reap stale
    trials, advance the search and report progress. Workers advance the search
    themselves as their trials end, so this pass is the backstop, and its
    queries (a few ms of CPU each) are not taken from the workers four times a
    second.
    """
    next_pass = 0.0
    while True:
        if pool is not None:
            pool.ensure()
        ended = storage.get_search(search_id).status in FINISHED_SEARCH_STATUSES
        if ended or time.monotonic() >= next_pass:
            next_pass = time.monotonic() + settings.master_tick_s
            reap(storage, executor, settings.stale_after_s)
            advance(storage, search_id, executor)
            progress = progress_of(storage, search_id)
            if on_tick is not None:
                on_tick(progress)
            if progress.search.status in FINISHED_SEARCH_STATUSES and (
                storage.pending_ensembles(search_id) == 0
            ):
                return progress
        time.sleep(tick_s)


def wait_for_ensembles(
    storage: Storage, ensemble_ids: list[int], pool: WorkerPool | None, tick_s: float = 0.25
) -> list[EnsembleRecord]:
    """Poll until the ensembles are built or failed (restarting dead local workers)."""
    while True:
        if pool is not None:
            pool.ensure()
        records = [storage.get_ensemble(ensemble_id) for ensemble_id in ensemble_ids]
        if all(record.status in ("completed", "failed") for record in records):
            return records
        time.sleep(tick_s)
