"""RADIUS: claims of the CoA or Disconnect a session is due, so that with
several ratel nodes only one of them sends it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26

Frozen like the others: column types spelled out as ratel.adapters.db.types
renders them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "radius_dae_claims",
        sa.Column("reaction", sa.String(), nullable=False),
        sa.Column("nas_address", sa.String(), nullable=False),
        sa.Column("acct_session_id", sa.String(), nullable=False),
        sa.Column("claimed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint(
            "reaction", "nas_address", "acct_session_id", name="pk_radius_dae_claims"
        ),
    )
    op.create_index(
        "ix_radius_dae_claims_claimed_at", "radius_dae_claims", ["claimed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_radius_dae_claims_claimed_at", table_name="radius_dae_claims")
    op.drop_table("radius_dae_claims")
