"""Trial event history: one row per state change of a trial.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:00:00

Existing databases upgrade in place: the table starts empty (the history of
trials that ran before it is not known), and every later change is recorded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hpsearch.db.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trial_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trial_events"),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name="fk_trial_events_trial_id_trials",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_trial_events_trial_id", "trial_events", ["trial_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_trial_events_trial_id", table_name="trial_events")
    op.drop_table("trial_events")
