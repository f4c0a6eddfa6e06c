"""The initial schema: customers, accounts, catalogue, quotas, charging,
records and the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Frozen: the column types are spelled out here rather than imported from
ratel.adapters.db.types, so that later changes to the application's types
never change what this migration builds. They render exactly as those types
do: amounts are NUMERIC(24, 8) on PostgreSQL and VARCHAR(40) decimal text
on SQLite (NUMERIC affinity would turn them into floats), timestamps are
TIMESTAMP WITH TIME ZONE / DATETIME, documents JSONB / JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(24, 8).with_variant(sa.String(40), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id(name: str = "id") -> sa.Column:
    return sa.Column(name, sa.String(), nullable=False)


def _currency(name: str = "currency", nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.CHAR(3), nullable=nullable)


def upgrade() -> None:
    # -- customers and accounts ------------------------------------------------
    op.create_table(
        "customers",
        _id(),
        sa.Column("name", sa.String(), nullable=False),
        _currency(),
        sa.Column("balance", AMOUNT, nullable=False),
        sa.Column("credit_limit", AMOUNT, nullable=False),
        sa.Column("reserved", AMOUNT, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("billing_unit", sa.String(16), nullable=False),
        sa.Column("billing_anchor_day", sa.SmallInteger(), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("address_lines", DOCUMENT, nullable=False),
        sa.Column("country", sa.CHAR(2), nullable=True),
        sa.Column("customer_class", sa.String(), nullable=False),
        sa.Column("custom_fields", DOCUMENT, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
    )
    op.create_index("ix_customers_status", "customers", ["status"])
    op.create_index("ix_customers_country", "customers", ["country"])

    op.create_table(
        "accounts",
        _id(),
        _id("customer_id"),
        sa.Column("product_code", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("msisdn", sa.String(), nullable=True),
        sa.Column("imsi", sa.String(), nullable=True),
        sa.Column("iccid", sa.String(), nullable=True),
        sa.Column("imei", sa.String(), nullable=True),
        sa.Column("cpe_serial", sa.String(), nullable=True),
        sa.Column("cpe_port", sa.Integer(), nullable=True),
        sa.Column("cpe_port_type", sa.String(2), nullable=True),
        sa.Column("static_ip", sa.String(), nullable=True),
        sa.Column("static_ip_address", sa.String(), nullable=True),
        sa.Column("aliases", DOCUMENT, nullable=False),
        sa.Column("add_ons", DOCUMENT, nullable=False),
        sa.Column("custom_fields", DOCUMENT, nullable=False),
        sa.Column("location", sa.String(), nullable=True),
        sa.Column("location_changed_at", TIMESTAMP, nullable=True),
        sa.Column("location_block_lifted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_accounts_customer_id_customers"
        ),
        sa.UniqueConstraint("msisdn", name="uq_accounts_msisdn"),
        sa.UniqueConstraint("imsi", name="uq_accounts_imsi"),
        sa.UniqueConstraint("iccid", name="uq_accounts_iccid"),
    )
    op.create_index("ix_accounts_customer_id", "accounts", ["customer_id"])
    op.create_index("ix_accounts_product_code", "accounts", ["product_code"])
    op.create_index("ix_accounts_imei", "accounts", ["imei"])
    op.create_index("ix_accounts_cpe_serial", "accounts", ["cpe_serial"])
    op.create_index("ix_accounts_static_ip_address", "accounts", ["static_ip_address"])

    op.create_table(
        "account_aliases",
        sa.Column("alias", sa.String(), nullable=False),
        _id("account_id"),
        sa.PrimaryKeyConstraint("alias", name="pk_account_aliases"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_account_aliases_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_account_aliases_account_id", "account_aliases", ["account_id"])

    op.create_table(
        "add_on_assignments",
        _id("account_id"),
        _id(),
        sa.Column("product_code", sa.String(), nullable=False),
        sa.Column("precedence", sa.Integer(), nullable=False),
        sa.Column("effective_from", TIMESTAMP, nullable=False),
        sa.Column("effective_to", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("account_id", "id", name="pk_add_on_assignments"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_add_on_assignments_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_add_on_assignments_effective_to", "add_on_assignments", ["effective_to"])

    # -- catalogue ---------------------------------------------------------------
    catalogue_version = op.create_table(
        "catalogue_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalogue_version"),
    )
    op.bulk_insert(catalogue_version, [{"id": 1, "version": 1}])

    op.create_table(
        "service_policies",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("policy", DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_service_policies"),
    )

    op.create_table(
        "products",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("precedence", sa.Integer(), nullable=False),
        sa.Column("validity", sa.Interval(), nullable=True),
        sa.Column("price", AMOUNT, nullable=True),
        _currency("price_currency", nullable=True),
        sa.Column("services", DOCUMENT, nullable=False),
        sa.Column("policy", DOCUMENT, nullable=False),
        sa.Column("iptv_packages", DOCUMENT, nullable=False),
        sa.Column("ledger_code", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("code", name="pk_products"),
    )

    def product_part(name: str, *columns: sa.Column) -> None:
        op.create_table(
            name,
            sa.Column("product_code", sa.String(), nullable=False),
            sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
            *columns,
            sa.PrimaryKeyConstraint("product_code", "position", name=f"pk_{name}"),
            sa.ForeignKeyConstraint(
                ["product_code"],
                ["products.code"],
                name=f"fk_{name}_product_code_products",
                ondelete="CASCADE",
            ),
        )

    product_part(
        "product_subscriptions",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("fee", AMOUNT, nullable=False),
        _currency(),
        sa.Column("ledger_code", sa.String(), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
    )
    product_part(
        "product_usage_charges",
        sa.Column("access_code", sa.String(), nullable=False),
        sa.Column("tariff_code", sa.String(), nullable=False),
        sa.Column("service", sa.String(16), nullable=True),
    )
    op.create_index(
        "ix_product_usage_charges_tariff_code", "product_usage_charges", ["tariff_code"]
    )
    product_part(
        "product_quotas",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("allowance", AMOUNT, nullable=False),
        sa.Column("renewal", sa.String(16), nullable=False),
        sa.Column("destination_group", sa.String(), nullable=True),
        sa.Column("rating_group", sa.Integer(), nullable=True),
        sa.Column("validity", sa.Interval(), nullable=True),
        _currency(nullable=True),
    )

    op.create_table(
        "destination_groups",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("ledger_code", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_destination_groups"),
    )

    op.create_table(
        "tariffs",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        _currency(),
        sa.PrimaryKeyConstraint("code", name="pk_tariffs"),
    )

    op.create_table(
        "rates",
        sa.Column("tariff_code", sa.String(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("price_first", AMOUNT, nullable=False),
        sa.Column("first_interval", sa.BigInteger(), nullable=False),
        sa.Column("next_interval", sa.BigInteger(), nullable=False),
        sa.Column("price_next", AMOUNT, nullable=False),
        sa.Column("connection_fee", AMOUNT, nullable=False),
        sa.Column("free_units", sa.BigInteger(), nullable=False),
        sa.Column("group_code", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("tariff_code", "kind", "destination", name="pk_rates"),
        sa.ForeignKeyConstraint(
            ["tariff_code"],
            ["tariffs.code"],
            name="fk_rates_tariff_code_tariffs",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_code"],
            ["destination_groups.code"],
            name="fk_rates_group_code_destination_groups",
        ),
        sa.CheckConstraint("kind IN ('prefix', 'custom')", name="ck_rates_kind"),
    )

    op.create_table(
        "dialing_rules",
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pattern", sa.String(), nullable=False),
        sa.Column("replacement", sa.String(), nullable=False),
        sa.Column("exact", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_dialing_rules"),
    )

    # -- quotas --------------------------------------------------------------------
    op.create_table(
        "quota_buckets",
        _id(),
        _id("account_id"),
        sa.Column("product_code", sa.String(), nullable=False),
        sa.Column("quota_code", sa.String(), nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("destination_group", sa.String(), nullable=True),
        sa.Column("rating_group", sa.Integer(), nullable=True),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("allowance", AMOUNT, nullable=False),
        sa.Column("used", AMOUNT, nullable=False),
        sa.Column("reserved", AMOUNT, nullable=False),
        sa.Column("renewal", sa.String(16), nullable=False),
        sa.Column("precedence", sa.Integer(), nullable=False),
        sa.Column("valid_from", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("period_end", TIMESTAMP, nullable=True),
        sa.Column("assignment_id", sa.String(), nullable=True),
        _currency(nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quota_buckets"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_quota_buckets_account_id_accounts"
        ),
    )
    op.create_index("ix_quota_buckets_account_id", "quota_buckets", ["account_id"])
    op.create_index("ix_quota_buckets_period_end", "quota_buckets", ["period_end"])
    op.create_index("ix_quota_buckets_assignment_id", "quota_buckets", ["assignment_id"])

    # -- charging ------------------------------------------------------------------
    op.create_table(
        "cc_sessions",
        _id(),
        _id("account_id"),
        _id("customer_id"),
        _currency(),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("last_activity", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cc_sessions"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_cc_sessions_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_cc_sessions_customer_id_customers"
        ),
    )
    op.create_index("ix_cc_sessions_account_state", "cc_sessions", ["account_id", "state"])
    op.create_index("ix_cc_sessions_state_activity", "cc_sessions", ["state", "last_activity"])

    op.create_table(
        "xdrs",
        _id(),
        _id("session_id"),
        _id("account_id"),
        _id("customer_id"),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=False),
        sa.Column("charge", AMOUNT, nullable=False),
        _currency(),
        sa.Column("cause", sa.String(), nullable=False),
        sa.Column("sub_sessions", DOCUMENT, nullable=False),
        sa.Column("lines", DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_xdrs"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_xdrs_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_xdrs_customer_id_customers"
        ),
        sa.UniqueConstraint("session_id", name="uq_xdrs_session_id"),
    )
    op.create_index("ix_xdrs_account_ended", "xdrs", ["account_id", "ended_at"])
    op.create_index("ix_xdrs_customer_ended", "xdrs", ["customer_id", "ended_at"])

    # -- records ---------------------------------------------------------------------
    op.create_table(
        "balance_transactions",
        _id(),
        _id("customer_id"),
        sa.Column("account_id", sa.String(), nullable=True),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("balance_after", AMOUNT, nullable=False),
        _currency(),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        sa.Column("ledger_code", sa.String(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_balance_transactions"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name="fk_balance_transactions_customer_id_customers",
        ),
    )
    op.create_index(
        "ix_balance_transactions_customer_created",
        "balance_transactions",
        ["customer_id", "created_at"],
    )
    op.create_index("ix_balance_transactions_reference", "balance_transactions", ["reference"])

    op.create_table(
        "vouchers",
        _id(),
        sa.Column("code_hash", sa.String(), nullable=False),
        sa.Column("value", AMOUNT, nullable=False),
        _currency(),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("batch", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("redeemed_by", sa.String(), nullable=True),
        sa.Column("redeemed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_vouchers"),
        sa.UniqueConstraint("code_hash", name="uq_vouchers_code_hash"),
    )
    op.create_index("ix_vouchers_batch", "vouchers", ["batch"])

    # -- events ----------------------------------------------------------------------
    op.create_table(
        "outbox",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("aggregate", sa.String(), nullable=False),
        sa.Column("aggregate_id", sa.String(), nullable=False),
        sa.Column("payload", DOCUMENT, nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_index("ix_outbox_aggregate", "outbox", ["aggregate_id", "id"])


def downgrade() -> None:
    # Children before parents: with foreign keys on, SQLite refuses to drop a
    # table that rows of another still reference.
    for table in (
        "outbox",
        "vouchers",
        "balance_transactions",
        "xdrs",
        "cc_sessions",
        "quota_buckets",
        "dialing_rules",
        "rates",
        "tariffs",
        "destination_groups",
        "product_quotas",
        "product_usage_charges",
        "product_subscriptions",
        "products",
        "service_policies",
        "catalogue_version",
        "add_on_assignments",
        "account_aliases",
        "accounts",
        "customers",
    ):
        op.drop_table(table)
