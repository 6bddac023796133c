"""Initial schema: searches, stages, trials, epoch metrics, checkpoints, workers.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hpsearch.db.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _fk(child: str, column: str, table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=f"fk_{child}_{column}_{table}", ondelete=ondelete
    )


def upgrade() -> None:
    _create_searches_and_stages()
    _create_trials()
    _create_trial_children()
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_heartbeat", UTCDateTime(), nullable=False),
        sa.Column("current_trial_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )


def _create_searches_and_stages() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("budget_epochs", sa.Integer(), nullable=True),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("best_trial_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_searches"),
    )
    op.create_index("ix_searches_status", "searches", ["status"])
    op.create_table(
        "stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("space", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        _fk("stages", "search_id", "searches", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_stages"),
        sa.UniqueConstraint("search_id", "stage", name="uq_stages_search_id_stage"),
    )


def _create_trials() -> None:
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("train_seed", sa.BigInteger(), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("parent_trial_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("enqueued_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("best_val_accuracy", sa.Float(), nullable=True),
        sa.Column("last_epoch", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failure_kind", sa.String(16), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        _fk("trials", "search_id", "searches", "CASCADE"),
        _fk("trials", "parent_trial_id", "trials", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.UniqueConstraint("search_id", "stage", "index", name="uq_trials_search_id_stage_index"),
    )
    op.create_index("ix_trials_search_status", "trials", ["search_id", "status"])
    op.create_index("ix_trials_status_heartbeat", "trials", ["status", "heartbeat_at"])
    op.create_index(
        "ix_trials_search_best", "trials", ["search_id", sa.text("best_val_accuracy DESC")]
    )


def _create_trial_children() -> None:
    op.create_table(
        "epoch_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        *[
            sa.Column(name, sa.Float(), nullable=True)
            for name in (
                "train_loss",
                "val_loss",
                "train_accuracy",
                "val_accuracy",
                "ema_val_accuracy",
                "learning_rate",
            )
        ],
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("epoch_metrics", "trial_id", "trials", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_epoch_metrics"),
        sa.UniqueConstraint("trial_id", "epoch", name="uq_epoch_metrics_trial_id_epoch"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("val_accuracy", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("checkpoints", "trial_id", "trials", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
        sa.UniqueConstraint("trial_id", "epoch", name="uq_checkpoints_trial_id_epoch"),
    )


def downgrade() -> None:
    for table in ("workers", "checkpoints", "epoch_metrics", "trials", "stages", "searches"):
        op.drop_table(table)
