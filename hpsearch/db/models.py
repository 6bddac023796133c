"""The tables of hpsearch, as SQLAlchemy 2.0 typed models.

Only table definitions live here; the functions the API, the master and the
workers call are in `hpsearch.db.storage` and return frozen records, never
these ORM objects. Every timestamp is a timezone-aware UTC `datetime`
(stored as naive UTC on SQLite, `timestamptz` on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "CheckpointRow",
    "EnsembleRow",
    "EpochMetricRow",
    "SearchRow",
    "StageRow",
    "TrialEventRow",
    "TrialRow",
    "UTCDateTime",
    "WorkerRow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect; naive input is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value!r} must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class SearchRow(Base):
    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), index=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    budget_epochs: Mapped[int | None] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    best_trial_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    # Which epoch of a trial is its result: "best" (validation) or "last" (the spec's `result`).
    result: Mapped[str] = mapped_column(String(8), server_default="best")


class StageRow(Base):
    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("search_id", "stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    stage: Mapped[int] = mapped_column(Integer)
    space: Mapped[dict[str, Any]]
    warnings: Mapped[list[Any]]
    started_at: Mapped[datetime]


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("search_id", "stage", "index"),
        Index("ix_trials_search_status", "search_id", "status"),
        Index("ix_trials_status_heartbeat", "status", "heartbeat_at"),
        Index("ix_trials_search_started", "search_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    stage: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]]
    config: Mapped[dict[str, Any]]
    train_seed: Mapped[int] = mapped_column(BigInteger)
    epochs: Mapped[int] = mapped_column(Integer)
    parent_trial_id: Mapped[int | None] = mapped_column(
        ForeignKey("trials.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    best_val_accuracy: Mapped[float | None] = mapped_column(Float)
    last_val_accuracy: Mapped[float | None] = mapped_column(Float)  # of epoch last_epoch
    last_epoch: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    failure_kind: Mapped[str | None] = mapped_column(String(16))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)


# The leaderboards' orders, NULLS LAST then id (migration 0006; on SQLite without NULLS
# LAST, which is its DESC already).
Index(
    "ix_trials_search_best",
    TrialRow.search_id,
    TrialRow.best_val_accuracy.desc().nulls_last(),
    TrialRow.id,
)
Index(
    "ix_trials_search_last",
    TrialRow.search_id,
    TrialRow.last_val_accuracy.desc().nulls_last(),
    TrialRow.id,
)


class EpochMetricRow(Base):
    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("trial_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    train_accuracy: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    ema_val_accuracy: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    stats: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class CheckpointRow(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("trial_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]


class WorkerRow(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    last_heartbeat: Mapped[datetime]
    current_trial_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))


class EnsembleRow(Base):
    """One ensemble of a search: requested (queued), built by a worker, or failed.

    members: [{"trial_id", "stage", "epoch", "path", "weight", "val_accuracy"}];
    figures: see `hpsearch.ensembles.build`; path: the ensemble file, relative
    to the checkpoint root (None until built).
    """

    __tablename__ = "ensembles"
    __table_args__ = (Index("ix_ensembles_search_status", "search_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    members: Mapped[list[Any]]
    figures: Mapped[dict[str, Any]]
    path: Mapped[str | None] = mapped_column(Text)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class TrialEventRow(Base):
    """One state change of a trial: what happened, when, under which worker and attempt, why."""

    __tablename__ = "trial_events"
    __table_args__ = (Index("ix_trial_events_trial_id", "trial_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    worker_id: Mapped[str | None] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
