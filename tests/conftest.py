"""Shared fixtures: real PostgreSQL and Redis for the service tests, and `rq_service` (a
fresh PostgreSQL schema + a Redis DB of its own, with the worker and master processes a
test starts there: tests/service, tests/api).

Service tests skip with a clear reason when a service does not answer, except
when HPSEARCH_REQUIRE_SERVICES=1 (set by `.ci/run`), where a missing service
is a failure.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from factories import postgres_schema_url
from service_tools import Service, redis_database

from hpsearch.settings import get_settings

POSTGRES_URL = os.environ.get(
    "HPSEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HPSEARCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        address = (parsed.hostname or "127.0.0.1", parsed.port or default_port)
        with socket.create_connection(address, 1.0):
            return True
    except OSError:
        return False


def _require(url: str, default_port: int, name: str) -> str:
    if _answers(url, default_port):
        return url
    message = f"{name} does not answer at {url}"
    if os.environ.get("HPSEARCH_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and HPSEARCH_REQUIRE_SERVICES=1")
    pytest.skip(f"{message} (start it, or set HPSEARCH_TEST_POSTGRES_URL / _REDIS_URL)")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _require(POSTGRES_URL, 5432, "PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _require(REDIS_URL, 6379, "Redis")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """For CLI tests (`pytestmark = pytest.mark.usefixtures("home")`): HPSEARCH_HOME and
    HPSEARCH_DATA_ROOT under `tmp_path`, the embedded defaults otherwise; what
    `hpsearch run` sets in os.environ (the log level) is undone after."""
    monkeypatch.setenv("HPSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HPSEARCH_DATA_ROOT", str(tmp_path / "data"))
    for name in ("HPSEARCH_REDIS_URL", "HPSEARCH_DATABASE_URL", "HPSEARCH_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "data").mkdir()
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def rq_service(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Service]:
    """PostgreSQL (a fresh schema) + Redis (a DB of its own) + RQ workers it may start."""
    with postgres_schema_url(postgres_url) as database_url, redis_database(redis_url) as redis:
        service = Service(home=tmp_path, database_url=database_url, redis_url=redis)
        try:
            yield service
        finally:
            service.stop_workers()
