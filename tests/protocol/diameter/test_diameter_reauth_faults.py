"""Diameter server-initiated requests (RAR / ASR): a 5002 answer forgets the
session's peer, and a raised credit limit re-authorizes. Reuses the helpers
of test_diameter_reauth.py."""

from __future__ import annotations

import asyncio
import queue
from datetime import UTC, datetime, timedelta

import pytest
from gateway import Gateway
from test_diameter_reauth import drain, next_request, open_session

from ratel.adapters.diameter import codec
from ratel.container import Container
from ratel.domain.money import Money


async def test_an_raa_with_unknown_session_forgets_the_sessions_peer(
    ocs: Container, gw1: Gateway
) -> None:
    """The gateway answers the RAR with 5002 DIAMETER_UNKNOWN_SESSION_ID: it
    has no such session (it lost it, its CCR-T was lost). The peer note
    goes, so later top-ups, add-ons or blocks send it no RAR."""
    _, customer, session = await open_session(ocs, gw1)
    gw1.answer_code = codec.UNKNOWN_SESSION_ID
    try:
        await ocs.top_up()(customer, Money.of("10", "USD"), "card-1")
        rar = await next_request(gw1)
        assert codec.text(rar.avps, codec.SESSION_ID) == session
        for _ in range(30):  # let the RAA be handled
            await asyncio.sleep(0.1)
            if await ocs.diameter_session_peers().get(session) is None:
                break
        still_noted = await ocs.diameter_session_peers().get(session) is not None
        drain(gw1)
        await ocs.top_up()(customer, Money.of("10", "USD"), "card-2")
        again: list[str | None] = []
        try:
            repeat = await gw1.server_request(timeout=2)
            again.append(codec.text(repeat.avps, codec.SESSION_ID))
        except queue.Empty:
            pass
    finally:
        gw1.answer_code = codec.SUCCESS
        await asyncio.sleep(0.2)
        drain(gw1)
    assert not still_noted and not again, (
        f"after a 5002 RAA the peer note stays ({still_noted}) and the next "
        f"top-up sends another RAR to the unknown session: {again}"
    )


async def test_a_higher_credit_limit_sends_a_rar(ocs: Container, gw1: Gateway) -> None:
    """Raising the credit limit gives the customer money to spend, as a
    top-up does: the gateway (possibly in a Final-Unit redirect) must be
    told to re-authorize."""
    _, customer, session = await open_session(ocs, gw1)
    await ocs.set_credit_limit()(customer, Money.of("50", "USD"))
    try:
        rar = await gw1.server_request(timeout=3)
    except queue.Empty:
        pytest.fail("no RAR after the credit limit was raised")
    finally:
        await asyncio.sleep(0.2)
        drain(gw1)
    assert codec.text(rar.avps, codec.SESSION_ID) == session


async def test_a_quota_renewal_sends_one_rar_for_all_the_accounts_renewed_buckets(
    ocs: Container, gw1: Gateway
) -> None:
    """A new period's allowance is spending power, as a top-up is: a session
    whose quota ran out (in a Final-Unit redirect, or refused) must be told
    to ask again. The account's two buckets renew together: one RAR, not one
    per bucket."""
    account, _, session = await open_session(ocs, gw1)
    async with ocs.uow()() as uow:
        buckets = await uow.quotas.for_account(account, lock=True)
        for bucket in buckets:
            bucket.period_end = datetime.now(UTC) - timedelta(seconds=1)
        await uow.quotas.save(buckets)
        await uow.commit()
    assert len(buckets) == 2
    assert await ocs.housekeeping().renew_quotas() == 2
    try:
        rar = await gw1.server_request(timeout=3)
    except queue.Empty:
        pytest.fail("no RAR after the account's quota was renewed")
    assert codec.text(rar.avps, codec.SESSION_ID) == session
    with pytest.raises(queue.Empty):
        await gw1.server_request(timeout=1.5)
