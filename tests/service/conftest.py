"""Fixtures of the service tests: a PostgreSQL schema + Redis DB per test, or SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import postgres_schema_url
from service_tools import Service, redis_database

from hpsearch.db import Storage, open_storage


@pytest.fixture
def rq_service(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Service]:
    """PostgreSQL (a fresh schema) + Redis (a DB of its own) + RQ workers it may start."""
    with postgres_schema_url(postgres_url) as database_url, redis_database(redis_url) as redis:
        service = Service(home=tmp_path, database_url=database_url, redis_url=redis)
        try:
            yield service
        finally:
            service.stop_workers()


@pytest.fixture
def local_service(tmp_path: Path) -> Iterator[Service]:
    """The embedded default: a SQLite file and database-polling workers."""
    service = Service(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'hpsearch.db'}")
    try:
        yield service
    finally:
        service.stop_workers()


@pytest.fixture
def rq_storage(rq_service: Service) -> Iterator[Storage]:
    storage = open_storage(rq_service.database_url)
    try:
        yield storage
    finally:
        storage.close()
