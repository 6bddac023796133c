"""Engine creation and the one transaction helper, `session_scope()`.

SQLite (the laptop default) is opened in WAL mode with a 30 s busy timeout and
foreign keys on. The sqlite3 module's own transaction handling is switched off
so that SQLAlchemy emits the BEGIN itself: `BEGIN IMMEDIATE` for write
transactions (the write lock is taken up front, so a reader never has to
upgrade and several worker processes queue on the busy timeout instead of
failing with "database is locked"), a plain `BEGIN` for reads.
PostgreSQL runs at its default READ COMMITTED with pre-ping on the pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session

from hpsearch.errors import ConflictError, HpsearchError, StorageError

__all__ = [
    "BUSY_TIMEOUT_S",
    "create_db_engine",
    "hide_password",
    "safe_url",
    "session_scope",
]

BUSY_TIMEOUT_S = 30.0
_WRITE_OPTION = "hpsearch_write"


def safe_url(url: str | URL) -> str:
    """The URL as text with its password replaced by `***`."""
    return make_url(url).render_as_string(hide_password=True)


def create_db_engine(url: str) -> Engine:
    """An engine for `url` (sqlite:/// or postgresql+psycopg://), configured as above.

    A SQLite file's parent folder is created if missing.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get(_WRITE_OPTION, True)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, translate errors.

    `IntegrityError` becomes `ConflictError`; any other database error becomes
    `StorageError` naming the URL with its password hidden. Errors of
    hpsearch's own tree (e.g. `NotFoundError`) pass through after the rollback.
    """
    bind = engine.execution_options(**{_WRITE_OPTION: write})
    session = Session(bind=bind, expire_on_commit=False, autoflush=False)
    try:
        yield session
        session.commit()
    except HpsearchError:
        _rollback_quietly(session)
        raise
    except exc.SQLAlchemyError as error:
        _rollback_quietly(session)
        raise _translate(error, engine) from error
    except BaseException:
        _rollback_quietly(session)
        raise
    finally:
        session.close()


def _translate(error: exc.SQLAlchemyError, engine: Engine) -> Exception:
    """The hpsearch error for a SQLAlchemy error (a bad bound value stays a ValueError)."""
    original = getattr(error, "orig", None)
    if not isinstance(error, exc.DBAPIError) and isinstance(original, ValueError | TypeError):
        return original
    if isinstance(error, exc.IntegrityError):
        return ConflictError(f"constraint violated: {_describe(error, engine)}")
    return StorageError(f"database {safe_url(engine.url)} failed: {_describe(error, engine)}")


def _rollback_quietly(session: Session) -> None:
    with suppress(exc.SQLAlchemyError):
        session.rollback()


def _describe(error: exc.SQLAlchemyError, engine: Engine) -> str:
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip().splitlines()
    message = text[0] if text else type(error).__name__
    return hide_password(message, engine.url)


def hide_password(message: str, url: str | URL) -> str:
    """`message` with every occurrence of `url`'s password replaced by `***`."""
    password = make_url(url).password
    return message.replace(str(password), "***") if password else message
