"""Fixtures of the cluster tests: private PostgreSQL and Redis servers, a native cluster.

The servers are this test session's own (see private_services): the chaos
tests restart, flush and kill them, which must never reach the shared ones.
Each test gets a fresh database on the private PostgreSQL and an empty
private Redis.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from compose_file import load_compose
from native_cluster import TEST_VARIABLES, NativeCluster
from private_services import PrivatePostgres, PrivateRedis

_DATABASES = itertools.count()


def _require_server_tools() -> None:
    missing = [tool for tool in ("pg_createcluster", "pg_ctlcluster", "redis-server")
               if shutil.which(tool) is None]  # fmt: skip
    if missing:
        pytest.fail(f"the cluster tests need {', '.join(missing)} (PostgreSQL 15, Redis)")


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    _require_server_tools()
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.drop()


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    _require_server_tools()
    flags = [str(flag) for flag in load_compose()["services"]["redis"]["command"][1:]]
    server = PrivateRedis(tmp_path_factory.mktemp("redis"), flags)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, tmp_path: Path
) -> Iterator[NativeCluster]:
    """A fresh database and an empty Redis; the test starts the processes it needs."""
    if not private_redis.answers():
        private_redis.start()
    private_redis.flush()
    database = f"hpsearch_{next(_DATABASES)}"
    private_postgres.create_database(database, "hpsearch", TEST_VARIABLES["POSTGRES_PASSWORD"])
    native = NativeCluster(private_postgres, private_redis, tmp_path, database)
    try:
        yield native
    finally:
        native.stop()
