"""Diameter: the peer and the xDR of each Diameter credit-control session.

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-25

Frozen like 0001: the column types are spelled out here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "diameter_sessions",
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("origin_host", sa.String(), nullable=False),
        sa.Column("origin_realm", sa.String(), nullable=False),
        sa.Column("xdr_id", sa.String(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_diameter_sessions"),
    )


def downgrade() -> None:
    op.drop_table("diameter_sessions")
