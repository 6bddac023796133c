"""What every part of the storage API shares: the engine, transactions, row look-ups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Executable, Row, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session

from hpsearch.db.engine import connection_scope, session_scope
from hpsearch.db.models import Base, SearchRow, TrialRow
from hpsearch.errors import NotFoundError

__all__ = ["StoreBase"]

RowT = TypeVar("RowT", bound=DeclarativeBase)
_NOUNS = {"searches": "search", "trials": "trial", "workers": "worker", "stages": "stage",
          "ensembles": "ensemble"}  # fmt: skip


class StoreBase:
    """Holds the engine; each public method of a store is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _write(self) -> AbstractContextManager[Session]:
        return session_scope(self.engine, write=True)

    def _read(self) -> AbstractContextManager[Session]:
        return session_scope(self.engine, write=False)

    def _write_core(self) -> AbstractContextManager[Connection]:
        """A write transaction on a Core connection (the workers' hot paths)."""
        return connection_scope(self.engine, write=True)

    def _read_core(self) -> AbstractContextManager[Connection]:
        return connection_scope(self.engine, write=False)

    @staticmethod
    def _commit_without_waiting_for_disk(connection: Connection) -> None:
        """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL).

        Only for transactions whose loss in a server crash is harmless: any
        later synchronous commit makes them durable as well.
        """
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")

    def _dialect_insert(self, row_type: type[Base]) -> postgresql.Insert | sqlite.Insert:
        """A dialect INSERT (with `on_conflict_do_*`) for this engine's database."""
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(row_type)
        return sqlite.insert(row_type)

    @staticmethod
    def _get(session: Session, row_type: type[RowT], key: Any, *, lock: bool | str = False) -> RowT:
        """The row, optionally locked (True: FOR UPDATE, "share": FOR SHARE; PostgreSQL only).

        Raises NotFoundError when it does not exist.
        """
        for_update = {"read": True} if lock == "share" else (True if lock else None)
        row = session.get(row_type, key, with_for_update=for_update)
        if row is None:
            noun = _NOUNS.get(row_type.__tablename__, row_type.__tablename__)
            raise NotFoundError(f"{noun} {key!r} does not exist")
        return row

    @staticmethod
    def _rows_of(
        connection: Connection,
        query: Executable,
        parent: Table,
        parent_id: int,
        parameters: Mapping[str, Any] | None = None,
    ) -> list[Row[Any]]:
        """The rows of `query` (rows of one parent: a search's, a trial's).

        One statement when there are rows; only an empty answer pays a second
        look-up, raising NotFoundError when the parent does not exist.
        """
        rows = list(connection.execute(query, parameters).all())
        if not rows:
            exists = select(parent.c.id).where(parent.c.id == parent_id)
            if connection.execute(exists).first() is None:
                noun = _NOUNS.get(parent.name, parent.name)
                raise NotFoundError(f"{noun} {parent_id!r} does not exist")
        return rows

    def _search_row(self, session: Session, search_id: int, *, lock: bool = False) -> SearchRow:
        return self._get(session, SearchRow, search_id, lock=lock)

    def _trial_row(self, session: Session, trial_id: int, *, lock: bool = False) -> TrialRow:
        return self._get(session, TrialRow, trial_id, lock=lock)

    @staticmethod
    def _insert(session: Session, row_type: type[Base]) -> postgresql.Insert | sqlite.Insert:
        """A dialect INSERT that supports `on_conflict_do_nothing` / `_do_update`."""
        if session.get_bind().dialect.name == "postgresql":
            return postgresql.insert(row_type)
        return sqlite.insert(row_type)

    def _insert_ignoring_conflicts(
        self,
        session: Session,
        row_type: type[Base],
        rows: Sequence[Mapping[str, Any]],
        keys: Sequence[str],
    ) -> None:
        """INSERT ... ON CONFLICT (keys) DO NOTHING: existing rows win."""
        if rows:
            statement = self._insert(session, row_type).on_conflict_do_nothing(index_elements=keys)
            session.execute(statement, list(rows))
