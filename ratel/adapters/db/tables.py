"""The schema: SQLAlchemy Core tables for every aggregate.

The repositories map rows to domain objects explicitly; the domain never
sees these tables. ``alembic/versions`` builds exactly this metadata on
SQLite and PostgreSQL (a test compares them).

Conventions: ids and codes are unbounded strings (Diameter session ids have
no fixed length); money is an ``Amount`` (exact, 8 places) next to its ISO
currency; times are ``UtcDateTime``; what is only ever read and written
whole (custom fields, a session's streams) is JSON.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.schema import SchemaItem

from ratel.adapters.db.types import BIG_ID, JSON_DOCUMENT, Amount, UtcDateTime

NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _currency(name: str = "currency", *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.CHAR(3), nullable=nullable)


# -- customers and accounts --------------------------------------------------------

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    _currency(),
    # The wallet. Written only as deltas (balance = balance + :d) so that
    # concurrent sessions of one customer never overwrite each other.
    sa.Column("balance", Amount, nullable=False),
    sa.Column("credit_limit", Amount, nullable=False),
    sa.Column("reserved", Amount, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("billing_unit", sa.String(16), nullable=False),
    sa.Column("billing_anchor_day", sa.SmallInteger, nullable=False),
    sa.Column("email", sa.String, nullable=True),
    sa.Column("phone", sa.String, nullable=True),
    sa.Column("address_lines", JSON_DOCUMENT, nullable=False),
    sa.Column("country", sa.CHAR(2), nullable=True),
    sa.Column("customer_class", sa.String, nullable=False),
    sa.Column("custom_fields", JSON_DOCUMENT, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index(None, "status"),
    sa.Index(None, "country"),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("customer_id", sa.String, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("product_code", sa.String, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # Identifiers. MSISDN, IMSI and ICCID name one account each; an IMEI or a
    # CPE (one ONT, several ports) may be shared, so they are only indexed.
    sa.Column("msisdn", sa.String, nullable=True),
    sa.Column("imsi", sa.String, nullable=True),
    sa.Column("iccid", sa.String, nullable=True),
    sa.Column("imei", sa.String, nullable=True),
    sa.Column("cpe_serial", sa.String, nullable=True),
    sa.Column("cpe_port", sa.Integer, nullable=True),
    sa.Column("cpe_port_type", sa.String(2), nullable=True),
    sa.Column("static_ip", sa.String, nullable=True),  # canonical "address/prefixlen"
    sa.Column("static_ip_address", sa.String, nullable=True),  # the address alone, for lookups
    # Copies of account_aliases and add_on_assignments, so that loading an
    # account (every credit-control request does) is one row read. The child
    # tables are written in the same transaction and serve uniqueness and
    # queries; the repository is the only writer of both.
    sa.Column("aliases", JSON_DOCUMENT, nullable=False),
    sa.Column("add_ons", JSON_DOCUMENT, nullable=False),
    sa.Column("custom_fields", JSON_DOCUMENT, nullable=False),
    sa.Column("location", sa.String, nullable=True),
    sa.Column("location_changed_at", UtcDateTime, nullable=True),
    sa.Column("location_block_lifted", sa.Boolean, nullable=False),
    sa.UniqueConstraint("msisdn"),
    sa.UniqueConstraint("imsi"),
    sa.UniqueConstraint("iccid"),
    sa.Index(None, "customer_id"),
    sa.Index(None, "product_code"),
    sa.Index(None, "imei"),
    sa.Index(None, "cpe_serial"),
    sa.Index(None, "static_ip_address"),
)

account_aliases = sa.Table(
    "account_aliases",
    metadata,
    sa.Column("alias", sa.String, primary_key=True),
    sa.Column(
        "account_id", sa.String, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Index(None, "account_id"),
)

add_on_assignments = sa.Table(
    "add_on_assignments",
    metadata,
    sa.Column(
        "account_id",
        sa.String,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("product_code", sa.String, nullable=False),
    sa.Column("precedence", sa.Integer, nullable=False),
    sa.Column("effective_from", UtcDateTime, nullable=False),
    sa.Column("effective_to", UtcDateTime, nullable=True),
    sa.Index(None, "effective_to"),
)

# -- catalogue -------------------------------------------------------------------

catalogue_version = sa.Table(
    "catalogue_version",
    metadata,
    # One row (id 1). Every catalogue write bumps it in its own transaction;
    # every process compares it with the version its cache was built from.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

service_policies = sa.Table(
    "service_policies",
    metadata,
    # Named, reusable policies. A product keeps its own copy of the policy it
    # was defined with (products.policy), so editing a named policy never
    # changes a product behind the operator's back.
    sa.Column("code", sa.String, primary_key=True),
    sa.Column("policy", JSON_DOCUMENT, nullable=False),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("code", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("precedence", sa.Integer, nullable=False),
    sa.Column("validity", sa.Interval, nullable=True),
    sa.Column("price", Amount, nullable=True),
    _currency("price_currency", nullable=True),
    sa.Column("services", JSON_DOCUMENT, nullable=False),
    sa.Column("policy", JSON_DOCUMENT, nullable=False),
    sa.Column("iptv_packages", JSON_DOCUMENT, nullable=False),
    sa.Column("ledger_code", sa.String, nullable=True),
)


def _product_child(name: str, *parts: SchemaItem) -> sa.Table:
    """A table of one of a product's ordered parts (``position`` keeps the order)."""
    return sa.Table(
        name,
        metadata,
        sa.Column(
            "product_code",
            sa.String,
            sa.ForeignKey("products.code", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        *parts,
    )


product_subscriptions = _product_child(
    "product_subscriptions",
    sa.Column("code", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("fee", Amount, nullable=False),
    _currency(),
    sa.Column("ledger_code", sa.String, nullable=False),
    sa.Column("period", sa.String(16), nullable=False),
)

product_usage_charges = _product_child(
    "product_usage_charges",
    sa.Column("access_code", sa.String, nullable=False),
    sa.Column("tariff_code", sa.String, nullable=False),
    sa.Column("service", sa.String(16), nullable=True),
    sa.Index(None, "tariff_code"),
)

product_quotas = _product_child(
    "product_quotas",
    sa.Column("code", sa.String, nullable=False),
    sa.Column("service", sa.String(16), nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("allowance", Amount, nullable=False),
    sa.Column("renewal", sa.String(16), nullable=False),
    sa.Column("destination_group", sa.String, nullable=True),
    sa.Column("rating_group", sa.Integer, nullable=True),
    sa.Column("validity", sa.Interval, nullable=True),
    _currency(nullable=True),
)

destination_groups = sa.Table(
    "destination_groups",
    metadata,
    sa.Column("code", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("ledger_code", sa.String, nullable=False),
)

tariffs = sa.Table(
    "tariffs",
    metadata,
    sa.Column("code", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    _currency(),
    # the IANA zone the rates' time-of-day periods are in (migration 0007)
    sa.Column("time_zone", sa.String, nullable=False, server_default="UTC"),
)

rates = sa.Table(
    "rates",
    metadata,
    # One row per destination of a tariff: an E.164 prefix or a custom
    # destination (USSD code, access code, data key). Prices are in the
    # tariff's currency; unit counts may be bytes, hence BIGINT.
    sa.Column(
        "tariff_code",
        sa.String,
        sa.ForeignKey("tariffs.code", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("destination", sa.String, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),  # custom destinations keep their order
    sa.Column("price_first", Amount, nullable=False),
    sa.Column("first_interval", sa.BigInteger, nullable=False),
    sa.Column("next_interval", sa.BigInteger, nullable=False),
    sa.Column("price_next", Amount, nullable=False),
    sa.Column("connection_fee", Amount, nullable=False),
    sa.Column("free_units", sa.BigInteger, nullable=False),
    sa.Column("group_code", sa.String, sa.ForeignKey("destination_groups.code"), nullable=True),
    sa.CheckConstraint("kind IN ('prefix', 'custom')", name="kind"),
    # time-of-day periods with their own rate, [[start, end, rate], ...] in the
    # tariff's local time; NULL: the rate never changes (migration 0007)
    sa.Column("periods", JSON_DOCUMENT, nullable=True),
)

dialing_rules = sa.Table(
    "dialing_rules",
    metadata,
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pattern", sa.String, nullable=False),
    sa.Column("replacement", sa.String, nullable=False),
    sa.Column("exact", sa.Boolean, nullable=False),
)

# -- quotas ----------------------------------------------------------------------

quota_buckets = sa.Table(
    "quota_buckets",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("account_id", sa.String, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("product_code", sa.String, nullable=False),
    sa.Column("quota_code", sa.String, nullable=False),
    sa.Column("service", sa.String(16), nullable=False),
    sa.Column("destination_group", sa.String, nullable=True),
    sa.Column("rating_group", sa.Integer, nullable=True),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("allowance", Amount, nullable=False),
    sa.Column("used", Amount, nullable=False),
    sa.Column("reserved", Amount, nullable=False),
    sa.Column("renewal", sa.String(16), nullable=False),
    sa.Column("precedence", sa.Integer, nullable=False),
    sa.Column("valid_from", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("period_end", UtcDateTime, nullable=True),
    sa.Column("assignment_id", sa.String, nullable=True),
    _currency(nullable=True),
    sa.Index(None, "account_id"),
    sa.Index(None, "period_end"),
    sa.Index(None, "assignment_id"),
)

# -- charging --------------------------------------------------------------------

cc_sessions = sa.Table(
    "cc_sessions",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("account_id", sa.String, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("customer_id", sa.String, sa.ForeignKey("customers.id"), nullable=False),
    _currency(),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("last_activity", UtcDateTime, nullable=False),
    # Optimistic lock: a save names the version it loaded, so two nodes that
    # both read a session without a lock cannot both write it.
    sa.Column("version", sa.Integer, nullable=False),
    # Streams (with their rate snapshot and holds), the last stored answers
    # per sub-session, request numbers, sub-sessions and the xDR.
    sa.Column("snapshot", JSON_DOCUMENT, nullable=False),
    sa.Index("ix_cc_sessions_account_state", "account_id", "state"),
    sa.Index("ix_cc_sessions_state_activity", "state", "last_activity"),
)

xdrs = sa.Table(
    "xdrs",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    # UNIQUE: a session produces one xDR, whatever races or retries happen.
    sa.Column("session_id", sa.String, nullable=False),
    sa.Column("account_id", sa.String, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("customer_id", sa.String, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime, nullable=False),
    sa.Column("charge", Amount, nullable=False),
    _currency(),
    sa.Column("cause", sa.String, nullable=False),
    sa.Column("sub_sessions", JSON_DOCUMENT, nullable=False),
    sa.Column("lines", JSON_DOCUMENT, nullable=False),
    sa.UniqueConstraint("session_id"),
    sa.Index("ix_xdrs_account_ended", "account_id", "ended_at"),
    sa.Index("ix_xdrs_customer_ended", "customer_id", "ended_at"),
)

balance_transactions = sa.Table(
    "balance_transactions",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("customer_id", sa.String, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("account_id", sa.String, nullable=True),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("balance_after", Amount, nullable=False),
    _currency(),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("reference", sa.String, nullable=False),
    sa.Column("ledger_code", sa.String, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index("ix_balance_transactions_customer_created", "customer_id", "created_at"),
    sa.Index(None, "reference"),
)

vouchers = sa.Table(
    "vouchers",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("code_hash", sa.String, nullable=False),
    sa.Column("value", Amount, nullable=False),
    _currency(),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("batch", sa.String, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("redeemed_by", sa.String, nullable=True),
    sa.Column("redeemed_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("code_hash"),
    sa.Index(None, "batch"),
)

# -- events ----------------------------------------------------------------------

outbox = sa.Table(
    "outbox",
    metadata,
    # An increasing integer: the order events are handed on in.
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("event_type", sa.String, nullable=False),
    sa.Column("aggregate", sa.String, nullable=False),
    sa.Column("aggregate_id", sa.String, nullable=False),
    sa.Column("payload", JSON_DOCUMENT, nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("published_at", UtcDateTime, nullable=True),
    # Workers only ever look for unpublished rows: a partial index stays small
    # however long the history grows.
    sa.Index(
        "ix_outbox_unpublished",
        "id",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    ),
    sa.Index("ix_outbox_aggregate", "aggregate_id", "id"),
)

# -- identity --------------------------------------------------------------------

staff_users = sa.Table(
    "staff_users",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    # Lower case (logins compare case-insensitively), so UNIQUE means unique.
    sa.Column("login", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("email", sa.String, nullable=True),
    sa.Column("country", sa.CHAR(2), nullable=True),
    sa.Column("company", sa.String, nullable=True),
    sa.Column("roles", JSON_DOCUMENT, nullable=False),  # sorted list of role names
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("directory_disabled", sa.Boolean, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    # Local users' argon2 hash; NULL for directory users (their password is
    # the directory's).
    sa.Column("password_hash", sa.String, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_login_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("login"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    # The public part of the key (rk_<prefix>_<secret>): finds the row.
    sa.Column("prefix", sa.String, nullable=False),
    sa.Column("secret_hash", sa.String, nullable=False),
    sa.Column("scopes", JSON_DOCUMENT, nullable=False),  # sorted list of scope names
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("prefix"),
)

access_tokens = sa.Table(
    "access_tokens",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("token_hash", sa.String, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("subject", sa.String, nullable=False),  # staff login or account id
    sa.Column("account_id", sa.String, nullable=True),
    sa.Column("customer_id", sa.String, nullable=True),
    sa.Column("issued_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("token_hash"),
    sa.Index("ix_access_tokens_kind_subject", "kind", "subject"),
    sa.Index(None, "expires_at"),
)

account_credentials = sa.Table(
    "account_credentials",
    metadata,
    sa.Column(
        "account_id",
        sa.String,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("password_hash", sa.String, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# -- CRM links (the Zendesk app) ------------------------------------------------------

crm_links = sa.Table(
    "crm_links",
    metadata,
    # A customer's record in a CRM system (a Zendesk organization id): one
    # per customer and system, and one customer per record.
    sa.Column(
        "customer_id",
        sa.String,
        sa.ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("system", sa.String(32), primary_key=True),
    sa.Column("external_id", sa.String, nullable=False),
    sa.Column("linked_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("system", "external_id"),
)

# -- directory sync (issue 7) ------------------------------------------------------------

directory_sync_runs = sa.Table(
    "directory_sync_runs",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=True),  # null while running
    sa.Column("created", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
    sa.Column("blocked", sa.Integer, nullable=False),
    sa.Column("deleted", sa.Integer, nullable=False),
    sa.Column("tokens_revoked", sa.Integer, nullable=False),
    sa.Column("error", sa.String, nullable=True),
    sa.Index(None, "started_at"),
)

# -- RADIUS: the NAS registry and the wire facts of broadband sessions -------------

radius_nas = sa.Table(
    "radius_nas",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("address", sa.String, nullable=False),  # the source IP packets come from
    sa.Column("secret", sa.String, nullable=False),  # shared secret: RADIUS needs it in clear
    sa.Column("vendor", sa.String(32), nullable=False),
    sa.Column("accepts_coa", sa.Boolean, nullable=False),
    sa.Column("accepts_disconnect", sa.Boolean, nullable=False),
    sa.Column("dae_port", sa.Integer, nullable=False),
    sa.Column("require_message_authenticator", sa.Boolean, nullable=False),
    sa.UniqueConstraint("address"),
)

radius_sessions = sa.Table(
    "radius_sessions",
    metadata,
    sa.Column("nas_address", sa.String, primary_key=True),
    sa.Column("acct_session_id", sa.String, primary_key=True),
    sa.Column("charging_session_id", sa.String, nullable=False),
    sa.Column("sub_session", sa.String, nullable=False),
    sa.Column("account_id", sa.String, nullable=False),
    sa.Column("customer_id", sa.String, nullable=False),
    sa.Column("user_name", sa.String, nullable=False),
    sa.Column("framed_ip", sa.String, nullable=True),
    # the NAS's cumulative counters as last charged (gigawords folded in)
    sa.Column("input_octets", sa.BigInteger, nullable=False),
    sa.Column("output_octets", sa.BigInteger, nullable=False),
    sa.Column("session_time", sa.BigInteger, nullable=False),
    sa.Column("reports", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("restricted", sa.Boolean, nullable=False),
    sa.Column("restriction", sa.String(16), nullable=True),  # hotline / throttle (0009)
    sa.Column("last_dae", sa.String, nullable=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "charging_session_id"),
    sa.Index(None, "account_id", "state"),
    sa.Index(None, "customer_id", "state"),
    sa.Index(None, "nas_address", "state"),
)

# Which node sends a CoA or Disconnect: with several ratel nodes every node's
# relay sees every event, and the first to claim (reaction, session) sends it.
# Kept a day (``RadiusSessions.claim``).
radius_dae_claims = sa.Table(
    "radius_dae_claims",
    metadata,
    sa.Column("reaction", sa.String, primary_key=True),  # "event:<outbox id>", "restore:<n>"
    sa.Column("nas_address", sa.String, primary_key=True),
    sa.Column("acct_session_id", sa.String, primary_key=True),
    sa.Column("claimed_at", UtcDateTime, nullable=False),
    sa.Index(None, "claimed_at"),
)

radius_chap_secrets = sa.Table(
    "radius_chap_secrets",
    metadata,
    sa.Column(
        "account_id",
        sa.String,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # CHAP proves knowledge of the password over a challenge: the server needs
    # the password itself, so this one cannot be a hash (RFC 1994).
    sa.Column("secret", sa.String, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# -- Diameter (issue 6): the wire-level facts of a credit-control session that
# only the Diameter adapter needs: which peer to send a RAR or ASR to, and the
# xDR a REFUND_ACCOUNT gives back.
diameter_sessions = sa.Table(
    "diameter_sessions",
    metadata,
    sa.Column("session_id", sa.String, primary_key=True),
    sa.Column("origin_host", sa.String, nullable=False),
    sa.Column("origin_realm", sa.String, nullable=False),
    sa.Column("xdr_id", sa.String, nullable=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
)
