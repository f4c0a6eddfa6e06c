"""Accounts with their identifiers, custom fields and add-on assignments."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from ipaddress import ip_interface
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ratel.adapters.db.catalogue import CATALOGUE_VERSION
from ratel.adapters.db.codec import time_from_json, time_to_json
from ratel.adapters.db.statements import (
    Interned,
    Prebuilt,
    PrebuiltMany,
    Repository,
    unique_violation,
)
from ratel.adapters.db.tables import account_aliases, accounts, add_on_assignments
from ratel.domain.account import Account, AccountStatus, AddOnAssignment
from ratel.domain.errors import DuplicateIdentifier, InvalidIdentifier, NotFound
from ratel.domain.identifiers import (
    CpeDevice,
    Iccid,
    Identifiers,
    Imei,
    Imsi,
    Msisdn,
    StaticIp,
)
from ratel.ports.store import IdentifierKind

_BY_ID = Prebuilt(sa.select(accounts).where(accounts.c.id == sa.bindparam("account_id")))
# The identifiers a batch looks up with one statement per kind: their column.
# A batch's lookup of its subscribers' accounts brings the catalogue's
# version along (``SqlCatalogueRepository.observe_version``): a batch that
# opens sessions finds none of them stored to bring it.
_WITH_CATALOGUE = (*accounts.c, CATALOGUE_VERSION.label("catalogue_version"))
_BY_COLUMN = {
    kind: PrebuiltMany(accounts, column, accounts.c.id, columns=_WITH_CATALOGUE)
    for kind, column in (
        (IdentifierKind.ACCOUNT_ID, accounts.c.id),
        (IdentifierKind.MSISDN, accounts.c.msisdn),
        (IdentifierKind.IMSI, accounts.c.imsi),
        (IdentifierKind.ICCID, accounts.c.iccid),
    )
}
_NORMAL = {
    IdentifierKind.ACCOUNT_ID: str,
    IdentifierKind.MSISDN: lambda v: str(Msisdn(v)),
    IdentifierKind.IMSI: lambda v: str(Imsi(v)),
    IdentifierKind.ICCID: lambda v: str(Iccid(v)),
}
_INSERT = sa.insert(accounts)

# The identifiers that name one account only, as (column, what people call it).
_UNIQUE_IDENTIFIERS = (("msisdn", "MSISDN"), ("imsi", "IMSI"), ("iccid", "ICCID"))

# Values looked up per statement when checking new accounts against existing
# ones: far below the bound-parameter limits of SQLite (32766) and asyncpg
# (32767), whatever the batch size.
_PROBE_VALUES = 5000


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _add_on_to_json(assignment: AddOnAssignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "product_code": assignment.product_code,
        "precedence": assignment.precedence,
        "effective_from": time_to_json(assignment.effective_from),
        "effective_to": time_to_json(assignment.effective_to),
    }


def _add_on_from_json(data: dict[str, Any]) -> AddOnAssignment:
    start = time_from_json(data["effective_from"])
    assert start is not None  # written by _add_on_to_json, never null
    return AddOnAssignment(
        id=data["id"],
        product_code=data["product_code"],
        precedence=data["precedence"],
        effective_from=start,
        effective_to=time_from_json(data["effective_to"]),
    )


def _alias_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``account_aliases`` rows of an ``accounts`` row."""
    return [{"alias": alias, "account_id": row["id"]} for alias in row["aliases"]]


def _add_on_rows(account: Account) -> list[dict[str, Any]]:
    """The ``add_on_assignments`` rows of ``account``."""
    return [
        {
            "account_id": account.id,
            "id": a.id,
            "product_code": a.product_code,
            "precedence": a.precedence,
            "effective_from": a.effective_from,
            "effective_to": a.effective_to,
        }
        for a in account.add_ons
    ]


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _new_identifiers(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The account ids and unique identifiers of the new ``rows``, as {what
    people call it: {value: account id}}; ``DuplicateIdentifier`` if two of
    the rows have the same account id or share an MSISDN, IMSI, ICCID or alias."""
    held: dict[str, dict[str, str]] = {"account id": {}}
    held.update((label, {}) for _, label in _UNIQUE_IDENTIFIERS)
    held["alias"] = {}
    for row in rows:
        account_id = row["id"]
        if account_id in held["account id"]:
            raise DuplicateIdentifier(f"account id {account_id} is given twice in the batch")
        held["account id"][account_id] = account_id
        values = [(label, row[column]) for column, label in _UNIQUE_IDENTIFIERS if row[column]]
        values += [("alias", alias) for alias in row["aliases"]]
        for label, value in values:
            holder = held[label].setdefault(value, account_id)
            if holder != account_id:
                raise DuplicateIdentifier(
                    f"{label} of account {account_id} is also given to account {holder} "
                    "in the batch"
                )
    return held


def account_row(account: Account) -> dict[str, Any]:
    """The ``accounts`` row of ``account``."""
    ids = account.identifiers
    return {
        "id": account.id,
        "customer_id": account.customer_id,
        "product_code": account.product_code,
        "status": account.status.value,
        "created_at": account.created_at,
        "msisdn": _text(ids.msisdn),
        "imsi": _text(ids.imsi),
        "iccid": _text(ids.iccid),
        "imei": _text(ids.imei),
        "cpe_serial": ids.cpe.serial if ids.cpe else None,
        "cpe_port": ids.cpe.port if ids.cpe else None,
        "cpe_port_type": ids.cpe.port_type if ids.cpe else None,
        "static_ip": _text(ids.static_ip),
        "static_ip_address": str(ids.static_ip.address) if ids.static_ip else None,
        "aliases": sorted(ids.aliases),
        "add_ons": [_add_on_to_json(a) for a in account.add_ons],
        "custom_fields": dict(account.custom_fields),
        "location": account.location,
        "location_changed_at": account.location_changed_at,
        "location_block_lifted": account.location_block_lifted,
    }


def _identifiers_of(
    msisdn: str | None,
    imsi: str | None,
    iccid: str | None,
    imei: str | None,
    aliases: tuple[str, ...],
    serial: str | None,
    port: Any,
    port_type: Any,
    static_ip: str | None,
) -> Identifiers:
    return Identifiers(
        msisdn=Msisdn(msisdn) if msisdn else None,
        imsi=Imsi(imsi) if imsi else None,
        iccid=Iccid(iccid) if iccid else None,
        imei=Imei(imei) if imei else None,
        aliases=frozenset(aliases),
        cpe=CpeDevice(serial, port, port_type) if serial else None,
        static_ip=StaticIp.parse(static_ip) if static_ip else None,
    )


_identifiers = Interned(_identifiers_of)


def account_from_row(row: Mapping[Any, Any]) -> Account:
    identifiers = _identifiers(
        row["msisdn"],
        row["imsi"],
        row["iccid"],
        row["imei"],
        tuple(row["aliases"]),
        row["cpe_serial"],
        row["cpe_port"],
        row["cpe_port_type"],
        row["static_ip"],
    )
    return Account(
        id=row["id"],
        customer_id=row["customer_id"],
        product_code=row["product_code"],
        created_at=row["created_at"],
        status=AccountStatus(row["status"]),
        add_ons=[_add_on_from_json(a) for a in row["add_ons"]],
        identifiers=identifiers,
        custom_fields=dict(row["custom_fields"]),
        location=row["location"],
        location_changed_at=row["location_changed_at"],
        location_block_lifted=row["location_block_lifted"],
    )


class SqlAccountRepository(Repository):
    """Accounts in ``accounts``, their aliases in ``account_aliases`` and add-ons
    in ``add_on_assignments``. An identifier already used by another account
    is refused with ``DuplicateIdentifier``: checked before writing (for a
    precise message) and enforced by unique constraints (for races)."""

    # The row of every account handed out, as it was then: built from the
    # account, or (loaded) kept as read and built only if a save needs it, for
    # the charging path loads many accounts and saves none.
    _seen: dict[int, tuple[Account, Mapping[Any, Any]]]

    def __init__(
        self,
        connection: AsyncConnection,
        catalogue_version: Callable[[int | None], None] | None = None,
    ) -> None:
        super().__init__(connection)
        self._seen = {}
        self._read_with_sessions: dict[str, Mapping[Any, Any]] = {}
        # told the catalogue's version when a lookup of many reads it
        self._catalogue_version = catalogue_version

    def forget(self) -> None:
        """Drop the identity map (after a rollback the rows it holds are stale)."""
        self._seen.clear()
        self._read_with_sessions.clear()

    def read_with_sessions(self, rows: Sequence[Mapping[Any, Any]]) -> None:
        """Rows of accounts read moments ago in this unit of work with their
        charging sessions (one statement for both): the next ``get_many`` of
        these ids hands them out instead of reading them again, once."""
        for row in rows:
            self._read_with_sessions[row["id"]] = row

    def _remember(self, account: Account, row: Mapping[Any, Any]) -> Account:
        self._seen[id(account)] = (account, row)
        return account

    def _loaded(self, row: Mapping[Any, Any]) -> Account:
        """The account of a row read, remembered with the row."""
        return self._remember(account_from_row(row), row)

    def _before(self, account: Account) -> dict[str, Any] | None:
        seen = self._seen.get(id(account))
        if seen is None:
            return None
        row = seen[1]
        # a row as read: what ``account_row`` gave for it when it was loaded
        return row if isinstance(row, dict) else account_row(account_from_row(row))

    async def add(self, account: Account) -> None:
        await self.add_many((account,))

    async def add_many(self, accounts: Sequence[Account]) -> None:
        if not accounts:
            return
        rows = [account_row(account) for account in accounts]
        await self._refuse_identifiers_held(_new_identifiers(rows))
        async with _duplicates_refused():
            # One executemany per table (a plain execute for one row).
            await self._execute(_INSERT, rows)
            await self._insert_children(
                account_aliases, [alias for row in rows for alias in _alias_rows(row)]
            )
            await self._insert_children(
                add_on_assignments,
                [assignment for account in accounts for assignment in _add_on_rows(account)],
            )
        for account, row in zip(accounts, rows, strict=True):
            self._remember(account, row)

    async def save(self, account: Account) -> None:
        row = account_row(account)
        before = self._before(account)
        if before == row:
            return
        identifiers_changed = before is None or any(
            before[column] != row[column] for column, _ in _UNIQUE_IDENTIFIERS
        )
        aliases_changed = before is None or before["aliases"] != row["aliases"]
        if identifiers_changed or aliases_changed:
            await self._refuse_taken_identifiers(row)
        async with _duplicates_refused():
            values = {k: v for k, v in row.items() if k != "id"}
            result = await self._execute(
                sa.update(accounts).where(accounts.c.id == account.id).values(**values)
            )
            if result.rowcount == 0:
                raise NotFound(f"account {account.id} does not exist")
            if aliases_changed:
                await self._execute(
                    sa.delete(account_aliases).where(account_aliases.c.account_id == account.id)
                )
                await self._insert_children(account_aliases, _alias_rows(row))
            if before is None or before["add_ons"] != row["add_ons"]:
                await self._execute(
                    sa.delete(add_on_assignments).where(
                        add_on_assignments.c.account_id == account.id
                    )
                )
                await self._insert_children(add_on_assignments, _add_on_rows(account))
        self._remember(account, row)

    async def _insert_children(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self._execute(sa.insert(table), rows)

    async def _refuse_identifiers_held(self, new: dict[str, dict[str, str]]) -> None:
        """Raise ``DuplicateIdentifier`` naming the first of the ``new``
        account ids and identifiers (see ``_new_identifiers``) that an
        existing account holds."""
        a = accounts.c
        alias = account_aliases.c
        # what people call it -> (the column holding it, the column naming its holder)
        columns: dict[str, tuple[sa.ColumnElement[str], sa.ColumnElement[str]]] = {
            "account id": (a.id, a.id),
            **{label: (a[column], a.id) for column, label in _UNIQUE_IDENTIFIERS},
            "alias": (alias.alias, alias.account_id),
        }
        probes = [
            (
                len(chunk),
                sa.select(sa.literal(label).label("what"), holder, column).where(column.in_(chunk)),
            )
            for label, (column, holder) in columns.items()
            for chunk in _chunks(list(new[label]), _PROBE_VALUES)
        ]
        # Each value is one index lookup; probes share a statement up to
        # _PROBE_VALUES values, and the first statement that finds anything decides.
        batch: list[sa.Select[Any]] = []
        size = 0
        for index, (count, probe) in enumerate(probes):
            batch.append(probe)
            size += count
            if size < _PROBE_VALUES and index < len(probes) - 1:
                continue
            statement = batch[0] if len(batch) == 1 else sa.union_all(*batch)
            taken = (await self._execute(statement.limit(1))).first()
            if taken is not None:
                what, holder_id, value = taken
                raise DuplicateIdentifier(
                    f"{what} of account {new[what][value]} is already used by {holder_id}"
                )
            batch, size = [], 0

    async def _refuse_taken_identifiers(self, row: dict[str, Any]) -> None:
        """Raise ``DuplicateIdentifier`` naming the first identifier of the
        existing account ``row`` that another account holds."""
        a = accounts.c
        probes: list[sa.Select[Any]] = []
        for column, label in _UNIQUE_IDENTIFIERS:
            if row[column] is not None:
                probes.append(
                    sa.select(sa.literal(label).label("what"), a.id).where(
                        a[column] == row[column], a.id != row["id"]
                    )
                )
        if row["aliases"]:
            probes.append(
                sa.select(sa.literal("alias").label("what"), account_aliases.c.account_id).where(
                    account_aliases.c.alias.in_(row["aliases"]),
                    account_aliases.c.account_id != row["id"],
                )
            )
        if not probes:
            return
        statement = probes[0] if len(probes) == 1 else sa.union_all(*probes)
        taken = (await self._execute(statement.limit(1))).first()
        if taken is not None:
            what, holder = taken
            raise DuplicateIdentifier(f"{what} of account {row['id']} is already used by {holder}")

    async def get(self, account_id: str, *, lock: bool = False) -> Account | None:
        row = (await self._execute(_BY_ID(lock), {"account_id": account_id})).mappings().first()
        if row is None:
            return None
        return self._loaded(row)

    async def get_many(self, account_ids: Sequence[str]) -> dict[str, Account]:
        return await self.by_identifiers(IdentifierKind.ACCOUNT_ID, account_ids)

    async def by_identifiers(
        self, kind: IdentifierKind, values: Sequence[str]
    ) -> dict[str, Account]:
        kind = IdentifierKind(kind)
        if kind not in _BY_COLUMN:
            # IMEI, alias, CPE and IP are rare in charging and may be shared:
            # one lookup each, with by_identifier's rules
            shared: dict[str, Account] = {}
            for value in dict.fromkeys(values):
                account = await self.by_identifier(kind, value)
                if account is not None:
                    shared[value] = account
            return shared
        normal: dict[str, list[str]] = {}  # as stored -> as asked
        for value in dict.fromkeys(values):
            try:
                normal.setdefault(_NORMAL[kind](value), []).append(value)
            except (InvalidIdentifier, ValueError):
                continue  # a malformed identifier names no account
        found: dict[str, Account] = {}
        wanted = sorted(normal)
        if kind is IdentifierKind.ACCOUNT_ID and self._read_with_sessions:
            ready = self._read_with_sessions
            served = [w for w in wanted if w in ready]
            for account_id in served:
                account = self._loaded(ready.pop(account_id))
                for asked in normal[account_id]:
                    found[asked] = account
            wanted = [w for w in wanted if w not in served]
        column = {
            IdentifierKind.ACCOUNT_ID: "id",
            IdentifierKind.MSISDN: "msisdn",
            IdentifierKind.IMSI: "imsi",
            IdentifierKind.ICCID: "iccid",
        }[kind]
        for start in range(0, len(wanted), _PROBE_VALUES):
            result = await self._execute(
                _BY_COLUMN[kind](self._dialect), {"values": wanted[start : start + _PROBE_VALUES]}
            )
            rows = result.mappings().all()
            if rows and self._catalogue_version is not None:
                self._catalogue_version(rows[0]["catalogue_version"])
            for row in rows:
                account = self._loaded(row)
                for asked in normal.get(row[column], ()):
                    found[asked] = account
        return found

    async def _one(self, statement: sa.Select[Any]) -> Account | None:
        row = (await self._execute(statement.limit(1))).mappings().first()
        if row is None:
            return None
        return self._loaded(row)

    async def by_identifier(self, kind: IdentifierKind, value: str) -> Account | None:
        kind = IdentifierKind(kind)
        if kind is IdentifierKind.ACCOUNT_ID:
            return await self.get(value)
        a = accounts.c
        try:
            condition = _identifier_condition(kind, value)
        except (InvalidIdentifier, ValueError):
            return None  # a malformed identifier names no account
        if kind is IdentifierKind.ALIAS:
            statement = sa.select(accounts).join(
                account_aliases, account_aliases.c.account_id == a.id
            )
        else:
            statement = sa.select(accounts)
        # IMEI and CPE may be shared: the oldest id answers, deterministically.
        return await self._one(statement.where(condition).order_by(a.id))

    async def for_customer(self, customer_id: str) -> list[Account]:
        statement = (
            sa.select(accounts).where(accounts.c.customer_id == customer_id).order_by(accounts.c.id)
        )
        rows = (await self._execute(statement)).mappings().all()
        return [self._loaded(row) for row in rows]

    async def for_customers(self, customer_ids: Sequence[str]) -> dict[str, list[Account]]:
        wanted = list(dict.fromkeys(customer_ids))
        result: dict[str, list[Account]] = {customer_id: [] for customer_id in wanted}
        # chunks keep the IN list under every driver's parameter limit
        for start in range(0, len(wanted), 1000):
            statement = (
                sa.select(accounts)
                .where(accounts.c.customer_id.in_(wanted[start : start + 1000]))
                .order_by(accounts.c.id)
            )
            for row in (await self._execute(statement)).mappings().all():
                account = self._loaded(row)
                result[account.customer_id].append(account)
        return result

    async def with_add_ons_ending(
        self, before: datetime, limit: int = 500, after: str | None = None
    ) -> list[str]:
        # "<=": an add-on whose end is exactly now has expired (AddOnAssignment.has_expired).
        statement = (
            sa.select(add_on_assignments.c.account_id)
            .join(accounts, accounts.c.id == add_on_assignments.c.account_id)
            .where(
                add_on_assignments.c.effective_to <= before,
                accounts.c.status != AccountStatus.TERMINATED.value,
            )
            .distinct()
            .order_by(add_on_assignments.c.account_id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(add_on_assignments.c.account_id > after)
        return list((await self._execute(statement)).scalars().all())


def _identifier_condition(kind: IdentifierKind, value: str) -> sa.ColumnElement[bool]:
    """The WHERE clause finding ``value`` (normalised as the domain does)."""
    a = accounts.c
    if kind is IdentifierKind.MSISDN:
        return a.msisdn == str(Msisdn(value))
    if kind is IdentifierKind.IMSI:
        return a.imsi == str(Imsi(value))
    if kind is IdentifierKind.ICCID:
        return a.iccid == str(Iccid(value))
    if kind is IdentifierKind.IMEI:
        return a.imei == str(Imei(value))
    if kind is IdentifierKind.ALIAS:
        return account_aliases.c.alias == value.strip()
    if kind is IdentifierKind.CPE_SERIAL:
        device = CpeDevice.parse(value)
        condition = a.cpe_serial == device.serial
        if device.port is not None:
            condition = sa.and_(condition, a.cpe_port == device.port)
        return condition
    if kind is IdentifierKind.STATIC_IP:
        # The address part only: "10.1.2.3", "10.1.2.3/24" and "10.1.2.3/32" all match.
        return a.static_ip_address == str(ip_interface(value.strip()).ip)
    raise ValueError(f"unknown identifier kind {kind!r}")


@asynccontextmanager
async def _duplicates_refused() -> AsyncIterator[None]:
    """Turns a unique violation on an identifier (a concurrent transaction
    took it between our check and our write) into ``DuplicateIdentifier``."""
    try:
        yield
    except IntegrityError as exc:
        for table, column in (
            ("accounts", "msisdn"),
            ("accounts", "imsi"),
            ("accounts", "iccid"),
            ("accounts", "id"),
            ("account_aliases", "alias"),
        ):
            if unique_violation(exc, table, column):
                raise DuplicateIdentifier(f"{column} is already used by another account") from exc
        raise
