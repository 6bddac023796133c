"""Core statements of the workers' hot paths, built once with bound parameters.

Building an ORM-entity statement per call costs more than running it on a
local PostgreSQL; these are plain Core statements on the tables, executed
with a parameter dict (and cached compiled by SQLAlchemy).

- `CLAIM`: trial, owner (a worker id) -> the claimed trial's TRIAL_COLUMNS.
- `PROGRESS` / `PROGRESS_AND_END`: trial, owner, epoch, accuracy
  (+ new_status, new_error, new_failure_kind) -> attempts, max_attempts,
  cancel_requested, status of the trial, if it runs under `owner`.
  (An UPDATE's parameters may not be named like its columns.) Heartbeats and
  start/end times are the database server's clock (`hpsearch.db.clock`).
- `insert_epoch(dialect)`, `upsert_checkpoint(dialect)`: one row from the
  parameters (the columns' names) -> its id.

And the API's hot reads, of one trial (parameter `trial`): `TRIAL` (its
TRIAL_COLUMNS), `TRIAL_AND_RESULT` (the same and its search's `result`),
`CURVES` (its epochs, EpochRecord's columns, in epoch order), `CHECKPOINTS`
(CheckpointRecord's, in epoch order), `EVENTS` (TrialEventRecord's, oldest
first).
"""

from __future__ import annotations

from dataclasses import fields
from functools import cache
from typing import Any, cast

from sqlalchemy import Float, Integer, Table, and_, bindparam, case, exists, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite

from hpsearch.db.clock import db_now
from hpsearch.db.models import CheckpointRow, EpochMetricRow, SearchRow, TrialEventRow, TrialRow
from hpsearch.db.records import CheckpointRecord, EpochRecord, TrialEventRecord, TrialRecord

__all__ = [
    "CHECKPOINTS",
    "CLAIM",
    "CURVES",
    "EVENTS",
    "PROGRESS",
    "PROGRESS_AND_END",
    "TRIAL",
    "TRIALS",
    "TRIAL_AND_RESULT",
    "TRIAL_COLUMNS",
    "insert_epoch",
    "upsert_checkpoint",
]

TRIALS = cast(Table, TrialRow.__table__)
_SEARCHES = cast(Table, SearchRow.__table__)
# The columns of a TrialRecord, for UPDATE ... RETURNING into one.
TRIAL_COLUMNS = tuple(TRIALS.c[f.name] for f in fields(TrialRecord))
_EPOCHS = cast(Table, EpochMetricRow.__table__)
_CHECKPOINTS = cast(Table, CheckpointRow.__table__)
_EVENTS = cast(Table, TrialEventRow.__table__)


def _of_trial(table: Table, record: Any, order: Any) -> Any:
    columns = (table.c[f.name] for f in fields(record))
    return select(*columns).where(table.c.trial_id == bindparam("trial")).order_by(order)


TRIAL = select(*TRIAL_COLUMNS).where(TRIALS.c.id == bindparam("trial"))
TRIAL_AND_RESULT = (
    select(*TRIAL_COLUMNS, _SEARCHES.c.result)
    .join(_SEARCHES, _SEARCHES.c.id == TRIALS.c.search_id)
    .where(TRIALS.c.id == bindparam("trial"))
)
CURVES = _of_trial(_EPOCHS, EpochRecord, _EPOCHS.c.epoch)
CHECKPOINTS = _of_trial(_CHECKPOINTS, CheckpointRecord, _CHECKPOINTS.c.epoch)
EVENTS = _of_trial(_EVENTS, TrialEventRecord, _EVENTS.c.id)

CLAIM = (
    update(TRIALS)
    .where(
        TRIALS.c.id == bindparam("trial"),
        TRIALS.c.status == "queued",
        TRIALS.c.attempts < TRIALS.c.max_attempts,
        exists().where(_SEARCHES.c.id == TRIALS.c.search_id, _SEARCHES.c.status == "running"),
    )
    .values(
        status="running",
        worker_id=bindparam("owner"),
        started_at=db_now(),
        heartbeat_at=db_now(),
        finished_at=None,
        attempts=TRIALS.c.attempts + 1,
    )
    .returning(*TRIAL_COLUMNS)
)


def _progress(end: bool) -> Any:
    """Raise last_epoch / best_val_accuracy, set last_val_accuracy (the accuracy of
    epoch last_epoch), beat, and (with `end`) end the attempt. Every SET expression
    reads the row as it was before the UPDATE (PostgreSQL and SQLite alike)."""
    epoch = bindparam("epoch", type_=Integer)
    # Typed in SQL: PostgreSQL cannot infer the type of a NULL in "IS NOT NULL".
    accuracy = sql_cast(bindparam("accuracy", type_=Float), Float)
    best = TRIALS.c.best_val_accuracy
    higher = and_(accuracy.is_not(None), or_(best.is_(None), best < accuracy))
    latest = or_(TRIALS.c.last_epoch.is_(None), TRIALS.c.last_epoch <= epoch)
    values: dict[str, Any] = {
        "last_epoch": case(
            (or_(TRIALS.c.last_epoch.is_(None), TRIALS.c.last_epoch < epoch), epoch),
            else_=TRIALS.c.last_epoch,
        ),
        "best_val_accuracy": case((higher, accuracy), else_=best),
        "last_val_accuracy": case((latest, accuracy), else_=TRIALS.c.last_val_accuracy),
        "heartbeat_at": db_now(),
    }
    if end:
        values |= {
            "status": bindparam("new_status"),
            "finished_at": db_now(),
            "error": bindparam("new_error"),
            "failure_kind": bindparam("new_failure_kind"),
        }
    return (
        update(TRIALS)
        .where(
            TRIALS.c.id == bindparam("trial"),
            TRIALS.c.status == "running",
            TRIALS.c.worker_id == bindparam("owner"),
        )
        .values(**values)
        .returning(
            TRIALS.c.attempts, TRIALS.c.max_attempts, TRIALS.c.cancel_requested, TRIALS.c.status
        )
    )


PROGRESS = _progress(end=False)
PROGRESS_AND_END = _progress(end=True)


def _insert(table: Any, dialect: str) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


@cache
def insert_epoch(dialect: str) -> Any:
    """INSERT an epoch row ... ON CONFLICT (trial_id, epoch) DO NOTHING RETURNING id."""
    table = EpochMetricRow.__table__
    statement = _insert(table, dialect).on_conflict_do_nothing(index_elements=["trial_id", "epoch"])
    return statement.returning(table.c.id)


@cache
def upsert_checkpoint(dialect: str) -> Any:
    """INSERT a checkpoint row, replacing the (trial_id, epoch) one; RETURNING id."""
    table = CheckpointRow.__table__
    statement = _insert(table, dialect)
    replaced = {name: statement.excluded[name] for name in ("path", "val_accuracy", "created_at")}
    statement = statement.on_conflict_do_update(index_elements=["trial_id", "epoch"], set_=replaced)
    return statement.returning(table.c.id)
