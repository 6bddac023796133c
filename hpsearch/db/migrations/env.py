"""Alembic environment: migrates the connection hpsearch hands over, or the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from hpsearch.db.engine import create_db_engine
from hpsearch.db.models import Base
from hpsearch.settings import get_settings


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url
    engine = create_db_engine(url)
    try:
        with engine.connect() as new_connection:
            _migrate(new_connection)
            new_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("hpsearch migrations run online only (they need a database connection)")
run()
