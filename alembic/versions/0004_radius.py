"""RADIUS: the NAS registry, broadband accounting sessions and CHAP secrets.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-25

Frozen like 0001: column types spelled out as ratel.adapters.db.types renders them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "radius_nas",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("secret", sa.String(), nullable=False),
        sa.Column("vendor", sa.String(32), nullable=False),
        sa.Column("accepts_coa", sa.Boolean(), nullable=False),
        sa.Column("accepts_disconnect", sa.Boolean(), nullable=False),
        sa.Column("dae_port", sa.Integer(), nullable=False),
        sa.Column("require_message_authenticator", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_radius_nas"),
        sa.UniqueConstraint("address", name="uq_radius_nas_address"),
    )
    op.create_table(
        "radius_sessions",
        sa.Column("nas_address", sa.String(), nullable=False),
        sa.Column("acct_session_id", sa.String(), nullable=False),
        sa.Column("charging_session_id", sa.String(), nullable=False),
        sa.Column("sub_session", sa.String(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("user_name", sa.String(), nullable=False),
        sa.Column("framed_ip", sa.String(), nullable=True),
        sa.Column("input_octets", sa.BigInteger(), nullable=False),
        sa.Column("output_octets", sa.BigInteger(), nullable=False),
        sa.Column("session_time", sa.BigInteger(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("last_dae", sa.String(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("nas_address", "acct_session_id", name="pk_radius_sessions"),
    )
    op.create_index(
        "ix_radius_sessions_charging_session_id", "radius_sessions", ["charging_session_id"]
    )
    op.create_index("ix_radius_sessions_account_id", "radius_sessions", ["account_id", "state"])
    op.create_index("ix_radius_sessions_customer_id", "radius_sessions", ["customer_id", "state"])
    op.create_index("ix_radius_sessions_nas_address", "radius_sessions", ["nas_address", "state"])
    op.create_table(
        "radius_chap_secrets",
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("secret", sa.String(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_radius_chap_secrets"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_radius_chap_secrets_account_id_accounts",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    for table in ("radius_chap_secrets", "radius_sessions", "radius_nas"):
        op.drop_table(table)
