"""RADIUS: how a session was restricted (hotline or throttle), so that a
restore can lift a portal redirect that a CoA cannot take back.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26

Frozen like the others: column types spelled out as ratel.adapters.db.types
renders them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("radius_sessions", sa.Column("restriction", sa.String(16), nullable=True))
    # sessions restricted before: their kind was not kept; a hotline is the
    # kind whose restore must do the most
    op.execute("UPDATE radius_sessions SET restriction = 'hotline' WHERE restricted")


def downgrade() -> None:
    with op.batch_alter_table("radius_sessions") as batch:
        batch.drop_column("restriction")
