"""The `storage` fixture: every contract test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import make_storage

from hpsearch.db import Storage

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    postgres_url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    with make_storage(backend, tmp_path, postgres_url) as opened:
        yield opened
