"""Alembic builds exactly ``tables.metadata`` on SQLite and PostgreSQL, and
takes it down again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine
from store_databases import BACKENDS, fresh_database

from ratel.adapters.db.engine import create_engine
from ratel.adapters.db.migrations import (
    downgrade,
    downgrade_engine,
    script_location,
    upgrade,
    upgrade_engine,
)
from ratel.adapters.db.tables import metadata


async def schema_diffs(engine: AsyncEngine, target: sa.MetaData = metadata) -> list[Any]:
    async with engine.connect() as connection:

        def compare(sync_connection: sa.Connection) -> list[Any]:
            context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
            return list(compare_metadata(context, target))

        return await connection.run_sync(compare)


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )


def test_scripts_are_found_from_the_package() -> None:
    location = script_location()
    assert (location / "env.py").is_file()
    assert (location / "versions" / "0001_initial.py").is_file()
    assert (location / "versions" / "0002_identity.py").is_file()
    assert location == Path(__file__).resolve().parents[2] / "alembic"


@pytest.mark.parametrize("kind", BACKENDS)
async def test_upgrade_to_head_builds_the_metadata_and_downgrade_removes_it(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(url)
            assert await current_revision(engine) == MIGRATIONS[-1][0]
            assert await table_names(engine) == set(metadata.tables) | {"alembic_version"}
            assert await schema_diffs(engine) == []

            downgrade(url)
            assert await current_revision(engine) is None
            assert await table_names(engine) == {"alembic_version"}

            # and up again: the downgrade left nothing behind that blocks it
            upgrade(url)
            assert await schema_diffs(engine) == []
        finally:
            await engine.dispose()


IDENTITY_TABLES = {"staff_users", "api_keys", "access_tokens", "account_credentials"}


@pytest.mark.parametrize("kind", BACKENDS)
async def test_the_identity_migration_goes_down_to_the_initial_schema(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(url, "0001")
            before = await table_names(engine)
            assert not before & IDENTITY_TABLES
            upgrade(url, "0002")
            assert await table_names(engine) == before | IDENTITY_TABLES
            downgrade(url, "0001")
            assert await current_revision(engine) == "0001"
            assert await table_names(engine) == before
        finally:
            await engine.dispose()


@pytest.mark.parametrize("kind", BACKENDS)
async def test_migrating_through_an_engine_inside_the_event_loop(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            await upgrade_engine(engine)
            assert await schema_diffs(engine) == []
            await downgrade_engine(engine)
            assert await table_names(engine) == {"alembic_version"}
        finally:
            await engine.dispose()


async def test_the_comparison_would_see_a_drift(engine: AsyncEngine) -> None:
    """Guards the test above: a metadata that differs in a type, a column and
    an index is reported, so an empty diff really means equal schemas."""
    drifted = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["customers"].c.balance.type = sa.Numeric(20, 4)
    drifted.tables["accounts"].append_column(sa.Column("nickname", sa.String))
    drifted.tables["vouchers"].append_constraint(sa.Index("ix_vouchers_status", "status"))
    # modify_* changes come grouped in a list per column; the rest are tuples
    diffs = [
        change
        for diff in await schema_diffs(engine, drifted)
        for change in (diff if isinstance(diff, list) else [diff])
    ]
    assert {"add_column", "add_index", "modify_type"} <= {change[0] for change in diffs}
    assert any(c[0] == "modify_type" and c[3] == "balance" for c in diffs)


#: Each migration after the first two, the one before it and the tables it adds.
MIGRATIONS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("0003", "0002", frozenset({"crm_links"})),
    ("0004", "0003", frozenset({"radius_nas", "radius_sessions", "radius_chap_secrets"})),
    ("0005", "0004", frozenset({"diameter_sessions"})),
    ("0006", "0005", frozenset({"directory_sync_runs"})),
    ("0007", "0006", frozenset()),
    ("0008", "0007", frozenset({"radius_dae_claims"})),
    ("0009", "0008", frozenset()),
)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize(("revision", "down_to", "tables"), MIGRATIONS)
async def test_each_migration_adds_its_tables_and_takes_them_away(
    kind: str, revision: str, down_to: str, tables: frozenset[str], tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(url, down_to)
            before = await table_names(engine)
            upgrade(url, revision)
            assert await table_names(engine) == before | tables
            downgrade(url, down_to)
            assert await table_names(engine) == before
        finally:
            await engine.dispose()


#: Migrations that add columns to existing tables: revision, the one before, (table, column)s.
COLUMN_MIGRATIONS: tuple[tuple[str, str, frozenset[tuple[str, str]]], ...] = (
    ("0007", "0006", frozenset({("tariffs", "time_zone"), ("rates", "periods")})),
    ("0009", "0008", frozenset({("radius_sessions", "restriction")})),
)


async def column_names(engine: AsyncEngine) -> set[tuple[str, str]]:
    async with engine.connect() as connection:

        def columns(sync_connection: sa.Connection) -> set[tuple[str, str]]:
            inspector = sa.inspect(sync_connection)
            return {
                (table, column["name"])
                for table in inspector.get_table_names()
                for column in inspector.get_columns(table)
            }

        return await connection.run_sync(columns)


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize(("revision", "down_to", "columns"), COLUMN_MIGRATIONS)
async def test_each_column_migration_adds_its_columns_and_keeps_the_rows(
    kind: str, revision: str, down_to: str, columns: frozenset[tuple[str, str]], tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(url, down_to)
            async with engine.begin() as connection:
                await connection.execute(
                    sa.text("INSERT INTO tariffs (code, name, currency) VALUES ('T', 'T', 'USD')")
                )
            before = await column_names(engine)
            assert not before & columns
            upgrade(url, revision)
            assert await column_names(engine) == before | columns
            downgrade(url, down_to)
            assert await column_names(engine) == before
            async with engine.connect() as connection:
                kept = await connection.execute(sa.text("SELECT code FROM tariffs"))
                assert kept.scalars().all() == ["T"]
        finally:
            await engine.dispose()


@pytest.mark.parametrize("kind", BACKENDS)
async def test_sessions_restricted_before_0009_are_taken_as_hotlined(
    kind: str, tmp_path: Path
) -> None:
    """Their kind was not kept: a hotline is the one whose restore must do the
    most (a portal redirect that a CoA does not take back)."""
    async with fresh_database(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            upgrade(url, "0008")
            async with engine.begin() as connection:
                for session, restricted in (("s-1", True), ("s-2", False)):
                    await connection.execute(
                        sa.text(
                            "INSERT INTO radius_sessions (nas_address, acct_session_id, "
                            "charging_session_id, sub_session, account_id, customer_id, "
                            "user_name, input_octets, output_octets, session_time, reports, "
                            "state, restricted, started_at, updated_at) VALUES ('192.0.2.1', "
                            ":session, 'c', '', 'a', 'c', 'u', 0, 0, 0, 0, 'open', :restricted, "
                            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                        ),
                        {"session": session, "restricted": restricted},
                    )
            upgrade(url, "0009")
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text(
                        "SELECT acct_session_id, restriction FROM radius_sessions "
                        "ORDER BY acct_session_id"
                    )
                )
                assert [tuple(r) for r in rows] == [("s-1", "hotline"), ("s-2", None)]
        finally:
            await engine.dispose()
