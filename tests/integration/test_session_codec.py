"""The session codec's fast paths (snapshot text built from pieces, the
decoded copy a process keeps instead of the row) give exactly what the plain
encoder and decoder give."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from store_builders import MIB, NOW
from test_session_store import Subscriber, charge_in_memory, data, voice

from ratel.adapters.db.codec import (
    _PENDING,
    ANSWERS_KEPT_PER_SUB_SESSION,
    StoredAnswers,
    _answer_content,
    _content,
    _kept_keys,
    _numbers_text,
    answer_from_json,
    answer_to_json,
    session_from_snapshot,
    session_snapshot,
    snapshot_text,
    stored_copy,
)
from ratel.adapters.db.engine import compact_json
from ratel.adapters.db.sessions import SessionCache
from ratel.domain.catalogue import ExhaustionAction, Service, Unit
from ratel.domain.charging import (
    Answer,
    CreditControlSession,
    Denial,
    FinalUnitIndication,
    Grant,
    RequestKind,
    Xdr,
    XdrLine,
)
from ratel.domain.money import Money


def long_session(sub: Subscriber) -> CreditControlSession:
    """More answers than are kept, two streams, two sub-sessions."""
    session = CreditControlSession.open("s-1", sub.account, sub.customer, NOW)
    charge_in_memory(session, sub.context(), 0, [data(), voice()], end=False)
    for n in range(1, ANSWERS_KEPT_PER_SUB_SESSION + 4):
        # alike grants (a steady session), then others once the quota runs low
        wanted = MIB if n < ANSWERS_KEPT_PER_SUB_SESSION else 50 * MIB
        charge_in_memory(session, sub.context(), n, [data(used=MIB, requested=wanted)], end=False)
    session.reserve(sub.context(), 0, [data(rg=11)], NOW, sub_session="b")
    return session


def from_row(session: CreditControlSession, text: str) -> CreditControlSession:
    return session_from_snapshot(
        id=session.id,
        account_id=session.account_id,
        customer_id=session.customer_id,
        currency=session.currency,
        state=session.state.value,
        started_at=session.started_at,
        last_activity=session.last_activity,
        snapshot=json.loads(text),
    )


def test_the_snapshot_text_is_the_snapshot_in_fewer_bytes() -> None:
    sub = Subscriber("50")
    session = long_session(sub)
    written = snapshot_text(session, compact_json)
    plain = compact_json(session_snapshot(session))  # format 1: every answer in full
    assert from_row(session, written.text) == from_row(session, plain)
    document = json.loads(written.text)
    for part in ("streams", "last_request", "sub_sessions", "xdr"):  # as the plain encoder
        assert document[part] == json.loads(plain)[part]
    runs = [a for a in json.loads(written.text)["answers"] if "like" in a]
    assert sum(len(run["request_numbers"]) for run in runs) >= ANSWERS_KEPT_PER_SUB_SESSION - 6
    assert len(written.text) < 0.6 * len(plain)
    assert len(written.contents) == ANSWERS_KEPT_PER_SUB_SESSION + 1
    # read back (answers not decoded), charged again
    loaded = from_row(session, written.text)
    assert loaded == from_row(session, plain)
    charge_in_memory(loaded, sub.context(), 40, [data(used=MIB)], end=False)
    again = snapshot_text(loaded, compact_json).text
    assert from_row(loaded, again) == from_row(loaded, compact_json(session_snapshot(loaded)))
    # the encoded request and rate are remembered, not stale
    loaded.streams[next(iter(loaded.streams))].closed = True
    again = snapshot_text(loaded, compact_json).text
    assert from_row(loaded, again).streams == loaded.streams


def test_the_kept_copy_is_what_a_reader_of_the_row_gets() -> None:
    sub = Subscriber("50")
    session = long_session(sub)
    stream = session.streams[next(iter(session.streams))]
    assert stream.rated is not None
    # a time zone without time-of-day periods is not stored: nor is it kept
    stream.rated = replace(stream.rated, time_zone="Europe/Paris")
    written = snapshot_text(session, compact_json)
    text = written.text
    kept = stored_copy(session, written)
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
    assert snapshot_text(stored_copy(kept), compact_json).text == text


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


def test_alike_answers_come_back_in_their_order_whatever_their_sub_session() -> None:
    sub = Subscriber("50")
    session = CreditControlSession.open("s-2", sub.account, sub.customer, NOW)
    grant = Grant("data|10|DATA|", 10, None, Unit.BYTES, MIB, 3600, MIB // 5)
    other = replace(grant, units=2 * MIB)
    order = [("", 1, grant), ("", 2, grant), ("b", 0, grant), ("", 3, grant)]
    order += [("b", 1, other), ("", 4, grant), ("", 5, other), ("b", 2, other)]
    for sub_session, number, result in order:
        session.answers[(sub_session, number)] = Answer(number, RequestKind.UPDATE, (result,))
    written = snapshot_text(session, compact_json)
    in_full = [a for a in json.loads(written.text)["answers"] if "answer" in a]
    assert len(in_full) == 2  # one of each
    read = from_row(session, written.text)
    assert list(read.answers) == [(s, n) for s, n, _ in order]
    assert read.answers == session.answers


def test_a_hold_across_a_tariff_change_is_written_as_the_plain_encoder_writes_it() -> None:
    sub = Subscriber("50")
    session = long_session(sub)
    held = [s for s in session.streams.values() if s.hold is not None]
    assert held
    held[0].hold = replace(
        held[0].hold,  # type: ignore[type-var]
        granted_at=NOW,
        tariff_change_at=NOW + timedelta(hours=1),
    )
    text = snapshot_text(session, compact_json).text
    plain = compact_json(session_snapshot(session))
    assert json.loads(text)["streams"] == json.loads(plain)["streams"]
    assert '"tariff_change_at":' in text
    assert from_row(session, text).streams == session.streams


def test_the_holds_of_live_sub_sessions_of_one_stream_are_written_and_kept() -> None:
    """Two sub-sessions live on one stream (a PDSN hand-off) each hold their
    grant: the snapshot text, the plain encoder and the kept copy all keep
    the one waiting (``parked``), and a row of format 2, without it, reads."""
    sub = Subscriber("50")
    session = CreditControlSession.open("s-1", sub.account, sub.customer, NOW)
    session.reserve(sub.context(), 0, [data()], NOW, sub_session="bs-1")
    session.reserve(sub.context(), 0, [data()], NOW, sub_session="bs-2")
    stream = next(iter(session.streams.values()))
    assert stream.holder == "bs-2" and list(stream.parked) == ["bs-1"]
    written = snapshot_text(session, compact_json)
    plain = compact_json(session_snapshot(session))
    assert json.loads(written.text)["streams"] == json.loads(plain)["streams"]
    # format 3: a server of an earlier release refuses the row rather than
    # drop the waiting hold (and leave its money reserved for good)
    assert json.loads(written.text)["format"] == json.loads(plain)["format"] == 3
    assert from_row(session, written.text).streams == session.streams
    assert from_row(session, plain).streams == session.streams
    assert stored_copy(session, written).streams == session.streams
    assert stored_copy(session, written).held_money() == session.held_money()
    # a session without sub-sessions (Diameter) is written as format 2 wrote it
    alone = CreditControlSession.open("s-2", sub.account, sub.customer, NOW)
    alone.reserve(sub.context(), 0, [data()], NOW)
    (encoded,) = json.loads(snapshot_text(alone, compact_json).text)["streams"]
    assert "holder" not in encoded and "parked" not in encoded
    assert json.loads(snapshot_text(alone, compact_json).text)["format"] == 2
    # a row of format 2 names no holder: its one hold is its sub-session's own
    pdsn = CreditControlSession.open("s-3", sub.account, sub.customer, NOW)
    pdsn.reserve(sub.context(), 0, [data()], NOW, sub_session="bs-1")
    document = json.loads(compact_json(session_snapshot(pdsn)))
    (encoded,) = document["streams"]
    assert encoded["holder"] == "bs-1" and encoded["parked"] == []
    assert document["format"] == 1  # nothing waits: an earlier release reads it as ever
    del encoded["holder"], encoded["parked"]
    read = from_row(pdsn, json.dumps(document))
    (stream,) = read.streams.values()
    assert stream.hold is not None and stream.holder == ""
    read.report(sub.context(), 1, [data(used=MIB)], NOW, sub_session="bs-1")
    assert stream.holder == "bs-1" and stream.parked == {}  # settled, not left waiting


def test_a_kept_copy_holds_its_answers_as_text_and_answers_a_retransmission() -> None:
    sub = Subscriber("50")
    session = long_session(sub)
    kept = stored_copy(session, snapshot_text(session, compact_json))
    answers = kept.answers
    assert isinstance(answers, StoredAnswers)
    # nothing but strings: no answer objects or documents for the collector
    assert not answers.raw and set(dict.values(answers)) == {_PENDING}
    assert all(type(text) is str for text in answers.contents.values())
    taken = stored_copy(kept)
    for (sub_session, number), answer in kept.answers.items():
        assert taken.stored_answer(number, sub_session) == answer
        assert answer == session.answers[(sub_session, number)]
    assert taken.stored_answer(1) is None


texts = st.text(max_size=12)  # any character: the encoder escapes them to ASCII
maybe_ints = st.none() | st.integers(min_value=-(2**40), max_value=2**40)
finals = st.none() | st.builds(
    FinalUnitIndication,
    st.sampled_from(list(ExhaustionAction)),
    st.none() | texts,
    maybe_ints,
    maybe_ints,
)
grants = st.builds(
    Grant,
    texts,
    maybe_ints,
    maybe_ints,
    st.sampled_from(list(Unit)),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=0, max_value=86400),
    st.integers(min_value=0, max_value=2**40),
    finals,
    st.booleans(),
    st.none() | st.integers(min_value=0, max_value=10**6).map(lambda s: NOW + timedelta(seconds=s)),
)
denials = st.builds(Denial, texts, maybe_ints, maybe_ints, texts, texts, finals)
answers = st.builds(
    Answer,
    st.integers(min_value=0, max_value=2**31),
    st.sampled_from(list(RequestKind)),
    st.lists(grants | denials, max_size=3).map(tuple),
    st.none(),
    st.none() | texts,
    st.none() | st.booleans(),
)


@settings(max_examples=300)
@given(answers)
def test_an_answer_content_written_directly_is_what_the_encoder_writes(answer: Answer) -> None:
    assert _answer_content(answer) == _content(answer_to_json(answer))
    assert (
        answer_from_json(
            {"request_number": answer.request_number, **json.loads(_answer_content(answer))}
        )
        == answer
    )


def test_an_answer_with_an_xdr_or_odd_values_has_the_encoder_content() -> None:
    line = XdrLine(
        Service.DATA, Unit.BYTES, "DATA", None, 10, "DATA", "400", 5, 5, (), usd("1"), usd("0")
    )
    xdr = Xdr("x-1", "s-1", "a-1", "c-1", NOW, NOW, (line,), usd("1"))
    grant = Grant("data|10|DATA|", 10, None, Unit.BYTES, MIB, 3600, MIB // 5)
    for answer in (
        Answer(3, RequestKind.TERMINATE, (), xdr),
        Answer(4, RequestKind.UPDATE, (replace(grant, units=True),)),  # a bool is written as one
        Answer(5, RequestKind.UPDATE, (grant, grant), None, "ünïcode"),
    ):
        assert _answer_content(answer) == _content(answer_to_json(answer))


def test_request_numbers_are_written_as_the_encoder_writes_them() -> None:
    for numbers in ([1, 2, 30], [0], [True, 2], [2**70, -1]):
        assert _numbers_text(numbers, compact_json) == compact_json(numbers)[1:-1]


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")
