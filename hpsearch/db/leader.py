"""`LeaderLock`: at most one holder per database, across processes and machines.

The in-process master of the API (`api.background.MasterLoop`) ticks only
while it holds this lock, so `hpsearch serve --workers N` runs the master
exactly once however many API processes there are.

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on
  a connection of its own. If that connection drops, the lock is released by
  the server and another process takes it at its next try.
- SQLite: an exclusive `flock` on `<database file>.leader` (one machine).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import suppress
from typing import Any

from sqlalchemy import Engine, text

__all__ = ["LEADER_LOCK_KEY", "LeaderLock"]

# An arbitrary constant naming the master's leader lock among advisory locks.
LEADER_LOCK_KEY = 0x68707365617264


class LeaderLock:
    """`try_acquire()` until it returns True; then `held` until `release()` or a lost connection."""

    def __init__(self, engine: Engine, key: int = LEADER_LOCK_KEY) -> None:
        self.engine, self.key = engine, key
        self._connection: Any = None
        self._file: int | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True while this process holds it."""
        if self.engine.dialect.name == "postgresql":
            return self._try_postgresql()
        return self._try_file()

    def _try_postgresql(self) -> bool:
        if self._connection is not None:
            try:  # still ours while the session lives
                self._connection.exec_driver_sql("SELECT 1")
                return True
            except Exception:
                self._drop_connection()
        connection = self.engine.connect()
        try:
            statement = text("SELECT pg_try_advisory_lock(:key)")
            won = bool(connection.execute(statement, {"key": self.key}).scalar())
            connection.commit()
        except Exception:
            connection.close()
            raise
        if not won:
            connection.close()
            return False
        self._connection = connection
        return True

    def _try_file(self) -> bool:
        if self._file is not None:
            return True
        database = self.engine.url.database
        path = f"{database}.leader" if database and database != ":memory:" else None
        if path is None:
            return True  # an in-memory database belongs to this process alone
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(handle)
            return False
        self._file = handle
        return True

    def _drop_connection(self) -> None:
        with suppress(Exception):
            self._connection.close()
        self._connection = None

    def release(self) -> None:
        if self._connection is not None:
            with suppress(Exception):
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            self._drop_connection()
        if self._file is not None:
            with suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
                os.close(self._file)
            self._file = None
