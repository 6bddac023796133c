"""Dispatch overhead of the service: trivial trials through RQ workers on PostgreSQL.

    python bench/dispatch_overhead.py [--trials 600] [--skip-optuna] [--profile]

Figures, all measured in this run on this machine:

1. Trivial trials (a 2-4-3 net, one epoch on 30 spiral points, a checkpoint
   per epoch) through 2 RQ worker processes (`hpsearch worker`'s in-process
   `worker.rq_worker.TrialWorker`, the real `run_trial`) with PostgreSQL:
   trials/s and ms/trial, wall clock from the search's creation to its
   completion. Target: >= 150 trials/s.
2. The peer: Optuna with PostgreSQL storage (RDBStorage on a schema of its
   own), 2 processes running `study.optimize` on the same trivial training,
   reporting the epoch's accuracy. Target: hpsearch >= 1.25x Optuna.
3. 2 workers vs 1 on CPU-bound trials (a 2-512-512-3 net, 8 epochs on 3,000 points,
   Adam at learning rates where no trial diverges, so that every trial trains).
   Target: >= 1.9x.
4. Worker utilization over a staged, asynchronous search of CPU-bound trials:
   sum of trial (finish - start) / (workers x (last finish - first start)).
   Target: >= 95%.

`--profile` also runs trivial trials in this process through `run_trial`
(taking them from the database, as a local worker does) and prints where each
trial's time goes (storage calls, checkpoint write, advance), and what
`rq.SimpleWorker` and `TrialWorker` cost per no-op job.
Needs PostgreSQL and Redis (HPSEARCH_TEST_POSTGRES_URL / HPSEARCH_TEST_REDIS_URL
style defaults below); every schema and Redis key it creates is removed.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hpsearch.db import Storage, open_storage
from hpsearch.executors import LocalExecutor, RQExecutor
from hpsearch.master import advance as _advance
from hpsearch.master import create_search, reap
from hpsearch.search import parse_search_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
RQ_WORKER = "from worker.main import run_rq_worker; run_rq_worker()"
TRIVIAL = {"data": {"source": "spiral", "num_classes": 3, "points_per_class": 10},
           "model": {"hidden_sizes": [4]}, "batch_size": 32}  # fmt: skip
CPU_BOUND = {"data": {"source": "spiral", "num_classes": 3, "points_per_class": 1000},
             "model": {"hidden_sizes": [512, 512]}, "batch_size": 64}  # fmt: skip
SPACE = {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1}}
# Adam diverges above ~1e-2 on CPU_BOUND and such a trial ends within ~10 ms: the
# CPU-bound figures use rates where every trial trains all its epochs.
CPU_SPACE = {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-4, "high": 3e-3}}


def spec(name: str, base: dict[str, Any], stages: list[dict[str, Any]], concurrency: int) -> Any:
    # No sanity gate: it rightly refuses TRIVIAL's 4 units (20 spiral points are not fit)
    # and its time is not dispatch (Optuna has none).
    raw = {"name": name, "seed": 0, "concurrency": concurrency, "eta": 2.0, "base": base,
           "space": SPACE, "stages": stages, "sanity_gate": False}  # fmt: skip
    if base is CPU_BOUND:  # no widening past the border either: it would reach 2e-2
        raw |= {"space": CPU_SPACE, "widen_on_border": False}
    return parse_search_spec(raw, source=name)


@contextmanager
def postgres_schema(postgres_url: str, async_commit: bool = False) -> Iterator[str]:
    """A URL whose connections use a fresh schema, dropped afterwards.

    `async_commit` adds `synchronous_commit=off` to the connection options: a
    commit returns before its WAL reaches the disk (a server crash may lose the
    last few hundred ms of commits, never consistency).
    """
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        options = f"-csearch_path={schema}" + (" -csynchronous_commit=off" if async_commit else "")
        url = make_url(postgres_url).update_query_dict({"options": options})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


class Cluster:
    """A PostgreSQL schema, a Redis DB and N RQ worker processes."""

    def __init__(self, database_url: str, redis_url: str, home: Path) -> None:
        self.database_url, self.redis_url, self.home = database_url, redis_url, home
        self.storage = open_storage(database_url)
        self.executor = RQExecutor(redis_url)
        self.processes: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPSEARCH_")}
        env.update(HPSEARCH_HOME=str(self.home), HPSEARCH_DATABASE_URL=self.database_url,
                   HPSEARCH_REDIS_URL=self.redis_url)  # fmt: skip
        return env

    def start_workers(self, count: int) -> None:
        registered = len(self.storage.list_workers(60.0))
        log = (self.home / "workers.log").open("ab")
        for _ in range(count):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-c", RQ_WORKER], cwd=self.home, env=self.env(),
                stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        while len(self.storage.list_workers(60.0)) < registered + count:
            time.sleep(0.05)
        self.run_search(spec("warm-up", TRIVIAL, [{"trials": 4 * count, "epochs": 1}], 2 * count))

    def stop_workers(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        self.processes = []

    def run_search(self, search_spec: Any) -> tuple[int, float]:
        """Create the search, wait (reaping now and then) until it ends; (id, seconds)."""
        started = time.perf_counter()
        search_id = create_search(self.storage, search_spec, self.executor)
        next_reap = started + 1.0
        while self.storage.get_search(search_id).status == "running":
            time.sleep(0.05)  # the workers advance the search; this only watches
            if time.perf_counter() > next_reap:
                reap(self.storage, self.executor, 30.0)
                next_reap += 1.0
        return search_id, time.perf_counter() - started

    def close(self) -> None:
        self.stop_workers()
        self.storage.close()


TIMED_STORAGE_CALLS = ("claim_trial", "worker_heartbeat", "commit_epoch", "record_epoch",
                       "record_checkpoint", "list_checkpoints", "finish_trial", "queued_trial_ids",
                       "get_trial", "get_search", "search_snapshot", "search_state", "list_stages",
                       "insert_new_trials")  # fmt: skip


def profile_trials(cluster: Cluster, trials: int) -> None:
    """Trivial trials through `run_trial` in this process, timing each step per trial."""
    from hpsearch.checkpoints import FileSystemCheckpointStorage
    from hpsearch.settings import Settings
    from worker import context as worker_context
    from worker import trial as worker_trial

    settings = Settings(home=cluster.home, database_url=cluster.database_url,
                        redis_url=cluster.redis_url)  # fmt: skip
    context = worker_context.make_context(settings)
    # This process runs the trials itself, straight from the database, so no RQ
    # job may pile up (the database is the queue, as in local mode).
    context.executor = LocalExecutor()
    totals: dict[str, float] = {}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            where = " (advancer thread)" if threading.current_thread().name == "advancer" else ""
            try:
                return function(*args, **kwargs)
            finally:
                key = name + where
                totals[key] = totals.get(key, 0.0) + time.perf_counter() - started

        return wrapper

    for name in TIMED_STORAGE_CALLS:
        setattr(context.storage, name, timed(f"storage.{name}", getattr(context.storage, name)))
    save = FileSystemCheckpointStorage.save
    context.checkpoints.save = timed("checkpoint write+fsync", save.__get__(context.checkpoints))  # type: ignore[method-assign]
    worker_trial.advance = timed("advance (when run)", worker_trial.advance)
    search_spec = spec("profile", TRIVIAL, [{"trials": trials + 8, "epochs": 1}], 64)
    create_search(context.storage, search_spec, context.executor)
    for trial_id in context.storage.queued_trial_ids()[:8]:  # warm-up
        worker_trial.run_trial(trial_id, context)
    totals.clear()
    started, ran = time.perf_counter(), 0
    while ran < trials:
        for trial_id in context.storage.queued_trial_ids()[:8]:
            ran += worker_trial.run_trial(trial_id, context) != "skipped"
    wall = time.perf_counter() - started
    print(f"profile: {trials} trivial trials in one process, {1000 * wall / ran:.2f} ms/trial")
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {name:50s} {1000 * seconds / ran:6.2f} ms/trial")
    accounted = sum(v for k, v in totals.items() if "advance" not in k)
    rest_ms = 1000 * (wall - accounted) / ran
    print(f"  {'rest of the main thread (training, glue)':50s} {rest_ms:6.2f} ms/trial")
    worker_trial.advance = _advance
    context.storage.close()


def profile_rq_noop(redis_url: str, jobs: int) -> None:
    """RQ's own cost: no-op jobs through one worker in burst mode (RQ's and ours)."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    from worker.rq_worker import TrialWorker

    connection = Redis.from_url(redis_url)
    queue = Queue("noop-profile", connection=connection)
    for worker_class in (SimpleWorker, TrialWorker):
        queue.enqueue_many([queue.prepare_data("builtins.len", args=((),), result_ttl=60,
                                               timeout=-1) for _ in range(jobs)])  # fmt: skip
        started = time.perf_counter()
        worker_class([queue], connection=connection).work(burst=True, logging_level="ERROR")
        seconds = time.perf_counter() - started
        print(f"  {worker_class.__name__} alone, no-op jobs: {1000 * seconds / jobs:.2f} ms/job")


def utilization(storage: Storage, search_id: int, workers: int) -> tuple[float, float, float]:
    """(busy share, share lost between a worker's trials, share lost at the start and end)."""
    trials = [t for t in storage.best_trials(search_id, limit=1000) if t.finished_at]
    spans_of: dict[Any, list[tuple[Any, Any]]] = {}
    for trial in trials:
        spans_of.setdefault(trial.worker_id, []).append((trial.started_at, trial.finished_at))
    first = min(start for spans in spans_of.values() for start, _ in spans)
    last = max(end for spans in spans_of.values() for _, end in spans)
    wall = workers * (last - first).total_seconds()
    busy = gaps = 0.0
    for spans in spans_of.values():
        spans.sort()
        busy += sum((end - start).total_seconds() for start, end in spans)
        gaps += sum((b[0] - a[1]).total_seconds() for a, b in itertools.pairwise(spans))
    return busy / wall, gaps / wall, 1.0 - (busy + gaps) / wall


def bench_hpsearch(cluster: Cluster, trials: int) -> float:
    cluster.start_workers(2)
    search_id, seconds = cluster.run_search(
        spec("trivial", TRIVIAL, [{"trials": trials, "epochs": 1}], concurrency=64)
    )
    counts = cluster.storage.trial_counts(search_id)
    assert counts["completed"] == trials, counts
    rate = trials / seconds
    print(f"hpsearch, 2 RQ workers, PostgreSQL: {trials} trivial trials in {seconds:.2f} s = "
          f"{rate:.0f} trials/s, {1000 * seconds / trials:.2f} ms/trial "
          "(target >= 150/s)")  # fmt: skip
    cluster.stop_workers()
    return rate


def _optuna_process(url: str, study_name: str, trials: int, barrier: Any) -> None:
    import optuna

    from hpsearch.config import TrainConfig, with_overrides
    from hpsearch.training import prepare, run_training

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = TrainConfig.model_validate({**TRIVIAL, "epochs": 1})
    prepared = prepare(base, Path("."))
    study = optuna.load_study(study_name=study_name, storage=url,
                              sampler=optuna.samplers.RandomSampler())  # fmt: skip

    def objective(trial: Any) -> float:
        rate = trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)
        config = with_overrides(base, {"optimizer.learning_rate": rate})
        _, result = run_training(config, prepared)
        accuracy = float(result.history[-1]["val_accuracy"])
        trial.report(accuracy, 1)
        return accuracy

    barrier.wait()
    study.optimize(objective, n_trials=trials)


def bench_optuna(database_url: str, trials: int) -> float:
    import optuna

    storage = optuna.storages.RDBStorage(database_url)
    optuna.create_study(study_name="trivial", storage=storage, direction="maximize")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    processes = [context.Process(target=_optuna_process,
                                 args=(database_url, "trivial", trials // 2, barrier))
                 for _ in range(2)]  # fmt: skip
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - started
    done = len(optuna.load_study(study_name="trivial", storage=storage).trials)
    storage.engine.dispose()
    rate = done / seconds
    print(f"Optuna, 2 processes, PostgreSQL RDBStorage: {done} trivial trials in {seconds:.2f} s "
          f"= {rate:.0f} trials/s, {1000 * seconds / done:.2f} ms/trial")  # fmt: skip
    return rate


def bench_scaling(cluster: Cluster, trials: int) -> None:
    rates = {}
    for workers in (1, 2):
        cluster.start_workers(workers)
        search = spec(f"cpu-{workers}", CPU_BOUND, [{"trials": trials, "epochs": 8}], 4)
        _, seconds = cluster.run_search(search)
        rates[workers] = trials / seconds
        cluster.stop_workers()
        print(f"CPU-bound, {workers} worker(s): {trials} trials in {seconds:.2f} s")
    print(f"2 workers vs 1: {rates[2] / rates[1]:.2f}x (target >= 1.9x)")


def bench_utilization(cluster: Cluster) -> None:
    cluster.start_workers(2)
    stages: list[dict[str, Any]] = [
        {"trials": 12, "epochs": 2},
        {"trials": 6, "epochs": 4, "keep": 0.5},
        {"trials": 2, "epochs": 8, "keep": 2},
    ]
    search_id, _ = cluster.run_search(spec("staged", CPU_BOUND, stages, concurrency=4))
    busy, gaps, ends = utilization(cluster.storage, search_id, 2)
    cluster.stop_workers()
    print(f"worker utilization over a 3-stage search, 2 workers: {100 * busy:.1f}% "
          f"(target >= 95%); idle between trials {100 * gaps:.1f}%, "
          f"at the start and end {100 * ends:.1f}%")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--cpu-trials", type=int, default=12)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "HPSEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--skip-optuna", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="synchronous_commit=off for hpsearch and Optuna alike",
    )
    args = parser.parse_args()  # fmt: skip
    from redis import Redis

    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    try:
        with (
            tempfile.TemporaryDirectory() as home,
            postgres_schema(args.postgres_url, args.async_commit) as url,
        ):
            cluster = Cluster(url, args.redis_url, Path(home))
            try:
                if args.profile:
                    profile_trials(cluster, 200)
                    profile_rq_noop(args.redis_url, 500)
                ours = bench_hpsearch(cluster, args.trials)
                if not args.skip_cpu:
                    bench_scaling(cluster, args.cpu_trials)
                    bench_utilization(cluster)
            finally:
                cluster.close()
        if not args.skip_optuna:
            with postgres_schema(args.postgres_url, args.async_commit) as optuna_url:
                theirs = bench_optuna(optuna_url, args.trials)
            print(f"hpsearch / Optuna: {ours / theirs:.2f}x (target >= 1.25x)")
    finally:
        redis.flushdb()


if __name__ == "__main__":
    main()
