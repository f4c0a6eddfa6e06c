"""The session codec's fast paths (snapshot text built from pieces, the
decoded copy a process keeps instead of the row) give exactly what the plain
encoder and decoder give."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import timedelta

from store_builders import MIB, NOW
from test_session_store import Subscriber, charge_in_memory, data, voice

from ratel.adapters.db.codec import (
    ANSWERS_KEPT_PER_SUB_SESSION,
    _kept_keys,
    session_from_snapshot,
    session_snapshot,
    snapshot_text,
    stored_copy,
)
from ratel.adapters.db.engine import compact_json
from ratel.adapters.db.sessions import SessionCache
from ratel.domain.charging import CreditControlSession


def long_session(sub: Subscriber) -> CreditControlSession:
    """More answers than are kept, two streams, two sub-sessions."""
    session = CreditControlSession.open("s-1", sub.account, sub.customer, NOW)
    charge_in_memory(session, sub.context(), 0, [data(), voice()], end=False)
    for n in range(1, ANSWERS_KEPT_PER_SUB_SESSION + 4):
        charge_in_memory(session, sub.context(), n, [data(used=MIB)], end=False)
    session.reserve(sub.context(), 0, [data(rg=11)], NOW, sub_session="b")
    return session


def encoded(session: CreditControlSession) -> object:
    """The plain encoder's document (as the database reads the text)."""
    return json.loads(compact_json(session_snapshot(session)))


def from_row(
    session: CreditControlSession, text: str, texts: object = None
) -> CreditControlSession:
    return session_from_snapshot(
        id=session.id,
        account_id=session.account_id,
        customer_id=session.customer_id,
        currency=session.currency,
        state=session.state.value,
        started_at=session.started_at,
        last_activity=session.last_activity,
        snapshot=json.loads(text),
        answer_texts=texts,  # type: ignore[arg-type]
    )


def test_the_snapshot_text_is_the_snapshot_encoded() -> None:
    sub = Subscriber("50")
    session = long_session(sub)
    text, texts = snapshot_text(session, compact_json)
    assert json.loads(text) == encoded(session)
    assert len(texts) == ANSWERS_KEPT_PER_SUB_SESSION + 1
    # read back (answers not decoded, their texts known), charged again
    loaded = from_row(session, text, texts)
    charge_in_memory(loaded, sub.context(), 40, [data(used=MIB)], end=False)
    again, _ = snapshot_text(loaded, compact_json)
    assert json.loads(again) == encoded(loaded)
    # the encoded request and rate are remembered, not stale
    loaded.streams[next(iter(loaded.streams))].closed = True
    assert json.loads(snapshot_text(loaded, compact_json)[0]) == encoded(loaded)


def test_the_kept_copy_is_what_a_reader_of_the_row_gets() -> None:
    sub = Subscriber("50")
    session = long_session(sub)
    stream = session.streams[next(iter(session.streams))]
    assert stream.rated is not None
    # a time zone without time-of-day periods is not stored: nor is it kept
    stream.rated = replace(stream.rated, time_zone="Europe/Paris")
    text, texts = snapshot_text(session, compact_json)
    kept = stored_copy(session, texts)
    assert session.stored_answer(1) is not None
    handed_out = stored_copy(kept)
    assert handed_out == from_row(session, text)
    assert handed_out.stored_answer(1) is None  # only the kept answers, as in the row
    assert handed_out.streams[stream.request.key].rated == replace(stream.rated, time_zone="UTC")
    buckets = copy.deepcopy(sub.buckets)
    # a copy changed by a request leaves the kept one as it was
    charge_in_memory(
        handed_out, sub.context(buckets=copy.deepcopy(buckets)), 40, [data(used=MIB)], end=False
    )
    assert handed_out != from_row(session, text)
    assert stored_copy(kept) == from_row(session, text)
    # a kept copy of a session read from its row (answers not decoded) too
    read = from_row(session, text)
    kept_read = stored_copy(read)
    charge_in_memory(
        read, sub.context(buckets=copy.deepcopy(buckets)), 41, [data(used=MIB)], end=False
    )
    assert stored_copy(kept_read) == from_row(session, text)
    assert snapshot_text(stored_copy(kept), compact_json)[0] == text


def test_the_kept_answers_are_the_highest_numbers_of_each_sub_session() -> None:
    def plain(keys: list[tuple[str, int]], n: int) -> list[tuple[str, int]]:
        highest = {
            key for key in keys if sorted(k for s, k in keys if s == key[0])[-n:].count(key[1])
        }
        return [key for key in keys if key in highest]

    numbers = [7, 3, 12, 0, 5, 9, 1, 30, 2, 11, 4]
    cases = [
        [("", n) for n in numbers],
        [(sub, n) for n in numbers for sub in ("", "b")],
        [("", n) for n in numbers] + [("c", 1)],
        [],
    ]
    for keys in cases:
        for n in (1, 3, 11, 16):
            answers = dict.fromkeys(keys)
            assert _kept_keys(answers, n) == plain(keys, n), (keys, n)  # type: ignore[arg-type]


def test_the_session_cache_hands_a_copy_out_once_and_for_its_version_only() -> None:
    sub = Subscriber("50")
    session = long_session(sub)
    cache = SessionCache()
    kept = stored_copy(session)
    cache.put(3, kept)
    assert cache.take(session.id, 3, session.last_activity + timedelta(seconds=1)) is None
    assert cache.take(session.id, 3, session.last_activity) is None  # the stale one is gone
    cache.put(3, kept)
    assert cache.take(session.id, 4, session.last_activity) is None
    cache.put(3, kept)
    taken = cache.take(session.id, 3, session.last_activity)
    assert taken is kept
    assert cache.take(session.id, 3, session.last_activity) is None  # its taker's now
