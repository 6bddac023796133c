"""Shared fixtures: real PostgreSQL and Redis for the service tests.

Service tests skip with a clear reason when a service does not answer, except
when HPSEARCH_REQUIRE_SERVICES=1 (set by `.ci/run`), where a missing service
is a failure.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

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
