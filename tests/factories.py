"""Factories shared by the tests: storages over SQLite or an isolated PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hpsearch.db import NewTrial, Storage, open_storage

__all__ = ["database_url", "make_storage", "new_trials", "postgres_schema_url"]


@contextmanager
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema `hp_<uuid>`, dropped (CASCADE) afterwards.

    Other test runs share the same PostgreSQL database; the schema keeps them apart.
    """
    schema = f"hp_{uuid.uuid4().hex}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def database_url(kind: str, tmp_path: Path, postgres_url: str | None = None) -> Iterator[str]:
    """An empty database: `kind` is "sqlite" (a file in tmp_path) or "postgresql"."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / f'hpsearch-{uuid.uuid4().hex[:8]}.db'}"
    elif kind == "postgresql":
        if postgres_url is None:
            raise ValueError("postgres_url is required for kind='postgresql'")
        with postgres_schema_url(postgres_url) as url:
            yield url
    else:
        raise ValueError(f"kind must be 'sqlite' or 'postgresql'; got {kind!r}")


@contextmanager
def make_storage(kind: str, tmp_path: Path, postgres_url: str | None = None) -> Iterator[Storage]:
    """A migrated, empty `Storage` of `kind`, closed (and its schema dropped) afterwards."""
    with database_url(kind, tmp_path, postgres_url) as url:
        storage = open_storage(url)
        try:
            yield storage
        finally:
            storage.close()


def new_trials(count: int, stage: int = 0, start: int = 0, **fields: Any) -> list[NewTrial]:
    """`count` distinct trials of one stage: indices start..start+count-1."""
    defaults: dict[str, Any] = {"config": {"epochs": 3}, "epochs": 3}
    defaults.update(fields)
    return [
        NewTrial(
            stage=stage,
            index=index,
            params={"learning_rate": 10.0 ** -(1 + index % 4), "index": index},
            train_seed=1000 * stage + index,
            **defaults,
        )
        for index in range(start, start + count)
    ]
