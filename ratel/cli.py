"""The ``ratel`` command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ratel.adapters.telemetry import configure_logging
from ratel.config import Settings, SettingsError, env_name, load_settings

# The database, HTTP and demo modules are imported by the commands that use
# them: `ratel --help` and a bad setting answer at once instead of after
# loading SQLAlchemy and Alembic.
if TYPE_CHECKING:
    from ratel.container import Container

T = TypeVar("T")

HELP = """\
ratel: converged billing, online charging (OCS) and provisioning for
telecom operators.

One process serves everything: `ratel serve` answers HTTP (health, metrics,
and GraphQL, RADIUS and Diameter as they arrive) and runs the housekeeping
job. Start with:

\b
  ratel db upgrade      create or migrate the database
  ratel demo load       a small demo operator (products, tariffs, customers)
  ratel serve           run until SIGTERM or Ctrl-C

Settings come from RATEL_* environment variables and an optional TOML file
(--config or RATEL_CONFIG); `ratel settings` shows them. By default ratel
keeps its data in ./ratel.db (SQLite) and listens on 127.0.0.1:8080.
"""

app = typer.Typer(
    name="ratel",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
demo_app = typer.Typer(help="Demo and benchmark data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")

console = Console()
errors = Console(stderr=True)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            metavar="PATH",
            help="TOML settings file (default: $RATEL_CONFIG, else none). "
            "RATEL_* environment variables override it.",
        ),
    ] = None,
) -> None:
    """Load the settings every command uses."""
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        errors.print(f"ratel: configuration error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format.value)
    ctx.obj = settings


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def _run(settings: Settings, work: Callable[[Container], Awaitable[T]]) -> T:
    """Run ``work`` on a fresh container in an event loop, then close it. A
    refusal of the database or of a business rule ends the command with its
    reason, not a traceback."""
    from sqlalchemy.exc import DBAPIError

    from ratel.container import build_container, dispose
    from ratel.domain.errors import DomainError

    async def body() -> T:
        container = build_container(settings)
        try:
            return await work(container)
        finally:
            await dispose(container)

    try:
        return asyncio.run(body())
    except DBAPIError as exc:
        reason = str(exc.orig).strip()
        hint = ""
        if "no such table" in reason or "does not exist" in reason:
            hint = " (is the schema there? run `ratel db upgrade`)"
        errors.print(f"ratel: database error: {reason}{hint}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except DomainError as exc:
        errors.print(f"ratel: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None


# -- db ---------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create the schema or migrate it forward (safe to run on every deploy)."""
    from ratel.adapters.db.migrations import upgrade

    settings = _settings(ctx)
    upgrade(settings.database_url, revision)
    console.print(f"database upgraded to {revision}: {_safe_url(settings.database_url)}")


@db_app.command("downgrade")
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[
        str, typer.Option(help="Target revision ('base' removes every table).")
    ] = "base",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Migrate the schema back (data in dropped tables is lost)."""
    from ratel.adapters.db.migrations import downgrade

    settings = _settings(ctx)
    where = _safe_url(settings.database_url)
    if not yes:
        typer.confirm(f"Downgrade {where} to {revision}? Data may be lost", abort=True)
    downgrade(settings.database_url, revision)
    console.print(f"database downgraded to {revision}: {where}")


def _safe_url(url: str) -> str:
    """The URL without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


# -- demo -------------------------------------------------------------------------


@demo_app.command("load")
def demo_load(
    ctx: typer.Context,
    customers: Annotated[
        int,
        typer.Option(
            min=0, help="Also create this many customers, one mobile account each (benchmarks)."
        ),
    ] = 0,
) -> None:
    """Load a small demo operator; loading again changes nothing."""
    from ratel.demo import load_demo

    settings = _settings(ctx)
    if customers:
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("customers", total=customers)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = _run(settings, lambda c: load_demo(c, customers, progress))
    else:
        report = _run(settings, load_demo)

    if report.loaded:
        console.print("demo data loaded")
    else:
        console.print("demo data already loaded")
    # identifiers are what people copy from here: one line each, never cut
    console.print("demo accounts:")
    for login in report.logins:
        console.print(
            f"  {login.customer:<16} {login.account_id:<19} "
            f"{login.kind} {login.identifier}  ({login.note})",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    if report.imported_customers:
        console.print(f"imported {report.imported_customers} customers")
    console.print(f"customers in the database: {report.total_customers}")


# -- serve and jobs ----------------------------------------------------------------


@app.command()
def serve(ctx: typer.Context) -> None:
    """Run ratel: HTTP (/healthz, /metrics), the scheduler, and the protocol
    listeners, until SIGTERM or Ctrl-C; in-flight work finishes first."""
    from ratel.app import serve as run_service

    code = _run(_settings(ctx), run_service)
    raise typer.Exit(code)


@app.command()
def housekeeping(ctx: typer.Context) -> None:
    """Run one pass of the scheduled job (expire add-ons, renew quotas,
    release idle sessions) and print what it did."""

    async def work(container: Container) -> dict[str, Any]:
        return asdict(await container.housekeeping()())

    report = _run(_settings(ctx), work)
    for name, value in report.items():
        console.print(f"{name.replace('_', ' ')}: {value}")


@app.command("settings")
def show_settings(ctx: typer.Context) -> None:
    """Show the effective settings as environment variables (the secret hidden)."""
    settings = _settings(ctx)
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.name == "secret":
            value = "***"
        elif f.name == "database_url":
            value = _safe_url(value)
        elif isinstance(value, frozenset):
            value = ",".join(sorted(value))
        console.print(f"{env_name(f.name)}={value}", soft_wrap=True, markup=False, highlight=False)


if __name__ == "__main__":
    app(prog_name="ratel")
