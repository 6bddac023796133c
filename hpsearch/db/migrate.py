"""Apply the Alembic migrations programmatically (`upgrade_to_head`).

Safe when several processes start at once: the whole upgrade runs in one
transaction that first takes a PostgreSQL transaction-level advisory lock,
or, on SQLite, the write lock (`BEGIN IMMEDIATE`). The second process then
finds the schema at head and does nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from hpsearch.db.engine import session_scope

__all__ = [
    "ALEMBIC_INI",
    "MIGRATION_LOCK_KEY",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade_to_head",
]

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
# An arbitrary constant naming hpsearch's migration lock among advisory locks.
MIGRATION_LOCK_KEY = 0x68707365617263


def alembic_config() -> Config:
    return Config(str(ALEMBIC_INI))


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema of `engine`'s database to the newest revision (idempotent)."""
    if current_revision(engine) == head_revision():
        return
    with session_scope(engine) as session:
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
