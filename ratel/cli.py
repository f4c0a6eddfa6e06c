"""The ``ratel`` command."""

from __future__ import annotations

import asyncio
import sys
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
staff_app = typer.Typer(
    help="Staff users (local ones: development and bootstrap).", no_args_is_help=True
)
apikey_app = typer.Typer(
    help="API keys of applications (CRM apps, USSD gateways).", no_args_is_help=True
)
app.add_typer(staff_app, name="staff")
app.add_typer(apikey_app, name="apikey")

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
    console.print("demo staff logins (demo passwords: never use them for real):")
    for staff in report.staff:
        _plain(f"  {staff.login:<16} {staff.role:<16} password {staff.password}")
    account_id, password = report.self_care
    _plain(f"self-care login: account {account_id}, password {password}")
    nas, pppoe = report.nas, report.pppoe
    _plain(
        f"RADIUS client (NAS): {nas.name} at {nas.address}, vendor {nas.vendor.name}, "
        f"secret {nas.secret}; CoA/Disconnect port {nas.dae_port} off (nothing listens there)"
    )
    _plain(
        f"PPPoE login ({pppoe.account_id}): User-Name {pppoe.user_name}, password {pppoe.password}"
    )
    if report.ussd_api_key:
        _plain(f"USSD gateway API key (shown this once): {report.ussd_api_key}")
    else:
        console.print(
            "USSD gateway API key: made by an earlier load and shown then "
            "(`ratel apikey create NAME --scope ussd` makes another)"
        )


# -- staff and API keys ------------------------------------------------------------


def _plain(line: str) -> None:
    console.print(line, soft_wrap=True, markup=False, highlight=False)


def _new_password(from_stdin: bool) -> str:
    """The password from stdin's first line, or asked twice at a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        errors.print("ratel: no terminal to ask for the password: pipe it in with --password-stdin")
        raise typer.Exit(2)
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@staff_app.command("add")
def staff_add(
    ctx: typer.Context,
    login: Annotated[str, typer.Argument(help="Login name (compared case-insensitively).")],
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    role: Annotated[
        list[str],
        typer.Option("--role", help="A role, repeatable: administrator, helpdesk."),
    ],
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from standard input's first line."
        ),
    ] = False,
) -> None:
    """Create a local staff user with a password (at least 8 characters),
    asked twice unless --password-stdin."""
    password = _new_password(password_stdin)

    async def work(container: Container) -> Any:
        return await container.create_local_staff_user()(login, name, password, role, email=email)

    user = _run(_settings(ctx), work)
    _plain(f"staff user {user.login} created ({', '.join(sorted(user.roles))})")


@staff_app.command("list")
def staff_list(ctx: typer.Context) -> None:
    """Every staff user: login, status, source, roles, name, last login."""

    async def work(container: Container) -> Any:
        return await container.list_staff()()

    users = _run(_settings(ctx), work)
    if not users:
        console.print("no staff users")
        return
    for user in users:
        last = user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
        _plain(
            f"{user.login:<24} {user.effective_status.value:<8} {user.source.value:<10} "
            f"{','.join(sorted(user.roles)):<28} {user.name}  (last login: {last})"
        )


@staff_app.command("sync")
def staff_sync(ctx: typer.Context) -> None:
    """Mirror the staff directory now (what `ratel serve` does every
    RATEL_DIRECTORY_SYNC_INTERVAL seconds) and print what changed. Exits 1
    when the run did not complete (the directory did not answer: nothing
    was changed)."""
    from ratel.config import DirectoryKind

    settings = _settings(ctx)
    if settings.directory is not DirectoryKind.LDAP:
        errors.print(
            f"ratel: nothing to sync: {env_name('directory')} is {settings.directory.value} "
            "(the sync mirrors an LDAP directory)",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)

    async def work(container: Container) -> Any:
        return await container.sync_directory()()

    run = _run(settings, work)
    _plain(
        f"directory sync {run.id}: {run.created} created, {run.updated} updated, "
        f"{run.blocked} blocked, {run.deleted} deleted, {run.tokens_revoked} tokens revoked"
    )
    if run.error:
        errors.print(f"ratel: {run.error}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@apikey_app.command("create")
def apikey_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help='What the key is for ("USSD gateway 1").')],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="A scope, repeatable: crm:read, crm:write, ussd."),
    ],
) -> None:
    """Create an API key and print it, this once (only its hash is kept). The
    key alone goes to standard output, so KEY=$(ratel apikey create ...) works."""

    async def work(container: Container) -> Any:
        return await container.create_api_key()(name, scope)

    key, secret = _run(_settings(ctx), work)
    errors.print(
        f"API key {key.id} ({key.name}; scopes {', '.join(sorted(key.scopes))}) created. "
        "It is shown this once: store it now.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    _plain(secret)


@apikey_app.command("revoke")
def apikey_revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")]
) -> None:
    """Revoke an API key for good."""

    async def work(container: Container) -> Any:
        return await container.revoke_api_key()(key_id)

    key = _run(_settings(ctx), work)
    _plain(f"API key {key.id} ({key.name}) revoked")


@apikey_app.command("list")
def apikey_list(ctx: typer.Context) -> None:
    """Every API key: id, prefix, scopes, name, created, revoked."""

    async def work(container: Container) -> Any:
        return await container.list_api_keys()()

    keys = _run(_settings(ctx), work)
    if not keys:
        console.print("no API keys")
        return
    for key in keys:
        state = (
            f"revoked {key.revoked_at.isoformat(timespec='seconds')}"
            if key.revoked_at
            else "active"
        )
        _plain(
            f"{key.id:<32} {key.display:<20} {','.join(sorted(key.scopes)):<20} "
            f"{state:<32} {key.name}"
        )


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
        if f.name.endswith(("secret", "password")):
            value = "***"
        elif f.name == "database_url":
            value = _safe_url(value)
        elif isinstance(value, frozenset):
            value = ",".join(sorted(value))
        elif value is None:
            value = ""  # not set (an empty variable means the same)
        elif f.name == "directory_role_groups":
            value = ";".join(f"{role}={group}" for group, role in value)
        elif isinstance(value, tuple):
            value = ",".join(value)
        console.print(f"{env_name(f.name)}={value}", soft_wrap=True, markup=False, highlight=False)


if __name__ == "__main__":
    app(prog_name="ratel")
