"""CRM links: a customer's Zendesk organization (and other CRM records).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Frozen like 0001: the column types are spelled out here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "crm_links",
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("linked_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name="fk_crm_links_customer_id_customers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "system", name="pk_crm_links"),
        sa.UniqueConstraint("system", "external_id", name="uq_crm_links_system"),
    )


def downgrade() -> None:
    op.drop_table("crm_links")
