"""Records written once and read many times: xDRs, the balance journal,
vouchers and the outbox of domain events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from ratel.adapters.db.codec import xdr_line_from_json, xdr_line_to_json
from ratel.adapters.db.engine import compact_json
from ratel.adapters.db.fast import fast
from ratel.adapters.db.statements import Repository, lockable
from ratel.adapters.db.tables import balance_transactions, outbox, vouchers, xdrs
from ratel.adapters.db.types import to_storage
from ratel.domain.charging import Xdr
from ratel.domain.errors import ConcurrentChange
from ratel.domain.events import DomainEvent
from ratel.domain.ledger import BalanceTransaction, TransactionReason
from ratel.domain.money import Money
from ratel.domain.voucher import Voucher, VoucherStatus

# -- xDRs ---------------------------------------------------------------------------


def _xdr_from_row(row: RowMapping) -> Xdr:
    return Xdr(
        id=row["id"],
        session_id=row["session_id"],
        account_id=row["account_id"],
        customer_id=row["customer_id"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        lines=tuple(xdr_line_from_json(line) for line in row["lines"]),
        charge=Money(row["charge"], row["currency"]),
        sub_sessions=tuple(row["sub_sessions"]),
        cause=row["cause"],
    )


def _xdr_row(xdr: Xdr) -> dict[str, Any]:
    return {
        "id": xdr.id,
        "session_id": xdr.session_id,
        "account_id": xdr.account_id,
        "customer_id": xdr.customer_id,
        "started_at": xdr.started_at,
        "ended_at": xdr.ended_at,
        "charge": xdr.charge.amount,
        "currency": xdr.charge.currency,
        "cause": xdr.cause,
        "sub_sessions": list(xdr.sub_sessions),
        "lines": [xdr_line_to_json(line) for line in xdr.lines],
    }


# PostgreSQL: a batch's xDRs in one statement (arrays unnested), so that a
# ``together`` block sends them with the batch's other writes; RETURNING
# names the sessions whose xDR was written.
_PG_XDRS = fast(
    sa.text(
        """
        INSERT INTO xdrs (id, session_id, account_id, customer_id, started_at, ended_at,
                          charge, currency, cause, sub_sessions, lines)
        SELECT v.id, v.session_id, v.account_id, v.customer_id, v.started_at, v.ended_at,
               v.charge, v.currency, v.cause, CAST(v.sub_sessions AS JSONB),
               CAST(v.lines AS JSONB)
        FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:session_ids AS VARCHAR[]),
                    CAST(:account_ids AS VARCHAR[]), CAST(:customer_ids AS VARCHAR[]),
                    CAST(:started AS TIMESTAMPTZ[]), CAST(:ended AS TIMESTAMPTZ[]),
                    CAST(:charges AS NUMERIC[]), CAST(:currencies AS VARCHAR[]),
                    CAST(:causes AS VARCHAR[]), CAST(:sub_sessions AS TEXT[]),
                    CAST(:lines AS TEXT[]))
             AS v(id, session_id, account_id, customer_id, started_at, ended_at, charge,
                  currency, cause, sub_sessions, lines)
        ON CONFLICT DO NOTHING
        RETURNING session_id
        """
    )
)


class SqlXdrRepository(Repository):
    """xDRs in ``xdrs``; ``session_id`` is unique, so a session never has two."""

    async def add_many(self, records: Sequence[Xdr]) -> None:
        if not records:
            return

        async def written(session_ids: list[Any]) -> None:
            stored = set(session_ids)
            clashed = [x for x in records if x.session_id not in stored]
            if clashed:
                raise ConcurrentChange(
                    f"sessions {[x.session_id for x in clashed]} already have an xDR "
                    "(or their xDR ids exist)"
                )

        rows = [_xdr_row(x) for x in records]
        if self._postgresql:
            await self._write(
                _PG_XDRS,
                {
                    "ids": [r["id"] for r in rows],
                    "session_ids": [r["session_id"] for r in rows],
                    "account_ids": [r["account_id"] for r in rows],
                    "customer_ids": [r["customer_id"] for r in rows],
                    "started": self._times(xdrs.c.started_at, [r["started_at"] for r in rows]),
                    "ended": self._times(xdrs.c.ended_at, [r["ended_at"] for r in rows]),
                    "charges": [to_storage(r["charge"]) for r in rows],
                    "currencies": [r["currency"] for r in rows],
                    "causes": [r["cause"] for r in rows],
                    "sub_sessions": [compact_json(r["sub_sessions"]) for r in rows],
                    "lines": [compact_json(r["lines"]) for r in rows],
                },
                written,
            )
            return
        # SQLite: RETURNING with many rows, sent as multi-row VALUES
        # ("insertmanyvalues"); the ids returned tell which were written.
        statement = self._insert(xdrs).on_conflict_do_nothing().returning(xdrs.c.session_id)
        result = await self._execute(statement, rows)
        await written(list(result.scalars().all()))

    async def add(self, xdr: Xdr) -> None:
        statement = (
            self._insert(xdrs)
            .values(
                id=xdr.id,
                session_id=xdr.session_id,
                account_id=xdr.account_id,
                customer_id=xdr.customer_id,
                started_at=xdr.started_at,
                ended_at=xdr.ended_at,
                charge=xdr.charge.amount,
                currency=xdr.charge.currency,
                cause=xdr.cause,
                sub_sessions=list(xdr.sub_sessions),
                lines=[xdr_line_to_json(line) for line in xdr.lines],
            )
            .on_conflict_do_nothing()
        )
        if (await self._execute(statement)).rowcount == 0:
            # Two nodes closed the same session at once: the first one's xDR
            # stands; retrying finds the session closed and its stored answer.
            raise ConcurrentChange(
                f"session {xdr.session_id} already has an xDR (or {xdr.id} exists)"
            )

    async def get(self, xdr_id: str) -> Xdr | None:
        row = (await self._execute(sa.select(xdrs).where(xdrs.c.id == xdr_id))).mappings().first()
        return None if row is None else _xdr_from_row(row)

    async def for_account(
        self,
        account_id: str,
        *,
        before: datetime | None = None,
        before_id: str | None = None,
        limit: int = 100,
    ) -> list[Xdr]:
        """Newest first, after the xDR (``before``, ``before_id``) in that
        order: ended earlier, or at the same time with a smaller id (xDRs
        that end in the same instant are none of them skipped)."""
        c = xdrs.c
        statement = (
            sa.select(xdrs)
            .where(c.account_id == account_id)
            .order_by(c.ended_at.desc(), c.id.desc())
            .limit(limit)
        )
        if before is not None and before_id is not None:
            statement = statement.where(
                sa.or_(c.ended_at < before, sa.and_(c.ended_at == before, c.id < before_id))
            )
        elif before is not None:
            statement = statement.where(c.ended_at < before)
        return [_xdr_from_row(r) for r in (await self._execute(statement)).mappings().all()]

    async def for_customer(
        self,
        customer_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after: datetime | None = None,
        after_id: str | None = None,
        limit: int | None = None,
    ) -> list[Xdr]:
        """Oldest first; with ``after``, only those after the xDR (``after``,
        ``after_id``) in that order: ended later, or at the same time with a
        greater id (a keyset page)."""
        c = xdrs.c
        statement = sa.select(xdrs).where(c.customer_id == customer_id).order_by(c.ended_at, c.id)
        if limit is not None:
            statement = statement.limit(limit)
        if since is not None:
            statement = statement.where(c.ended_at >= since)
        if until is not None:
            statement = statement.where(c.ended_at < until)
        if after is not None and after_id is not None:
            statement = statement.where(
                sa.or_(c.ended_at > after, sa.and_(c.ended_at == after, c.id > after_id))
            )
        elif after is not None:
            statement = statement.where(c.ended_at > after)
        return [_xdr_from_row(r) for r in (await self._execute(statement)).mappings().all()]


# -- balance journal ------------------------------------------------------------------


_TRANSACTION_INSERT = sa.insert(balance_transactions)
# PostgreSQL: a batch's journal in one statement, the arrays unnested.
_PG_TRANSACTIONS = fast(
    sa.text(
        """
        INSERT INTO balance_transactions (id, customer_id, account_id, amount, balance_after,
                                          currency, reason, reference, ledger_code, created_at)
        SELECT * FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:customer_ids AS VARCHAR[]),
                             CAST(:account_ids AS VARCHAR[]), CAST(:amounts AS NUMERIC[]),
                             CAST(:balances AS NUMERIC[]), CAST(:currencies AS VARCHAR[]),
                             CAST(:reasons AS VARCHAR[]), CAST(:references AS VARCHAR[]),
                             CAST(:ledger_codes AS VARCHAR[]), CAST(:created AS TIMESTAMPTZ[]))
        RETURNING id
        """
    )
)


def _transaction_row(transaction: BalanceTransaction) -> dict[str, Any]:
    return {
        "id": transaction.id,
        "customer_id": transaction.customer_id,
        "account_id": transaction.account_id,
        "amount": transaction.amount.amount,
        "balance_after": transaction.balance_after.amount,
        "currency": transaction.amount.currency,
        "reason": transaction.reason.value,
        "reference": transaction.reference,
        "ledger_code": transaction.ledger_code,
        "created_at": transaction.created_at,
    }


class SqlTransactionRepository(Repository):
    """The balance journal in ``balance_transactions``."""

    async def add(self, transaction: BalanceTransaction) -> None:
        await self.add_many((transaction,))

    async def add_many(self, transactions: Sequence[BalanceTransaction]) -> None:
        if not transactions:
            return
        if self._postgresql:
            await self._write(
                _PG_TRANSACTIONS,
                {
                    "ids": [t.id for t in transactions],
                    "customer_ids": [t.customer_id for t in transactions],
                    "account_ids": [t.account_id for t in transactions],
                    "amounts": [to_storage(t.amount.amount) for t in transactions],
                    "balances": [to_storage(t.balance_after.amount) for t in transactions],
                    "currencies": [t.amount.currency for t in transactions],
                    "reasons": [t.reason.value for t in transactions],
                    "references": [t.reference for t in transactions],
                    "ledger_codes": [t.ledger_code for t in transactions],
                    "created": self._times(
                        balance_transactions.c.created_at, [t.created_at for t in transactions]
                    ),
                },
                _inserted,
            )
            return
        # SQLite: one executemany (a plain execute for one row)
        await self._execute(_TRANSACTION_INSERT, [_transaction_row(t) for t in transactions])

    async def for_customer(
        self,
        customer_id: str,
        *,
        limit: int = 100,
        reasons: Sequence[TransactionReason] | None = None,
        reference: str | None = None,
        before: datetime | None = None,
        before_id: str | None = None,
    ) -> list[BalanceTransaction]:
        """Newest first; with ``before``, only those after the transaction
        (``before``, ``before_id``) in that order: made earlier, or at the same
        time with a smaller id (a keyset page: none skipped, none repeated)."""
        c = balance_transactions.c
        statement = sa.select(balance_transactions).where(c.customer_id == customer_id)
        if reasons is not None:
            statement = statement.where(c.reason.in_([r.value for r in reasons]))
        if reference is not None:
            statement = statement.where(c.reference == reference)
        if before is not None and before_id is not None:
            statement = statement.where(
                sa.or_(c.created_at < before, sa.and_(c.created_at == before, c.id < before_id))
            )
        elif before is not None:
            statement = statement.where(c.created_at < before)
        statement = statement.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return [
            BalanceTransaction(
                id=row["id"],
                customer_id=row["customer_id"],
                amount=Money(row["amount"], row["currency"]),
                balance_after=Money(row["balance_after"], row["currency"]),
                reason=TransactionReason(row["reason"]),
                created_at=row["created_at"],
                reference=row["reference"],
                ledger_code=row["ledger_code"],
                account_id=row["account_id"],
            )
            for row in (await self._execute(statement)).mappings().all()
        ]


# -- vouchers -------------------------------------------------------------------------


def _voucher_from_row(row: RowMapping) -> Voucher:
    return Voucher(
        id=row["id"],
        code_hash=row["code_hash"],
        value=Money(row["value"], row["currency"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        batch=row["batch"],
        status=VoucherStatus(row["status"]),
        redeemed_by=row["redeemed_by"],
        redeemed_at=row["redeemed_at"],
    )


class SqlVoucherRepository(Repository):
    """Vouchers in ``vouchers``, found by the hash of their code (unique)."""

    async def add(self, voucher: Voucher) -> None:
        await self._execute(
            sa.insert(vouchers).values(
                id=voucher.id,
                code_hash=voucher.code_hash,
                value=voucher.value.amount,
                currency=voucher.value.currency,
                created_at=voucher.created_at,
                expires_at=voucher.expires_at,
                batch=voucher.batch,
                status=voucher.status.value,
                redeemed_by=voucher.redeemed_by,
                redeemed_at=voucher.redeemed_at,
            )
        )

    async def by_code_hash(self, code_hash: str, *, lock: bool = False) -> Voucher | None:
        statement = lockable(sa.select(vouchers).where(vouchers.c.code_hash == code_hash), lock)
        row = (await self._execute(statement)).mappings().first()
        return None if row is None else _voucher_from_row(row)

    async def page(
        self,
        *,
        batch: str | None = None,
        status: VoucherStatus | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[Voucher]:
        c = vouchers.c
        statement = sa.select(vouchers)
        if batch is not None:
            statement = statement.where(c.batch == batch)
        if status is not None:
            statement = statement.where(c.status == status.value)
        if after_id is not None:
            statement = statement.where(c.id > after_id)
        statement = statement.order_by(c.id).limit(limit)
        return [_voucher_from_row(row) for row in (await self._execute(statement)).mappings()]

    async def save(self, voucher: Voucher) -> None:
        await self._execute(
            sa.update(vouchers)
            .where(vouchers.c.id == voucher.id)
            .values(
                status=voucher.status.value,
                redeemed_by=voucher.redeemed_by,
                redeemed_at=voucher.redeemed_at,
                expires_at=voucher.expires_at,
                batch=voucher.batch,
            )
        )


# -- outbox ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the outbox holds it (the ``OutboxEntry`` of the port)."""

    id: int
    event_type: str
    aggregate: str
    aggregate_id: str
    payload: dict[str, object]
    occurred_at: datetime
    published_at: datetime | None = None


def _entry(row: RowMapping) -> StoredEvent:
    return StoredEvent(
        id=row["id"],
        event_type=row["event_type"],
        aggregate=row["aggregate"],
        aggregate_id=row["aggregate_id"],
        payload=dict(row["payload"]),
        occurred_at=row["occurred_at"],
        published_at=row["published_at"],
    )


_OUTBOX_INSERT = sa.insert(outbox)
# PostgreSQL: a batch's events in one statement; ids are taken in the
# list's order (ORDER BY the position), so events keep their order.
_PG_OUTBOX = fast(
    sa.text(
        """
        INSERT INTO outbox (event_type, aggregate, aggregate_id, payload, occurred_at)
        SELECT v.event_type, v.aggregate, v.aggregate_id, CAST(v.payload AS JSONB), v.occurred_at
        FROM unnest(CAST(:types AS VARCHAR[]), CAST(:aggregates AS VARCHAR[]),
                    CAST(:aggregate_ids AS VARCHAR[]), CAST(:payloads AS TEXT[]),
                    CAST(:occurred AS TIMESTAMPTZ[]))
             WITH ORDINALITY AS v(event_type, aggregate, aggregate_id, payload, occurred_at, n)
        ORDER BY v.n
        RETURNING id
        """
    )
)


async def _inserted(ids: list[Any]) -> None:
    """Nothing to check after an insert: a failure raises."""


class SqlOutbox(Repository):
    """Domain events in ``outbox``, written in the transaction of the change
    that raised them. ``pending`` locks the rows it returns and skips rows
    another worker holds (PostgreSQL ``FOR UPDATE SKIP LOCKED``), so several
    workers share the backlog without handing an event on twice."""

    async def add(self, events: Sequence[DomainEvent]) -> None:
        if not events:
            return
        if self._postgresql:
            await self._write(
                _PG_OUTBOX,
                {
                    "types": [event.event_type for event in events],
                    "aggregates": [event.aggregate for event in events],
                    "aggregate_ids": [event.aggregate_id for event in events],
                    "payloads": [compact_json(event.payload()) for event in events],
                    "occurred": self._times(
                        outbox.c.occurred_at, [event.occurred_at for event in events]
                    ),
                },
                _inserted,
            )
            return
        rows: list[dict[str, Any]] = [
            {
                "event_type": event.event_type,
                "aggregate": event.aggregate,
                "aggregate_id": event.aggregate_id,
                "payload": event.payload(),
                "occurred_at": event.occurred_at,
                "published_at": None,
            }
            for event in events
        ]
        # One executemany (a plain execute for one event); ids follow the list
        # order, so events keep their order.
        await self._execute(_OUTBOX_INSERT, rows)

    async def pending(self, limit: int = 100) -> list[StoredEvent]:
        c = outbox.c
        statement = lockable(
            sa.select(outbox).where(c.published_at.is_(None)).order_by(c.id).limit(limit),
            lock=True,
            skip_locked=True,
        )
        return [_entry(row) for row in (await self._execute(statement)).mappings().all()]

    async def after(self, last_id: int, limit: int = 200) -> list[StoredEvent]:
        c = outbox.c
        statement = sa.select(outbox).where(c.id > last_id).order_by(c.id).limit(limit)
        return [_entry(row) for row in (await self._execute(statement)).mappings().all()]

    async def with_ids(self, ids: Sequence[int]) -> list[StoredEvent]:
        if not ids:
            return []
        statement = sa.select(outbox).where(outbox.c.id.in_(list(ids))).order_by(outbox.c.id)
        return [_entry(row) for row in (await self._execute(statement)).mappings().all()]

    async def last_id(self) -> int:
        value = (await self._execute(sa.select(sa.func.max(outbox.c.id)))).scalar()
        return int(value or 0)

    async def mark_published(self, ids: Sequence[int], at: datetime) -> None:
        if ids:
            await self._execute(
                sa.update(outbox).where(outbox.c.id.in_(list(ids))).values(published_at=at)
            )

    async def recent(
        self, *, aggregate_id: str | None = None, before_id: int | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        c = outbox.c
        statement = sa.select(outbox).order_by(c.id.desc()).limit(limit)
        if aggregate_id is not None:
            statement = statement.where(c.aggregate_id == aggregate_id)
        if before_id is not None:
            statement = statement.where(c.id < before_id)
        return [_entry(row) for row in (await self._execute(statement)).mappings().all()]
