"""Time-of-day rate periods: a tariff's time zone and each rate's periods.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

Frozen like the others: the column types are spelled out, rendering exactly
as ratel.adapters.db.types does (documents JSONB / JSON). Existing tariffs
get UTC and no periods: their rates never change, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column(
        "tariffs", sa.Column("time_zone", sa.String(), nullable=False, server_default="UTC")
    )
    op.add_column("rates", sa.Column("periods", DOCUMENT, nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy: copying
    # "tariffs" would drop it, and with foreign keys on, its rates with it.
    op.drop_column("rates", "periods")
    op.drop_column("tariffs", "time_zone")
