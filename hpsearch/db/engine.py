"""Engine creation and the one transaction helper, `session_scope()`.

SQLite (the laptop default) is opened in WAL mode with a 30 s busy timeout and
foreign keys on. The sqlite3 module's own transaction handling is switched off
so that SQLAlchemy emits the BEGIN itself: `BEGIN IMMEDIATE` for write
transactions (the write lock is taken up front, so a reader never has to
upgrade and several worker processes queue on the busy timeout instead of
failing with "database is locked"), a plain `BEGIN` for reads.
PostgreSQL runs at its default READ COMMITTED, and its read transactions in
autocommit: at READ COMMITTED each statement sees its own snapshot anyway, so
a BEGIN and a COMMIT would only add two round trips to every read (and the
API's reads are most of the database's traffic). A pooled connection is pinged
only when it sat idle in the pool for more than IDLE_PING_S (a busy worker
reuses its connection without a round trip; one that waited through a
database restart is replaced before use), and connections are recycled after
RECYCLE_S.

`session_scope()` gives an ORM session; `connection_scope()` the same
transaction and error handling on a Core connection, for the hot paths of
workers (no unit of work, no identity map).
"""

from __future__ import annotations

import sqlite3
import time
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
    "IDLE_PING_S",
    "POOL_OVERFLOW",
    "POOL_SIZE",
    "RECYCLE_S",
    "connection_scope",
    "create_db_engine",
    "hide_password",
    "safe_url",
    "session_scope",
]

BUSY_TIMEOUT_S = 30.0
IDLE_PING_S = 5.0
RECYCLE_S = 1800.0
POOL_SIZE, POOL_OVERFLOW = 5, 10
_WRITE_OPTION = "hpsearch_write"
_BINDS_ATTRIBUTE = "_hpsearch_binds"  # an engine's (read, write) option engines (`_bind`)


def safe_url(url: str | URL) -> str:
    """The URL as text with its password replaced by `***`."""
    return make_url(url).render_as_string(hide_password=True)


def create_db_engine(url: str, pool_size: int = POOL_SIZE) -> Engine:
    """An engine for `url` (sqlite:/// or postgresql+psycopg://), configured as above.

    The pool keeps `pool_size` connections open (a few more may open and
    close under a burst): a process that runs N database calls at once (the
    API's request threads) wants N, or it pays a new connection per request.
    A SQLite file's parent folder is created if missing.
    """
    parsed = make_url(url)
    pool = {"pool_size": pool_size, "max_overflow": POOL_OVERFLOW}
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, pool)
    engine = create_engine(parsed, pool_pre_ping=False, pool_recycle=RECYCLE_S, **pool)
    event.listen(engine, "checkin", _remember_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _remember_checkin(dbapi_connection: Any, connection_record: Any) -> None:
    connection_record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
    """Ping a connection that idled past IDLE_PING_S; a dead one is replaced by the pool."""
    idle_since = connection_record.info.get("checked_in_at")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_S:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        if not getattr(dbapi_connection, "autocommit", True):
            dbapi_connection.rollback()
    except Exception as error:  # the pool retries the checkout with a new connection
        raise exc.DisconnectionError(str(error)) from error


def _sqlite_engine(url: URL, pool: dict[str, int]) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    else:
        pool = {}  # an in-memory database lives in one connection (SingletonThreadPool)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S}, **pool)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL unless it is already; the switch skips the busy handler,
    so when several processes open a new file at once it is retried here."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_on_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get(_WRITE_OPTION, True)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _bind(engine: Engine, write: bool) -> Engine:
    """The engine with this transaction's options (autocommit for PostgreSQL reads).

    Made once per engine and kept on it (making one registers event
    listeners, which costs more than a short read).
    """
    binds: tuple[Engine, Engine] | None = vars(engine).get(_BINDS_ATTRIBUTE)
    if binds is None:
        read: dict[str, Any] = {_WRITE_OPTION: False}
        if engine.dialect.name == "postgresql":
            read["isolation_level"] = "AUTOCOMMIT"
        write_options = {_WRITE_OPTION: True}
        binds = (engine.execution_options(**read), engine.execution_options(**write_options))
        setattr(engine, _BINDS_ATTRIBUTE, binds)
    return binds[write]


@contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, translate errors.

    `IntegrityError` becomes `ConflictError`; any other database error becomes
    `StorageError` naming the URL with its password hidden. Errors of
    hpsearch's own tree (e.g. `NotFoundError`) pass through after the rollback.
    """
    bind = _bind(engine, write)
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


@contextmanager
def connection_scope(engine: Engine, *, write: bool = True) -> Iterator[Connection]:
    """`session_scope` on a Core connection: one transaction, errors translated alike."""
    try:
        with _bind(engine, write).begin() as connection:
            yield connection
    except HpsearchError:
        raise
    except exc.SQLAlchemyError as error:
        raise _translate(error, engine) from error


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
