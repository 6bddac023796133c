"""Engine settings, error translation in session_scope, and migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from hpsearch.db import Storage, create_db_engine, open_storage, safe_url, session_scope
from hpsearch.db.migrate import current_revision, head_revision, upgrade_to_head
from hpsearch.db.models import Base, StageRow
from hpsearch.errors import ConflictError, NotFoundError, StorageError
from hpsearch.settings import get_settings


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'nested' / 'x.db'}")
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1}


def test_default_database_is_a_sqlite_file_under_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HPSEARCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("HPSEARCH_HOME", str(tmp_path / "hpsearch-data"))
    get_settings.cache_clear()
    try:
        storage = open_storage()
        storage.close()
    finally:
        get_settings.cache_clear()
    assert (tmp_path / "hpsearch-data" / "hpsearch.db").is_file()


def test_open_storage_is_idempotent_and_reaches_head(storage: Storage) -> None:
    search = storage.create_search("kept", {}, seed=0)
    upgrade_to_head(storage.engine)
    again = open_storage(storage.engine.url.render_as_string(hide_password=False))
    try:
        assert current_revision(again.engine) == head_revision() is not None
        assert again.get_search(search.id) == search
    finally:
        again.close()


def test_migrations_create_exactly_the_models(storage: Storage) -> None:
    with storage.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_integrity_error_becomes_conflict_error(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    stage = {"search_id": search.id, "stage": 0, "space": {}, "warnings": []}
    storage.record_stage(**stage)
    duplicate = StageRow(**stage, started_at=datetime.now(UTC))
    with pytest.raises(ConflictError, match="constraint"), session_scope(storage.engine) as session:
        session.add(duplicate)
    with pytest.raises(ConflictError), session_scope(storage.engine) as session:
        session.add(StageRow(**(stage | {"search_id": 999}), started_at=datetime.now(UTC)))


def test_errors_roll_the_transaction_back(storage: Storage) -> None:
    search = storage.create_search("s", {}, seed=0)
    with pytest.raises(NotFoundError), session_scope(storage.engine) as session:
        session.add(
            StageRow(
                search_id=search.id,
                stage=3,
                space={},
                warnings=[],
                started_at=datetime.now(UTC),
            )
        )
        session.flush()
        raise NotFoundError("stop here")
    with session_scope(storage.engine, write=False) as session:
        assert session.scalars(select(StageRow)).all() == []


def test_naive_timestamps_are_refused(storage: Storage) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        storage.register_worker("w", "host", 1, now=datetime(2030, 1, 1))


def test_unreachable_database_raises_storage_error_without_the_password() -> None:
    url = "postgresql+psycopg://hp:s3cret-pw@127.0.0.1:9/nowhere?connect_timeout=2"
    with pytest.raises(StorageError) as raised:
        open_storage(url)
    assert "s3cret-pw" not in str(raised.value)
    assert "hp:***@127.0.0.1:9/nowhere" in str(raised.value)
    assert safe_url(url).startswith("postgresql+psycopg://hp:***@")


def test_sql_error_raises_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError, match="failed"), session_scope(storage.engine) as session:
        session.execute(text("SELECT * FROM no_such_table"))
