"""The leaderboard indexes in the leaderboards' own order.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-16 12:00:00

`best_trials` orders by best_val_accuracy (or last_val_accuracy) DESC NULLS
LAST, then id. The old indexes (search_id, <accuracy> DESC) put NULLs first
on PostgreSQL, so every leaderboard page and every running search's best
trial sorted all the search's trials; the new ones are read in order and stop
after the page. SQLite sorts NULLs lowest, so DESC is already NULLS LAST
there (and SQLite refuses NULLS LAST in an index).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_trials_search_best": "best_val_accuracy",
    "ix_trials_search_last": "last_val_accuracy",
}


def upgrade() -> None:
    nulls_last = " NULLS LAST" if op.get_bind().dialect.name == "postgresql" else ""
    for name, column in INDEXES.items():
        op.drop_index(name, table_name="trials")
        op.create_index(name, "trials", ["search_id", sa.text(f"{column} DESC{nulls_last}"), "id"])


def downgrade() -> None:
    for name, column in INDEXES.items():
        op.drop_index(name, table_name="trials")
        op.create_index(name, "trials", ["search_id", sa.text(f"{column} DESC")])
