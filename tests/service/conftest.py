"""Fixtures of the service tests: SQLite services, storages (`rq_service`, a PostgreSQL
schema + Redis DB per test, is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_tools import Service

from hpsearch.db import Storage, open_storage


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
