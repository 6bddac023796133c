"""Fixtures of the API tests: the app over an isolated PostgreSQL schema and a Redis DB of its
own (`rq_service`), served by real worker processes.

`client` is a TestClient whose lifespan runs the in-process master (tick 0.1 s).
`worker` starts a real `hpsearch worker` process (RQ) on the test's database, Redis,
checkpoint and data folders: real Redis, real PostgreSQL, real training. A test that
wants the master as deployed apart from the API (`HPSEARCH_API_MASTER=false`) opens
`make_client(api_master=False)` and starts `hpsearch master` with `master`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import AUTH, TOKEN
from fastapi.testclient import TestClient
from service_tools import CLI_MASTER, CLI_WORKER, Service, WorkerProcess

from api.main import create_app
from hpsearch.executors import RQExecutor
from hpsearch.settings import Settings


@pytest.fixture
def service(rq_service: Service) -> Service:
    """The test's services; its processes beat every 0.2 s and are reaped after 30 s of
    silence (a loaded machine may stall a process for seconds)."""
    rq_service.heartbeat_s, rq_service.stale_after_s = 0.2, 30.0
    return rq_service


@pytest.fixture
def database_url(service: Service) -> str:
    return service.database_url


@pytest.fixture
def api_settings(service: Service, tmp_path: Path) -> Settings:
    (tmp_path / "data").mkdir()
    return Settings(
        home=service.home,
        database_url=service.database_url,
        redis_url=service.redis_url,
        data_root=tmp_path / "data",
        checkpoint_root=service.checkpoint_root,
        api_tokens=[TOKEN],
        heartbeat_s=service.heartbeat_s,
        stale_after_s=service.stale_after_s,
        master_tick_s=0.1,
        launch_rate_per_minute=1000.0,
    )


@pytest.fixture
def executor(service: Service) -> Iterator[RQExecutor]:
    """The queue of the test's Redis DB, as the API and the workers use it."""
    assert service.redis_url is not None
    rq_executor = RQExecutor(service.redis_url)
    yield rq_executor
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


@pytest.fixture
def worker(service: Service, api_settings: Settings) -> Callable[[], WorkerProcess]:
    """Start an `hpsearch worker` process (stopped with the test's other processes)."""

    def start() -> WorkerProcess:
        return service.start_worker(CLI_WORKER, HPSEARCH_DATA_ROOT=str(api_settings.data_root))

    return start


@pytest.fixture
def master(service: Service, api_settings: Settings) -> Callable[[], WorkerProcess]:
    """Start an `hpsearch master` process (for an API opened with api_master=False)."""

    def start() -> WorkerProcess:
        return service.start_worker(CLI_MASTER, HPSEARCH_DATA_ROOT=str(api_settings.data_root))

    return start
