"""JSON forms of domain values stored inside JSON columns: credit-control
session state, xDR lines, service policies.

Exact by construction: amounts are decimal strings, money is ``"<amount>
<currency>"``, times are ISO 8601 with offset, enums their value. Anything
ordered is a list (PostgreSQL JSONB does not keep object key order). Every
``*_to_json`` has its ``*_from_json``; a round trip gives an equal object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _ascii
from typing import Any, Final

from ratel.adapters.db.engine import compact_json
from ratel.domain.catalogue import ExhaustionAction, Service, Unit
from ratel.domain.charging import (
    Answer,
    CreditControlSession,
    Denial,
    FinalUnitIndication,
    Grant,
    Hold,
    RequestKind,
    SessionState,
    Stream,
    UsageRequest,
    Xdr,
    XdrLine,
)
from ratel.domain.customer import require_aware
from ratel.domain.money import Money
from ratel.domain.rating import DestinationGroup, Rate, RatedDestination, RatePeriod

Json = dict[str, Any]

ANSWERS_KEPT_PER_SUB_SESSION: Final = 16
"""Stored answers kept per sub-session: enough for any retransmission a
network makes (it resends the last request, not one from minutes ago) while
keeping a long session's row small."""

# Format 1 stores every kept answer in full. Format 2 (what ``snapshot_text``
# writes) stores answers that only differ from an earlier one of the list by
# their request numbers as a run of those numbers and the earlier one's place
# (``{"sub_session": "", "like": 0, "request_numbers": [26, 27]}``): the
# grants of a steady session are all alike, and its row stays well under
# 2 kB instead of 6 (less to send, for PostgreSQL to parse into JSONB, to
# compress out of line and to log). Format 3 is either of them with the hold
# of a sub-session waiting while another's is current (``Stream.parked``, a
# PDSN hand-off with both sub-sessions live): a server of an earlier release
# refuses such a row rather than drop the hold and leave its money reserved.
# All three are read.
_PLAIN_FORMAT: Final = 1
_SNAPSHOT_FORMAT: Final = 2
_PARKED_FORMAT: Final = 3
_FORMATS: Final = frozenset({_PLAIN_FORMAT, _SNAPSHOT_FORMAT, _PARKED_FORMAT})


def _format(session: CreditControlSession, usual: int) -> int:
    parked = any(stream.parked for stream in session.streams.values())
    return _PARKED_FORMAT if parked else usual


# -- scalars ------------------------------------------------------------------------


def money_to_json(money: Money | None) -> str | None:
    return None if money is None else f"{money.amount} {money.currency}"


def money_from_json(text: str | None) -> Money | None:
    if text is None:
        return None
    amount, currency = text.split(" ")
    return Money(Decimal(amount), currency)


def _money(text: str) -> Money:
    money = money_from_json(text)
    if money is None:
        raise ValueError("money expected, found null")
    return money


def time_to_json(value: datetime | None) -> str | None:
    return None if value is None else require_aware(value).isoformat()


def time_from_json(text: str | None) -> datetime | None:
    return None if text is None else require_aware(datetime.fromisoformat(text))


def _time(text: str) -> datetime:
    value = time_from_json(text)
    if value is None:
        raise ValueError("a time expected, found null")
    return value


def _pairs_to_json(pairs: list[tuple[str, Decimal]] | tuple[tuple[str, Decimal], ...]) -> list[Any]:
    return [[key, str(units)] for key, units in pairs]


def _pairs_from_json(items: list[Any]) -> list[tuple[str, Decimal]]:
    return [(str(key), Decimal(units)) for key, units in items]


# -- rating -------------------------------------------------------------------------


def group_to_json(group: DestinationGroup | None) -> Json | None:
    if group is None:
        return None
    return {"code": group.code, "name": group.name, "ledger_code": group.ledger_code}


def group_from_json(data: Json | None) -> DestinationGroup | None:
    if data is None:
        return None
    return DestinationGroup(data["code"], data["name"], data["ledger_code"])


def rate_to_json(rate: Rate) -> Json:
    return {
        "price_first": money_to_json(rate.price_first),
        "first_interval": rate.first_interval,
        "next_interval": rate.next_interval,
        "price_next": money_to_json(rate.price_next),
        "connection_fee": money_to_json(rate.connection_fee),
        "free_units": rate.free_units,
    }


def rate_from_json(data: Json) -> Rate:
    return Rate(
        price_first=_money(data["price_first"]),
        first_interval=data["first_interval"],
        next_interval=data["next_interval"],
        price_next=_money(data["price_next"]),
        connection_fee=_money(data["connection_fee"]),
        free_units=data["free_units"],
    )


def periods_to_json(periods: Sequence[RatePeriod]) -> list[Any]:
    """Time-of-day periods as ``[start, end, rate]`` lists, in order."""
    return [[p.start.isoformat(), p.end.isoformat(), rate_to_json(p.rate)] for p in periods]


def periods_from_json(items: list[Any] | None) -> tuple[RatePeriod, ...]:
    return tuple(
        RatePeriod(time.fromisoformat(start), time.fromisoformat(end), rate_from_json(rate))
        for start, end, rate in items or ()
    )


def rated_to_json(rated: RatedDestination | None) -> Json | None:
    if rated is None:
        return None
    data: Json = {
        "destination": rated.destination,
        "rate": rate_to_json(rated.rate),
        "group": group_to_json(rated.group),
    }
    if rated.periods:
        # only time-banded destinations carry these: stored sessions stay small
        data["periods"] = periods_to_json(rated.periods)
        data["time_zone"] = rated.time_zone
    return data


def rated_from_json(data: Json | None) -> RatedDestination | None:
    if data is None:
        return None
    return RatedDestination(
        data["destination"],
        rate_from_json(data["rate"]),
        group_from_json(data["group"]),
        periods_from_json(data.get("periods")),
        data.get("time_zone", "UTC"),
    )


# -- requests and answers --------------------------------------------------------------


def request_to_json(request: UsageRequest) -> Json:
    data: Json = {
        "service": request.service.value,
        "unit": request.unit.value,
        "access_code": request.access_code,
        "destination": request.destination,
        "rating_group": request.rating_group,
        "service_identifier": request.service_identifier,
        "requested": request.requested,
        "used": request.used,
        "final": request.final,
    }
    if request.used_after_change:
        data["used_after_change"] = request.used_after_change
    return data


def request_from_json(data: Json) -> UsageRequest:
    return UsageRequest(
        service=Service(data["service"]),
        unit=Unit(data["unit"]),
        access_code=data["access_code"],
        destination=data["destination"],
        rating_group=data["rating_group"],
        service_identifier=data["service_identifier"],
        requested=data["requested"],
        used=data["used"],
        final=data["final"],
        used_after_change=data.get("used_after_change", 0),
    )


def _final_to_json(final: FinalUnitIndication | None) -> Json | None:
    if final is None:
        return None
    return {
        "action": final.action.value,
        "redirect_url": final.redirect_url,
        "throttle_download_kbps": final.throttle_download_kbps,
        "throttle_upload_kbps": final.throttle_upload_kbps,
    }


def _final_from_json(data: Json | None) -> FinalUnitIndication | None:
    if data is None:
        return None
    return FinalUnitIndication(
        action=ExhaustionAction(data["action"]),
        redirect_url=data["redirect_url"],
        throttle_download_kbps=data["throttle_download_kbps"],
        throttle_upload_kbps=data["throttle_upload_kbps"],
    )


def _result_to_json(result: Grant | Denial) -> Json:
    if isinstance(result, Grant):
        grant: Json = {
            "type": "grant",
            "key": result.key,
            "rating_group": result.rating_group,
            "service_identifier": result.service_identifier,
            "unit": result.unit.value,
            "units": result.units,
            "validity_seconds": result.validity_seconds,
            "threshold": result.threshold,
            "final": _final_to_json(result.final),
            "free": result.free,
        }
        if result.tariff_change_at is not None:
            grant["tariff_change_at"] = time_to_json(result.tariff_change_at)
        return grant
    return {
        "type": "denial",
        "key": result.key,
        "rating_group": result.rating_group,
        "service_identifier": result.service_identifier,
        "reason": result.reason,
        "message": result.message,
        "final": _final_to_json(result.final),
    }


def _result_from_json(data: Json) -> Grant | Denial:
    if data["type"] == "grant":
        return Grant(
            key=data["key"],
            rating_group=data["rating_group"],
            service_identifier=data["service_identifier"],
            unit=Unit(data["unit"]),
            units=data["units"],
            validity_seconds=data["validity_seconds"],
            threshold=data["threshold"],
            final=_final_from_json(data["final"]),
            free=data["free"],
            tariff_change_at=time_from_json(data.get("tariff_change_at")),
        )
    return Denial(
        key=data["key"],
        rating_group=data["rating_group"],
        service_identifier=data["service_identifier"],
        reason=data["reason"],
        message=data["message"],
        final=_final_from_json(data["final"]),
    )


def answer_to_json(answer: Answer) -> Json:
    data: Json = {
        "request_number": answer.request_number,
        "kind": answer.kind.value,
        "results": [_result_to_json(r) for r in answer.results],
        "xdr": xdr_to_json(answer.xdr) if answer.xdr is not None else None,
        "translated_number": answer.translated_number,
    }
    if answer.raise_mscc_result_code is not None:  # set by the product: rare
        data["raise_mscc_result_code"] = answer.raise_mscc_result_code
    return data


def answer_from_json(data: Json) -> Answer:
    return Answer(
        request_number=data["request_number"],
        kind=RequestKind(data["kind"]),
        results=tuple(_result_from_json(r) for r in data["results"]),
        xdr=xdr_from_json(data["xdr"]) if data["xdr"] is not None else None,
        translated_number=data["translated_number"],
        raise_mscc_result_code=data.get("raise_mscc_result_code"),
    )


# -- xDRs ---------------------------------------------------------------------------


def xdr_line_to_json(line: XdrLine) -> Json:
    return {
        "service": line.service.value,
        "unit": line.unit.value,
        "access_code": line.access_code,
        "destination": line.destination,
        "rating_group": line.rating_group,
        "destination_group": line.destination_group,
        "ledger_code": line.ledger_code,
        "units": line.units,
        "money_units": line.money_units,
        "bucket_units": _pairs_to_json(line.bucket_units),
        "charge": money_to_json(line.charge),
        "paid_by_service_wallets": money_to_json(line.paid_by_service_wallets),
    }


def xdr_line_from_json(data: Json) -> XdrLine:
    return XdrLine(
        service=Service(data["service"]),
        unit=Unit(data["unit"]),
        access_code=data["access_code"],
        destination=data["destination"],
        rating_group=data["rating_group"],
        destination_group=data["destination_group"],
        ledger_code=data["ledger_code"],
        units=data["units"],
        money_units=data["money_units"],
        bucket_units=tuple(_pairs_from_json(data["bucket_units"])),
        charge=_money(data["charge"]),
        paid_by_service_wallets=_money(data["paid_by_service_wallets"]),
    )


def xdr_to_json(xdr: Xdr) -> Json:
    return {
        "id": xdr.id,
        "session_id": xdr.session_id,
        "account_id": xdr.account_id,
        "customer_id": xdr.customer_id,
        "started_at": time_to_json(xdr.started_at),
        "ended_at": time_to_json(xdr.ended_at),
        "lines": [xdr_line_to_json(line) for line in xdr.lines],
        "charge": money_to_json(xdr.charge),
        "sub_sessions": list(xdr.sub_sessions),
        "cause": xdr.cause,
    }


def xdr_from_json(data: Json) -> Xdr:
    return Xdr(
        id=data["id"],
        session_id=data["session_id"],
        account_id=data["account_id"],
        customer_id=data["customer_id"],
        started_at=_time(data["started_at"]),
        ended_at=_time(data["ended_at"]),
        lines=tuple(xdr_line_from_json(line) for line in data["lines"]),
        charge=_money(data["charge"]),
        sub_sessions=tuple(data["sub_sessions"]),
        cause=data["cause"],
    )


# -- sessions -----------------------------------------------------------------------


def _hold_to_json(hold: Hold | None) -> Json | None:
    if hold is None:
        return None
    data: Json = {
        "buckets": _pairs_to_json(hold.buckets),
        "money_units": hold.money_units,
        "money_buckets": _pairs_to_json(hold.money_buckets),
        "money": money_to_json(hold.money),
    }
    if hold.granted_at is not None:
        data["granted_at"] = time_to_json(hold.granted_at)
    if hold.tariff_change_at is not None:
        data["tariff_change_at"] = time_to_json(hold.tariff_change_at)
    return data


def _hold_from_json(data: Json | None) -> Hold | None:
    if data is None:
        return None
    return Hold(
        buckets=_pairs_from_json(data["buckets"]),
        money_units=data["money_units"],
        money_buckets=_pairs_from_json(data["money_buckets"]),
        money=_money(data["money"]),
        granted_at=time_from_json(data.get("granted_at")),
        tariff_change_at=time_from_json(data.get("tariff_change_at")),
    )


def _stream_to_json(key: str, stream: Stream) -> Json:
    data: Json = {
        "key": key,
        "request": request_to_json(stream.request),
        "rated": rated_to_json(stream.rated),
        "free": stream.free,
        "used_units": stream.used_units,
        "money_units": stream.money_units,
        "cost": money_to_json(stream.cost),
        "paid_by_buckets": money_to_json(stream.paid_by_buckets),
        "bucket_units": _pairs_to_json(list(stream.bucket_units.items())),
        "hold": _hold_to_json(stream.hold),
        "closed": stream.closed,
    }
    if stream.holder or stream.parked:  # sub-sessions (none in Diameter's rows)
        data["holder"] = stream.holder
        data["parked"] = [[sub, _hold_to_json(hold)] for sub, hold in stream.parked.items()]
    return data


def _stream_from_json(data: Json) -> tuple[str, Stream]:
    return data["key"], Stream(
        request=request_from_json(data["request"]),
        rated=rated_from_json(data["rated"]),
        free=data["free"],
        used_units=data["used_units"],
        money_units=data["money_units"],
        cost=money_from_json(data["cost"]),
        paid_by_buckets=money_from_json(data["paid_by_buckets"]),
        bucket_units=dict(_pairs_from_json(data["bucket_units"])),
        hold=_hold_from_json(data["hold"]),
        closed=data["closed"],
        holder=data.get("holder", ""),
        parked={sub: _hold(hold) for sub, hold in data.get("parked", ())},
    )


def _hold(data: Json) -> Hold:
    hold = _hold_from_json(data)
    if hold is None:
        raise ValueError("a parked hold is never null")
    return hold


_PENDING: Final = object()  # a stored answer not decoded yet


class StoredAnswers(dict[tuple[str, int], Answer]):
    """A session's stored answers as read from its row: each is decoded when
    it is first looked up (a retransmission), and one never looked up is
    written back from what was read, never decoded. A session loaded for an
    interim update touches none of them, and decoding and re-encoding a dozen
    answers per request was the biggest cost of the charging path.

    An answer not decoded is held as the JSON read (``raw``) or, in a copy a
    process keeps, only as its ``_content``: a string, which is all a write
    needs, and which leaves the garbage collector nothing to look at."""

    def __init__(self, raw: Sequence[tuple[tuple[str, int], Json]] = ()) -> None:
        super().__init__()
        self.raw: dict[tuple[str, int], Json] = {}
        # What each answer says but for its number (``_content``), when known:
        # a snapshot is written from these rather than by encoding the
        # answers again (a long session encodes only its newest).
        self.contents: dict[tuple[str, int], str] = {}
        for key, data in raw:
            dict.__setitem__(self, key, _PENDING)  # type: ignore[arg-type]
            self.raw[key] = data

    def __getitem__(self, key: tuple[str, int]) -> Answer:
        value = dict.__getitem__(self, key)
        if value is _PENDING:
            value = answer_from_json(self._json(key))
            self.raw.pop(key, None)
            dict.__setitem__(self, key, value)
        return value

    def _json(self, key: tuple[str, int]) -> Json:
        """The JSON of an answer not decoded."""
        data = self.raw.get(key)
        if data is None:
            data = json.loads(_answer_text(key[1], self.contents[key]))
        return data

    def __setitem__(self, key: tuple[str, int], value: Answer) -> None:
        self.raw.pop(key, None)
        self.contents.pop(key, None)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: tuple[str, int]) -> None:
        self.raw.pop(key, None)
        self.contents.pop(key, None)
        dict.__delitem__(self, key)

    def get(self, key: tuple[str, int], default: Any = None) -> Any:
        if key not in self:
            return default
        return self[key]

    def items(self) -> list[tuple[tuple[str, int], Answer]]:  # type: ignore[override]
        return [(key, self[key]) for key in self]

    def values(self) -> list[Answer]:  # type: ignore[override]
        return [self[key] for key in self]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict):
            return NotImplemented
        return dict(self.items()) == dict(other.items())

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: Any) -> Any:
        # copies and pickles are plain dicts of decoded answers
        return (dict, (dict(self.items()),))

    def as_json(self, key: tuple[str, int]) -> Json:
        """The answer's JSON: as read if it was never decoded."""
        if dict.__getitem__(self, key) is _PENDING:
            return self._json(key)
        return answer_to_json(self[key])


def _kept_keys(
    answers: Mapping[tuple[str, int], Answer], per_sub_session: int
) -> list[tuple[str, int]]:
    if len(answers) <= per_sub_session:
        return list(answers)  # nothing to drop (the usual case but for a long session)
    if len({sub_session for sub_session, _ in answers}) == 1:
        # one sub-session (a long RADIUS or Diameter session): its lowest kept number
        floor = sorted([number for _, number in answers])[-per_sub_session]
        return [key for key in answers if key[1] >= floor]
    numbers: dict[str, list[int]] = {}
    for sub_session, number in answers:
        found = numbers.get(sub_session)
        if found is None:
            numbers[sub_session] = [number]
        else:
            found.append(number)
    # the lowest number each sub-session keeps (numbers of one sub-session are distinct)
    lowest = {
        sub_session: sorted(found)[-per_sub_session]
        for sub_session, found in numbers.items()
        if len(found) > per_sub_session
    }
    if not lowest:
        return list(answers)
    if len(numbers) == 1:
        (floor,) = lowest.values()
        return [key for key in answers if key[1] >= floor]
    return [key for key in answers if key[0] not in lowest or key[1] >= lowest[key[0]]]


def kept_answers(
    answers: dict[tuple[str, int], Answer], per_sub_session: int = ANSWERS_KEPT_PER_SUB_SESSION
) -> list[tuple[str, Answer]]:
    """The answers worth storing: the ``per_sub_session`` highest request
    numbers of each sub-session, in their original order."""
    return [(key[0], answers[key]) for key in _kept_keys(answers, per_sub_session)]


def session_snapshot(session: CreditControlSession) -> Json:
    """The session's state (everything but the indexed columns) as JSON, every
    kept answer in full (format 1)."""
    answers = session.answers
    as_json = (
        answers.as_json
        if isinstance(answers, StoredAnswers)
        else lambda key: answer_to_json(answers[key])
    )
    return {
        "format": _format(session, _PLAIN_FORMAT),
        "streams": [_stream_to_json(key, stream) for key, stream in session.streams.items()],
        "answers": [
            {"sub_session": key[0], "answer": as_json(key)}
            for key in _kept_keys(answers, ANSWERS_KEPT_PER_SUB_SESSION)
        ],
        "last_request": [[sub, number] for sub, number in session.last_request.items()],
        "sub_sessions": [[sub, active] for sub, active in session.sub_sessions.items()],
        "xdr": xdr_to_json(session.xdr) if session.xdr is not None else None,
    }


@dataclass(frozen=True, slots=True)
class SnapshotText:
    """A session's snapshot as ``snapshot_text`` wrote it: the JSON text, and
    the ``_content`` of each kept answer (in order), for the next write."""

    text: str
    contents: dict[tuple[str, int], str]


#: Canonical JSON (keys sorted): the same answer gives the same text whether
#: it was encoded here or read back from PostgreSQL (JSONB reorders keys).
_canonical = json.JSONEncoder(separators=(",", ":"), sort_keys=True, check_circular=False).encode


def _content(data: Json) -> str:
    """What an answer says, but for its request number."""
    return _canonical({k: v for k, v in data.items() if k != "request_number"})


def _canonical_scalar(value: Any) -> str:
    """A value of an answer as ``_canonical`` writes it inside the answer."""
    return _scalar(value, _canonical)


def _final_content(final: FinalUnitIndication | None) -> str:
    """``_canonical(_final_to_json(final))``."""
    if final is None:
        return "null"
    return (
        f'{{"action":{_canonical_scalar(final.action.value)},'
        f'"redirect_url":{_canonical_scalar(final.redirect_url)},'
        f'"throttle_download_kbps":{_canonical_scalar(final.throttle_download_kbps)},'
        f'"throttle_upload_kbps":{_canonical_scalar(final.throttle_upload_kbps)}}}'
    )


def _result_content(result: Grant | Denial) -> str:
    """``_canonical(_result_to_json(result))``: the same keys, sorted."""
    c = _canonical_scalar
    if isinstance(result, Grant):
        change = (
            ""
            if result.tariff_change_at is None
            else f'"tariff_change_at":{c(time_to_json(result.tariff_change_at))},'
        )
        return (
            f'{{"final":{_final_content(result.final)},"free":{c(result.free)},'
            f'"key":{c(result.key)},"rating_group":{c(result.rating_group)},'
            f'"service_identifier":{c(result.service_identifier)},{change}'
            f'"threshold":{c(result.threshold)},"type":"grant","unit":{c(result.unit.value)},'
            f'"units":{c(result.units)},"validity_seconds":{c(result.validity_seconds)}}}'
        )
    return (
        f'{{"final":{_final_content(result.final)},"key":{c(result.key)},'
        f'"message":{c(result.message)},"rating_group":{c(result.rating_group)},'
        f'"reason":{c(result.reason)},"service_identifier":{c(result.service_identifier)},'
        f'"type":"denial"}}'
    )


def _answer_content(answer: Answer) -> str:
    """``_content(answer_to_json(answer))`` written directly, without the
    document and the sorting encoder: an interim update's new answer is
    encoded at every write. An answer with an xDR takes the plain way."""
    if answer.xdr is not None:
        return _content(answer_to_json(answer))
    results = ",".join([_result_content(result) for result in answer.results])
    raised = answer.raise_mscc_result_code
    option = "" if raised is None else f'"raise_mscc_result_code":{_canonical_scalar(raised)},'
    return (
        f'{{"kind":{_canonical_scalar(answer.kind.value)},{option}"results":[{results}],'
        f'"translated_number":{_canonical_scalar(answer.translated_number)},"xdr":null}}'
    )


def _answer_text(number: int, content: str) -> str:
    """The JSON text of the answer numbered ``number`` saying ``content``."""
    if content == "{}":
        return f'{{"request_number":{_scalar(number)}}}'
    return f'{{"request_number":{_scalar(number)},{content[1:]}'


def snapshot_text(session: CreditControlSession, dumps: Callable[[Any], str]) -> SnapshotText:
    """The session's snapshot as JSON text (format 2: ``session_snapshot``
    with answers alike an earlier one stored as their numbers and the earlier
    one's place). Built from pieces rather than from the whole document: an
    answer is written from its content, which a session read or kept knows
    (a long session encodes only its newest answer), and a stream's request
    and rate, which never change, are encoded once for as long as they live."""
    answers = session.answers
    stored = answers if isinstance(answers, StoredAnswers) else None
    known = stored.contents if stored is not None else {}
    contents: dict[tuple[str, int], str] = {}
    first: dict[str, int] = {}  # content -> the place of its answer in full
    # an answer in full, or a run of answers alike an earlier one:
    # [sub-session, the earlier one's place, their numbers]
    parts: list[str | list[Any]] = []
    run: list[Any] | None = None  # the run ``parts`` ends with, if it ends with one
    for key in _kept_keys(answers, ANSWERS_KEPT_PER_SUB_SESSION):
        content = known.get(key)
        if content is None:
            if stored is not None and dict.__getitem__(stored, key) is _PENDING:
                content = _content(stored.as_json(key))
            else:
                content = _answer_content(answers[key])
        contents[key] = content
        place = first.get(content)
        if place is not None:
            if run is not None and run[1] == place and run[0] == key[0]:
                run[2].append(key[1])
            else:
                run = [key[0], place, [key[1]]]
                parts.append(run)
            continue
        run = None
        first[content] = len(parts)
        # the answer is its content with its number: no encoding again
        parts.append(
            f'{{"sub_session":{_quote(key[0], dumps)},"answer":{_answer_text(key[1], content)}}}'
        )
    written = ",".join(
        part
        if type(part) is str
        else f'{{"sub_session":{_quote(part[0], dumps)},"like":{part[1]},'
        f'"request_numbers":[{_numbers_text(part[2], dumps)}]}}'
        for part in parts
    )
    streams = ",".join(_stream_text(key, stream, dumps) for key, stream in session.streams.items())
    last_request = ",".join(
        f"[{_quote(sub, dumps)},{_scalar(number, dumps)}]"
        for sub, number in session.last_request.items()
    )
    sub_sessions = ",".join(
        f"[{_quote(sub, dumps)},{_scalar(active, dumps)}]"
        for sub, active in session.sub_sessions.items()
    )
    xdr = "null" if session.xdr is None else dumps(xdr_to_json(session.xdr))
    text = (
        f'{{"format":{_format(session, _SNAPSHOT_FORMAT)},"streams":[{streams}],'
        f'"last_request":[{last_request}],'
        f'"sub_sessions":[{sub_sessions}],"xdr":{xdr},"answers":[{written}]}}'
    )
    return SnapshotText(text, contents)


def _numbers_text(numbers: list[Any], dumps: Callable[[Any], str]) -> str:
    """Request numbers as the items of a JSON list (``_scalar`` of each)."""
    if set(map(type, numbers)) == {int}:  # the usual: plain ints (no bools) as int writes them
        return ",".join(map(int.__repr__, numbers))
    return ",".join([_scalar(n, dumps) for n in numbers])


def _scalar(value: Any, dumps: Callable[[Any], str] = compact_json) -> str:
    """A JSON scalar as ``dumps`` (ASCII, compact) writes it, without the
    encoder's per-call cost for the common types."""
    kind = type(value)
    if kind is str:
        return _ascii(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return dumps(value)


def _pairs_text(pairs: Iterable[tuple[str, Decimal]]) -> str:
    """``_pairs_to_json`` as text."""
    return "[" + ",".join(f"[{_ascii(key)},{_ascii(str(units))}]" for key, units in pairs) + "]"


def _money_text(money: Money | None) -> str:
    return "null" if money is None else _ascii(f"{money.amount} {money.currency}")


def _hold_text(hold: Hold | None) -> str:
    """``_hold_to_json`` as text, with the same keys in the same order."""
    if hold is None:
        return "null"
    text = (
        f'{{"buckets":{_pairs_text(hold.buckets)},"money_units":{_scalar(hold.money_units)},'
        f'"money_buckets":{_pairs_text(hold.money_buckets)},"money":{_money_text(hold.money)}'
    )
    if hold.granted_at is not None:
        text += f',"granted_at":{_ascii(require_aware(hold.granted_at).isoformat())}'
    if hold.tariff_change_at is not None:
        text += f',"tariff_change_at":{_ascii(require_aware(hold.tariff_change_at).isoformat())}'
    return text + "}"


_quoted: dict[str, str] = {}


def _quote(value: str, dumps: Callable[[Any], str]) -> str:
    """``value`` (a sub-session or stream key) as a JSON string, remembered:
    a session's few names come back at every write."""
    text = _quoted.get(value)
    if text is None:
        if len(_quoted) >= 4096:
            _quoted.clear()
        text = _quoted[value] = _scalar(value, dumps)
    return text


class _TextMemo:
    """JSON text of immutable values (a stream's request and rate), by
    object identity. The object is held with its text, so its id is not
    reused while the entry lives; the memo is emptied when it grows large."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._texts: dict[int, tuple[object, str]] = {}

    def text(self, value: Any, encode: Callable[[Any], Any], dumps: Callable[[Any], str]) -> str:
        entry = self._texts.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        text = dumps(encode(value))
        if len(self._texts) >= self._size:
            self._texts.clear()
        self._texts[id(value)] = (value, text)
        return text


_requests = _TextMemo()
_rates = _TextMemo()


def _stream_text(key: str, stream: Stream, dumps: Callable[[Any], str]) -> str:
    """``_stream_to_json`` as text, with the same keys in the same order."""
    request = _requests.text(stream.request, request_to_json, dumps)
    rated = "null" if stream.rated is None else _rates.text(stream.rated, rated_to_json, dumps)
    return (
        f'{{"key":{_quote(key, dumps)},"request":{request},"rated":{rated},'
        f'"free":{_scalar(stream.free, dumps)},"used_units":{_scalar(stream.used_units, dumps)},'
        f'"money_units":{_scalar(stream.money_units, dumps)},'
        f'"cost":{_money_text(stream.cost)},"paid_by_buckets":{_money_text(stream.paid_by_buckets)},'
        f'"bucket_units":{_pairs_text(stream.bucket_units.items())},'
        f'"hold":{_hold_text(stream.hold)},"closed":{_scalar(stream.closed, dumps)}'
        f"{_sub_session_holds_text(stream, dumps)}}}"
    )


def _sub_session_holds_text(stream: Stream, dumps: Callable[[Any], str]) -> str:
    """The ``holder`` and ``parked`` keys of ``_stream_to_json`` as text."""
    if not (stream.holder or stream.parked):
        return ""
    parked = ",".join(
        f"[{_quote(sub, dumps)},{_hold_text(hold)}]" for sub, hold in stream.parked.items()
    )
    return f',"holder":{_quote(stream.holder, dumps)},"parked":[{parked}]'


def stored_copy(
    session: CreditControlSession, written: SnapshotText | None = None
) -> CreditControlSession:
    """A copy of ``session`` as its stored row holds it (the answers kept,
    nothing else left out), sharing only immutable values with it: what a
    process keeps of a session it wrote or read, instead of the row to decode
    again. ``written``: the snapshot just written of it, whose answer contents
    the copy keeps for the next write. A copy of a copy is an equal copy."""
    answers = session.answers
    kept = StoredAnswers()
    if written is not None:
        # exactly the kept answers, in order: their contents are all it needs
        dict.update(kept, dict.fromkeys(written.contents, _PENDING))
        kept.contents = dict(written.contents)
        return _copied(session, kept)
    keys = _kept_keys(answers, ANSWERS_KEPT_PER_SUB_SESSION)
    held = {key: dict.__getitem__(answers, key) for key in keys}  # decoded or pending
    dict.update(kept, held)
    if isinstance(answers, StoredAnswers):
        known, raw = answers.contents, answers.raw
        kept.contents = {key: known[key] for key in keys if key in known}
        kept.raw = {key: raw[key] for key in keys if key in raw}
    return _copied(session, kept)


def _copied(session: CreditControlSession, answers: StoredAnswers) -> CreditControlSession:
    return CreditControlSession(
        id=session.id,
        account_id=session.account_id,
        customer_id=session.customer_id,
        currency=session.currency,
        started_at=session.started_at,
        last_activity=session.last_activity,
        state=session.state,
        streams={key: _copy_stream(stream) for key, stream in session.streams.items()},
        answers=answers,
        last_request=dict(session.last_request),
        sub_sessions=dict(session.sub_sessions),
        xdr=session.xdr,
    )


def _copy_hold(hold: Hold) -> Hold:
    return Hold(
        buckets=list(hold.buckets),
        money_units=hold.money_units,
        money_buckets=list(hold.money_buckets),
        money=hold.money,
        granted_at=hold.granted_at,
        tariff_change_at=hold.tariff_change_at,
    )


def _copy_stream(stream: Stream) -> Stream:
    hold = stream.hold
    rated = stream.rated
    if rated is not None and not rated.periods and rated.time_zone != "UTC":
        # the row keeps a time zone only with the periods it applies to
        rated = RatedDestination(rated.destination, rated.rate, rated.group)
    return Stream(
        request=stream.request,
        rated=rated,
        free=stream.free,
        used_units=stream.used_units,
        money_units=stream.money_units,
        cost=stream.cost,
        paid_by_buckets=stream.paid_by_buckets,
        bucket_units=dict(stream.bucket_units),
        hold=None if hold is None else _copy_hold(hold),
        closed=stream.closed,
        holder=stream.holder,
        parked={sub: _copy_hold(parked) for sub, parked in stream.parked.items()},
    )


def session_from_snapshot(
    *,
    id: str,
    account_id: str,
    customer_id: str,
    currency: str,
    state: str,
    started_at: datetime,
    last_activity: datetime,
    snapshot: Json,
) -> CreditControlSession:
    """The session rebuilt from its row."""
    if snapshot.get("format") not in _FORMATS:
        raise ValueError(f"session {id}: unknown snapshot format {snapshot.get('format')!r}")
    items = snapshot["answers"]
    raw: list[tuple[tuple[str, int], Json]] = []
    for item in items:
        data = item.get("answer")
        if data is not None:
            raw.append(((item["sub_session"], data["request_number"]), data))
            continue
        # format 2: answers alike an earlier one of the list but for their numbers
        like = items[item["like"]]["answer"]
        for number in item["request_numbers"]:
            raw.append(((item["sub_session"], number), {**like, "request_number": number}))
    answers = StoredAnswers(raw)
    return CreditControlSession(
        id=id,
        account_id=account_id,
        customer_id=customer_id,
        currency=currency,
        started_at=started_at,
        last_activity=last_activity,
        state=SessionState(state),
        streams=dict(_stream_from_json(s) for s in snapshot["streams"]),
        answers=answers,
        last_request={sub: number for sub, number in snapshot["last_request"]},
        sub_sessions={sub: active for sub, active in snapshot["sub_sessions"]},
        xdr=xdr_from_json(snapshot["xdr"]) if snapshot["xdr"] is not None else None,
    )
