"""Helpers for the tests that run the service: real worker and master processes, a
per-test Redis DB, a master loop (tests/service, tests/api, tests/dashboard).

Worker processes are plain subprocesses (`python -c ...` calling the real entry
points: the `hpsearch worker` and `hpsearch master` commands, or the functions
they call) whose stderr goes to a file the test can read; every process a test
starts is SIGKILLed and reaped when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.db import Storage, TrialRecord
from hpsearch.executors import Executor
from hpsearch.master import advance, reap
from hpsearch.search import SearchSpec, parse_search_spec
from hpsearch.settings import Settings

__all__ = [
    "CLI_MASTER",
    "CLI_WORKER",
    "HPSEARCH",
    "REPO_ROOT",
    "Service",
    "WorkerProcess",
    "checkpoint_files",
    "drive_search",
    "redis_database",
    "spiral_spec",
    "wait_for",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
# The `hpsearch` command, run by the interpreter running the tests.
HPSEARCH = [sys.executable, "-c", "from hpsearch.cli import app; app(prog_name='hpsearch')"]
RQ_WORKER = "from worker.main import run_rq_worker; run_rq_worker()"
# The commands as deployed (docker-compose.yml): `hpsearch worker`, `hpsearch master`.
CLI_WORKER = "from hpsearch.cli import app; app(['worker'], prog_name='hpsearch')"
CLI_MASTER = (
    "from hpsearch.cli import app; app(['master', '--tick-s', '0.2'], prog_name='hpsearch')"
)
LOCAL_WORKER = (
    "from worker.main import local_worker_loop; local_worker_loop(None, exit_when_done=False)"
)
FIRST_TEST_REDIS_DB, LAST_TEST_REDIS_DB = 1, 14
_LOCK_KEY = "hpsearch-test-lock"


def spiral_spec(
    stages: list[dict[str, Any]],
    name: str = "spiral-service",
    concurrency: int = 2,
    hidden_sizes: tuple[int, ...] = (8,),
    points_per_class: int = 50,
    **extra: Any,
) -> dict[str, Any]:
    """A raw search spec on the built-in spiral with one log-uniform learning rate."""
    return {
        "name": name,
        "seed": 3,
        "concurrency": concurrency,
        "eta": 2.0,
        "base": {
            "data": {"source": "spiral", "num_classes": 3, "points_per_class": points_per_class},
            "model": {"hidden_sizes": list(hidden_sizes)},
            "batch_size": 100,
        },
        "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1}},
        "stages": stages,
        **extra,
    }


def parse(raw: dict[str, Any]) -> SearchSpec:
    return parse_search_spec(raw, source="test spec")


def write_spec(path: Path, raw: dict[str, Any]) -> Path:
    """Write a spec as JSON (`load_search_spec` reads `.json` as well as TOML)."""
    path.write_text(json.dumps(raw))
    return path


@contextmanager
def redis_database(redis_url: str) -> Iterator[str]:
    """A URL of a Redis DB (1..14) that no other test holds, flushed before and after."""
    from redis import Redis

    base = redis_url.rsplit("/", 1)[0]
    for number in range(FIRST_TEST_REDIS_DB, LAST_TEST_REDIS_DB + 1):
        connection = Redis.from_url(f"{base}/{number}")
        if connection.set(_LOCK_KEY, str(os.getpid()), nx=True, ex=900):
            connection.flushdb()
            connection.set(_LOCK_KEY, str(os.getpid()), ex=900)
            try:
                yield f"{base}/{number}"
            finally:
                connection.flushdb()
                connection.close()
            return
        connection.close()
    raise RuntimeError(f"every Redis DB {FIRST_TEST_REDIS_DB}..{LAST_TEST_REDIS_DB} is held")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@dataclass
class Service:
    """The settings of one test's service, and the worker processes it started."""

    home: Path
    database_url: str
    redis_url: str | None = None
    heartbeat_s: float = 0.5
    stale_after_s: float = 3.0
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPSEARCH_")}
        env.update(
            HPSEARCH_HOME=str(self.home),
            HPSEARCH_DATABASE_URL=self.database_url,
            HPSEARCH_HEARTBEAT_S=str(self.heartbeat_s),
            HPSEARCH_STALE_AFTER_S=str(self.stale_after_s),
            PYTHONUNBUFFERED="1",
        )
        if self.redis_url:
            env["HPSEARCH_REDIS_URL"] = self.redis_url
        env.update(overrides)
        return env

    def settings(self) -> Settings:
        return Settings(
            home=self.home,
            database_url=self.database_url,
            redis_url=self.redis_url,
            heartbeat_s=self.heartbeat_s,
            stale_after_s=self.stale_after_s,
        )

    @property
    def checkpoint_root(self) -> Path:
        return self.settings().resolved_checkpoint_root

    def start_worker(self, code: str | None = None, **env: str) -> WorkerProcess:
        """A worker subprocess: RQ when this service has Redis, else database polling."""
        code = code or (RQ_WORKER if self.redis_url else LOCAL_WORKER)
        log_path = self.home / f"worker-{len(self.workers)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", code],
                cwd=self.home,
                env=self.env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(process, log_path)
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()}" for w in self.workers)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.kill()


def wait_for(
    condition: Callable[[], Any],
    timeout_s: float,
    what: str | Callable[[], str],
    poll_s: float = 0.05,
) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` (a str, or a
    callable giving one at that time, e.g. with logs) after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            description = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout_s} s waiting for {description}")
        time.sleep(poll_s)


def drive_search(
    storage: Storage,
    executor: Executor,
    service: Service,
    search_id: int,
    timeout_s: float = 60.0,
    on_tick: Callable[[], None] | None = None,
    tick_s: float = 0.1,
) -> str:
    """Be the master (reap + advance) until the search ends; returns its final status."""
    deadline = time.monotonic() + timeout_s
    while True:
        reap(storage, executor, service.stale_after_s)
        advance(storage, search_id, executor)
        status = storage.get_search(search_id).status
        if status in ("completed", "cancelled", "failed"):
            return status
        if on_tick is not None:
            on_tick()
        if time.monotonic() > deadline:
            counts = storage.trial_counts(search_id)
            raise AssertionError(
                f"search {search_id} still {status} after {timeout_s} s: {counts}\n"
                + service.logs()
            )
        time.sleep(tick_s)


def checkpoint_files(root: Path) -> list[Path]:
    """Every file under `root` with a final (non-temporary) checkpoint name."""
    from hpsearch.checkpoints import is_temporary_name

    return sorted(
        path for path in root.rglob("*") if path.is_file() and not is_temporary_name(path.name)
    )


def epochs_of(storage: Storage, trial: TrialRecord) -> list[int]:
    return [epoch.epoch for epoch in storage.trial_curves(trial.id)]
