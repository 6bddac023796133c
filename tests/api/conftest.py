"""Fixtures of the API tests: the app over an isolated PostgreSQL schema and a private RQ queue.

`client` is a TestClient whose lifespan runs the in-process master (tick 0.1 s).
`worker` runs `worker.trial.run_trial` in a thread for the jobs of the private
queue, with its own WorkerContext: real Redis, real PostgreSQL, real training.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import AUTH, TOKEN
from factories import postgres_schema_url
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue
from rq.exceptions import DequeueTimeout

from api.main import create_app
from hpsearch import executors
from hpsearch.checkpoints import FileSystemCheckpointStorage
from hpsearch.db import open_storage
from hpsearch.executors import RQExecutor
from hpsearch.settings import Settings
from worker.context import WorkerContext
from worker.ensembles import run_ensemble_builds
from worker.trial import run_trial


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    with postgres_schema_url(postgres_url) as url:
        yield url


@pytest.fixture
def api_settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    (tmp_path / "data").mkdir()
    return Settings(
        home=tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        data_root=tmp_path / "data",
        checkpoint_root=tmp_path / "checkpoints",
        api_tokens=[TOKEN],
        heartbeat_s=0.2,
        stale_after_s=30.0,
        master_tick_s=0.1,
        launch_rate_per_minute=1000.0,
    )


@pytest.fixture
def executor(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RQExecutor]:
    """An RQ executor on a private queue, with job ids private to this test."""
    prefix = f"apitest-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(executors, "job_id_for", lambda trial_id: f"{prefix}-trial-{trial_id}")
    monkeypatch.setattr(executors, "ensemble_job_id_for", lambda first: f"{prefix}-ens-{first}")
    rq_executor = RQExecutor(redis_url, queue_name=prefix)
    yield rq_executor
    rq_executor.queue.delete(delete_jobs=True)
    rq_executor.connection.close()


@pytest.fixture
def make_client(
    api_settings: Settings, executor: RQExecutor
) -> Iterator[Callable[..., TestClient]]:
    """Open clients (lifespan entered) over the same database; all closed at teardown."""
    opened: list[TestClient] = []

    def make(**changes: Any) -> TestClient:
        settings = api_settings.model_copy(update=changes)
        client = TestClient(create_app(settings, executor=executor), headers=AUTH)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


class ThreadWorker:
    """Pops the private queue's jobs: trials (`run_trial`) and ensemble builds."""

    def __init__(self, settings: Settings, executor: RQExecutor) -> None:
        storage = open_storage(settings.resolved_database_url)
        worker_id = f"apitest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        storage.register_worker(worker_id, socket.gethostname(), os.getpid())
        self.context = WorkerContext(
            settings=settings,
            storage=storage,
            checkpoints=FileSystemCheckpointStorage(settings.resolved_checkpoint_root),
            executor=executor,
            worker_id=worker_id,
        )
        self.queue = executor.queue
        self.connection: Redis = executor.connection
        self.results: list[str] = []  # run_trial outcomes, in order
        self.ensemble_results: list[str] = []  # run_ensemble_builds outcomes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-test-worker", daemon=True)

    def start(self) -> ThreadWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.context.storage.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                popped = Queue.dequeue_any([self.queue], timeout=1, connection=self.connection)
            except DequeueTimeout:
                continue
            if popped is None:
                continue
            job, _ = popped
            try:
                if job.func_name == "worker.ensembles.run_ensemble_builds":
                    self.ensemble_results.extend(run_ensemble_builds(job.args[0], self.context))
                else:
                    self.results.append(run_trial(int(job.args[0]), self.context))
            finally:
                job.delete()  # like RQ with result_ttl=0


@pytest.fixture
def worker(api_settings: Settings, executor: RQExecutor) -> Iterator[Callable[[], ThreadWorker]]:
    started: list[ThreadWorker] = []

    def start() -> ThreadWorker:
        started.append(ThreadWorker(api_settings, executor).start())
        return started[-1]

    yield start
    for thread_worker in started:
        thread_worker.stop()
