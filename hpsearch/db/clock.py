"""The database server's clock: the one clock heartbeats and staleness are judged by.

Workers, the master and the API may run on hosts whose clocks disagree; a
heartbeat written with a worker's own clock would make a worker whose clock
runs late look dead while it lives, and one whose clock runs early look
alive after it died. So every liveness timestamp (a trial's `started_at` and
`heartbeat_at` when claimed or beaten, a worker's `last_heartbeat`) is
written with `db_now()` in SQL, and every staleness cutoff is computed from
`database_now(connection)`, both read from the database server.

- PostgreSQL: `now()` (the transaction's start, in UTC as `timestamptz`).
- SQLite: `strftime('%Y-%m-%d %H:%M:%f000', 'now')`, the UTC text in the
  format SQLAlchemy stores naive datetimes in, microseconds padded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from hpsearch.db.models import UTCDateTime

__all__ = ["database_now", "db_now"]


class db_now(FunctionElement[datetime]):  # noqa: N801 - reads like the SQL function it is
    """The database server's current UTC time, as a SQL expression."""

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"


@compiles(db_now, "postgresql")
def _postgresql_now(element: db_now, compiler: Any, **kw: Any) -> str:
    return "now()"


@compiles(db_now, "sqlite")
def _sqlite_now(element: db_now, compiler: Any, **kw: Any) -> str:
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


def database_now(connection: Connection | Session) -> datetime:
    """The database server's current UTC time (timezone-aware), read in this transaction."""
    value = connection.execute(select(db_now())).scalar_one()
    assert isinstance(value, datetime)
    return value
