"""Which epoch counts as a trial's result: searches.result, trials.last_val_accuracy.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-15 12:00:00

Existing databases upgrade in place: every search counts its trials' best
epoch (`result = "best"`, what they did before), and each trial's
last_val_accuracy is filled from its epoch row at last_epoch (None when that
epoch had no finite validation accuracy, or the trial has no epochs).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "searches", sa.Column("result", sa.String(8), nullable=False, server_default="best")
    )
    op.add_column("trials", sa.Column("last_val_accuracy", sa.Float(), nullable=True))
    op.execute(
        "UPDATE trials SET last_val_accuracy = (SELECT epoch_metrics.val_accuracy "
        "FROM epoch_metrics WHERE epoch_metrics.trial_id = trials.id "
        "AND epoch_metrics.epoch = trials.last_epoch) WHERE last_epoch IS NOT NULL"
    )
    op.create_index(
        "ix_trials_search_last", "trials", ["search_id", sa.text("last_val_accuracy DESC")]
    )


def downgrade() -> None:
    op.drop_index("ix_trials_search_last", table_name="trials")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("last_val_accuracy")
    with op.batch_alter_table("searches") as batch:
        batch.drop_column("result")
