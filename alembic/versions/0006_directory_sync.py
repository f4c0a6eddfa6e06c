"""Directory sync runs: when the staff directory was mirrored, and what changed.

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-25

Frozen like the others: the column types are spelled out, rendering exactly
as ratel.adapters.db.types does (TIMESTAMP WITH TIME ZONE / DATETIME).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "directory_sync_runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("blocked", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("tokens_revoked", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_directory_sync_runs"),
    )
    op.create_index("ix_directory_sync_runs_started_at", "directory_sync_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("directory_sync_runs")
