"""CCR in, CCA out: Gy and Ro credit control translated to the CreditControl
use case and back (RFC 4006, 3GPP TS 32.299).

Each Multiple-Services-Credit-Control becomes one ``UsageRequest`` (its
rating group or service identifier, its used units since the last report,
the units it wants next) and each ``Grant`` or ``Denial`` of the answer one
MSCC of the CCA, with its Result-Code, Granted-Service-Unit, Validity-Time,
quota threshold and Final-Unit-Indication. What kind of service a request is
comes from its Service-Context-Id: data (32251@3gpp.org and anything not
known), voice (32260, 32275, 32276), SMS (32274), and USSD through a CAMEL
gateway by the configured context id, charged with the access code
``OUTGOING.SI<Service-Identifier>``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from diameter.message import Message
from diameter.message.avp import Avp

from ratel.adapters.diameter import codec
from ratel.adapters.diameter.codec import MalformedAvp, MissingAvp, Units
from ratel.adapters.diameter.peers import Ended, Opened, SessionPeers
from ratel.adapters.system import TimeOrderedIds
from ratel.application.charging_batch import Charging, Companion
from ratel.application.credit_control import (
    Subscriber,
    UnknownSession,
    UnknownSubscriber,
)
from ratel.domain.catalogue import ExhaustionAction, Service, Unit, UsageCharge
from ratel.domain.charging import (
    Answer,
    Denial,
    FinalUnitIndication,
    Grant,
    RequestKind,
    UsageRequest,
)
from ratel.domain.errors import ConcurrentChange, DomainError, NotFound, SessionClosed
from ratel.domain.money import Money
from ratel.ports.store import IdentifierKind
from ratel.ports.system import Clock

log = logging.getLogger("ratel.diameter")

_VOICE_CONTEXTS = ("32260", "32275", "32276")
_SMS_CONTEXTS = ("32274",)
_FINAL_REPORT = 2  # 3GPP Reporting-Reason FINAL
# Usage rated at the rate the grant started at: reported before the tariff
# change, without Tariff-Change-Usage, or UNIT_INDETERMINATE (the client could
# not tell: RFC 4006 8.27 leaves it to the server)
_BEFORE_TARIFF_CHANGE = frozenset({None, codec.UNIT_BEFORE_TARIFF_CHANGE, codec.UNIT_INDETERMINATE})
_TOO_BUSY = 3004
_MANDATORY = 0x40  # the AVP's M-bit
_RESERVED = 0x1F  # the AVP flags no version of Diameter defines

#: Denial reasons (DomainError codes) and the Diameter result code they give.
_DENIED = 4010
RESULT_OF_REASON: dict[str, int] = {
    "insufficient_funds": codec.CREDIT_LIMIT_REACHED,
    "credit_limit_exceeded": codec.CREDIT_LIMIT_REACHED,
    "rating_failed": codec.RATING_FAILED,
    "account_blocked": _DENIED,
    "customer_suspended": _DENIED,
    "customer_closed": _DENIED,
    "account_terminated": _DENIED,
    "service_denied": _DENIED,
    "location_restricted": _DENIED,
    "service_not_subscribed": _DENIED,
    "unknown_subscriber": codec.USER_UNKNOWN,
    "unknown_session": codec.UNKNOWN_SESSION_ID,
    "session_closed": codec.UNKNOWN_SESSION_ID,
}

#: ISO 4217 numeric codes for Cost-Information (999: no currency given).
_CURRENCY_NUMBERS = {"USD": 840, "EUR": 978, "GBP": 826, "AUD": 36, "CAD": 124, "CHF": 756}

_FINAL_ACTIONS = {
    ExhaustionAction.TERMINATE: codec.FUA_TERMINATE,
    ExhaustionAction.REDIRECT: codec.FUA_REDIRECT,
    ExhaustionAction.RESTRICT: codec.FUA_RESTRICT_ACCESS,
    # throttling is restricting access as far as the gateway is told
    ExhaustionAction.THROTTLE: codec.FUA_RESTRICT_ACCESS,
}


@dataclass(frozen=True, slots=True)
class CreditControlOptions:
    """What an operator configures about the Diameter credit control."""

    ussd_context_id: str = "ussd@camel.ratel"
    raise_mscc_result_code: bool = False


class AnswerWithError(Exception):
    """A request that gets an error answer instead of charging."""

    def __init__(self, result: int, failed: Avp | None = None, message: str = "") -> None:
        super().__init__(message or str(result))
        self.result = result
        self.failed = failed


@dataclass(slots=True)
class CreditControlRequest:
    """What ratel reads of a CCR."""

    session_id: str
    request_type: int
    number: int
    context: str
    origin_host: str
    origin_realm: str
    subscriber: Subscriber | None
    requested_action: int | None
    streams: list[UsageRequest] = field(default_factory=list)
    in_mscc: bool = True
    termination_cause: int | None = None


def _service_of(context: str, ussd_context: str) -> tuple[Service, Unit]:
    if context == ussd_context:
        return Service.USSD, Unit.SECONDS
    number = context.split("@", 1)[0][-5:]
    if number in _VOICE_CONTEXTS:
        return Service.VOICE, Unit.SECONDS
    if number in _SMS_CONTEXTS:
        return Service.SMS, Unit.MESSAGES
    return Service.DATA, Unit.BYTES


def _amount(units: Units, unit: Unit) -> int | None:
    if unit is Unit.BYTES:
        return units.octets
    if unit is Unit.SECONDS:
        return units.time
    return units.service_specific


def _number(address: str | None) -> str | None:
    """An E.164 number from a tel:/sip: URI or a plain number."""
    if not address:
        return None
    number = address.strip()
    for scheme in ("tel:", "sip:", "sips:"):
        if number.lower().startswith(scheme):
            number = number[len(scheme) :]
    number = number.split("@", 1)[0].split(";", 1)[0]
    return number.lstrip("+") or None


def _destination(avps: Sequence[Avp], service: Service) -> str | None:
    """The called party: IMS-Information's Called-Party-Address, or for an
    SMS the SMS-Information's recipient address."""
    information = codec.find(avps, codec.SERVICE_INFORMATION, codec.TGPP)
    if information is None:
        return None
    inner = codec.group(information)
    ims = codec.find(inner, codec.IMS_INFORMATION, codec.TGPP)
    if ims is not None:
        called = codec.text(codec.group(ims), codec.CALLED_PARTY_ADDRESS, codec.TGPP)
        if called:
            return _number(called)
    sms = codec.find(inner, codec.SMS_INFORMATION, codec.TGPP)
    if sms is not None and service is Service.SMS:
        sms_avps = codec.group(sms)
        holders = [sms_avps]
        for info in codec.find_all(sms_avps, codec.RECIPIENT_INFO, codec.TGPP):
            holders.append(codec.group(info))
        for holder in holders:
            for address in codec.find_all(holder, codec.RECIPIENT_ADDRESS, codec.TGPP):
                data = codec.text(codec.group(address), codec.ADDRESS_DATA, codec.TGPP)
                if data:
                    return _number(data)
    return None


def _subscriber(avps: Sequence[Avp]) -> Subscriber | None:
    found: dict[int, str] = {}
    for avp in codec.find_all(avps, codec.SUBSCRIPTION_ID):
        inner = codec.group(avp)
        kind = codec.integer(inner, codec.SUBSCRIPTION_ID_TYPE)
        data = codec.text(inner, codec.SUBSCRIPTION_ID_DATA)
        if kind is None or data is None:
            raise MalformedAvp(avp, "Subscription-Id needs its type and data")
        found.setdefault(kind, data.strip())
    if codec.END_USER_E164 in found:
        return Subscriber(IdentifierKind.MSISDN, found[codec.END_USER_E164].lstrip("+"))
    if codec.END_USER_IMSI in found:
        return Subscriber(IdentifierKind.IMSI, found[codec.END_USER_IMSI])
    return None


def _usage(
    holder: Sequence[Avp],
    service: Service,
    unit: Unit,
    destination: str | None,
    ussd: bool,
    default_identifier: int | None = None,
) -> UsageRequest:
    rating_group = codec.integer(holder, codec.RATING_GROUP)
    identifier = codec.integer(holder, codec.SERVICE_IDENTIFIER)
    if identifier is None:
        identifier = default_identifier
    requested_avp = codec.find(holder, codec.REQUESTED_SERVICE_UNIT)
    requested: int | None = 0  # no RSU: nothing more wanted
    if requested_avp is not None:
        wanted = codec.units(requested_avp)
        requested = None if wanted.empty else _amount(wanted, unit)
    used = 0
    after_change = 0
    for used_avp in codec.find_all(holder, codec.USED_SERVICE_UNIT):
        reported = codec.units(used_avp)
        amount = _amount(reported, unit) or 0
        used += amount
        if reported.tariff_change_usage == codec.UNIT_AFTER_TARIFF_CHANGE:
            after_change += amount
        elif reported.tariff_change_usage not in _BEFORE_TARIFF_CHANGE:
            tcu = codec.find(codec.group(used_avp), codec.TARIFF_CHANGE_USAGE)
            assert tcu is not None  # a value was read from it
            raise MalformedAvp(tcu, f"Tariff-Change-Usage {reported.tariff_change_usage}")
    reasons = [
        codec.value(a)
        for a in codec.find_all(holder, 872, codec.TGPP)  # Reporting-Reason
    ]
    if ussd:
        if identifier is None:
            raise MissingAvp(codec.SERVICE_IDENTIFIER)
        access_code = UsageCharge.ussd_access_code(identifier)
    else:
        access_code = service.value.upper()
    try:
        return UsageRequest(
            service=service,
            unit=unit,
            access_code=access_code,
            destination=destination,
            rating_group=rating_group,
            service_identifier=identifier,
            requested=requested,
            used=used,
            final=_FINAL_REPORT in reasons,
            used_after_change=after_change,
        )
    except DomainError as error:  # negative units
        raise AnswerWithError(codec.INVALID_AVP_VALUE, message=str(error)) from None


#: The CCR's AVPs that occur at most once (RFC 4006 3.1, RFC 6733 7.5: 5009)
_ONCE: Final = frozenset(
    {
        codec.SESSION_ID,
        codec.ORIGIN_HOST,
        codec.ORIGIN_REALM,
        codec.DESTINATION_REALM,
        codec.DESTINATION_HOST,
        codec.AUTH_APPLICATION_ID,
        codec.SERVICE_CONTEXT_ID,
        codec.CC_REQUEST_TYPE,
        codec.CC_REQUEST_NUMBER,
        codec.REQUESTED_ACTION,
        codec.TERMINATION_CAUSE,
        codec.ORIGIN_STATE_ID,
        1,  # User-Name
        55,  # Event-Timestamp
    }
)


def _check_avps(avps: Sequence[Avp]) -> None:
    """A CCR's top-level AVPs: none with a reserved flag bit set (RFC 6733
    4.1: 3009), no base AVP unknown with the M-bit (5001), none of those that
    occur once there twice (5009); each with the offending AVP in Failed-AVP."""
    seen: set[int] = set()
    for avp in avps:
        if avp.flags & _RESERVED:
            raise AnswerWithError(
                codec.INVALID_AVP_BITS, codec.failed_avp(avp), f"AVP {avp.code}: reserved bits"
            )
        if avp.flags & _MANDATORY and avp.name == "Unknown" and not avp.vendor_id:
            # RFC 6733 4.1. Vendors' AVPs are let through: the dictionary does
            # not know every gateway's, and refusing one would refuse all its calls
            raise AnswerWithError(
                codec.AVP_UNSUPPORTED, codec.failed_avp(avp), f"AVP {avp.code} is not known"
            )
        code = avp.code
        if code in _ONCE and not avp.vendor_id:
            if code in seen:
                raise AnswerWithError(
                    codec.AVP_OCCURS_TOO_MANY_TIMES,
                    codec.failed_avp(avp),
                    f"AVP {code} occurs more than once",
                )
            seen.add(code)


def parse(request: Message, options: CreditControlOptions) -> CreditControlRequest:
    """Read a CCR; ``MissingAvp``, ``MalformedAvp`` or ``AnswerWithError``
    when it cannot be served."""
    avps = request.avps
    session_id = codec.required_text(avps, codec.SESSION_ID)
    _check_avps(avps)
    application = codec.required_integer(avps, codec.AUTH_APPLICATION_ID)
    if application != codec.CREDIT_CONTROL_APPLICATION:
        raise MalformedAvp(
            codec.find(avps, codec.AUTH_APPLICATION_ID) or avps[0],
            f"Auth-Application-Id {application} in a CCR",
        )
    codec.required_text(avps, codec.DESTINATION_REALM)
    request_type = codec.required_integer(avps, codec.CC_REQUEST_TYPE)
    if request_type not in (codec.INITIAL, codec.UPDATE, codec.TERMINATE, codec.EVENT):
        raise MalformedAvp(
            codec.find(avps, codec.CC_REQUEST_TYPE) or codec.new(codec.CC_REQUEST_TYPE, 0),
            f"CC-Request-Type {request_type}",
        )
    number = codec.required_integer(avps, codec.CC_REQUEST_NUMBER)
    context = codec.required_text(avps, codec.SERVICE_CONTEXT_ID)
    origin_host = codec.required_text(avps, codec.ORIGIN_HOST)
    origin_realm = codec.required_text(avps, codec.ORIGIN_REALM)
    subscriber = _subscriber(avps)
    if subscriber is None and request_type in (codec.INITIAL, codec.EVENT):
        raise MissingAvp(codec.SUBSCRIPTION_ID)
    action = codec.integer(avps, codec.REQUESTED_ACTION)
    if action is not None and action not in range(4):
        raise MalformedAvp(codec.find(avps, codec.REQUESTED_ACTION) or avps[0], "Requested-Action")
    service, unit = _service_of(context, options.ussd_context_id)
    ussd = service is Service.USSD
    destination = _destination(avps, service)
    top_identifier = codec.integer(avps, codec.SERVICE_IDENTIFIER)
    parsed = CreditControlRequest(
        session_id=session_id,
        request_type=request_type,
        number=number,
        context=context,
        origin_host=origin_host,
        origin_realm=origin_realm,
        subscriber=subscriber,
        requested_action=action,
        termination_cause=codec.integer(avps, codec.TERMINATION_CAUSE),
    )
    mscc = codec.find_all(avps, codec.MULTIPLE_SERVICES_CREDIT_CONTROL)
    if mscc:
        parsed.streams = [
            _usage(codec.group(m), service, unit, destination, ussd, top_identifier) for m in mscc
        ]
        seen: set[str] = set()
        for avp, stream in zip(mscc, parsed.streams, strict=True):
            if stream.key in seen:
                # one Rating-Group and Service-Identifier asked twice: granted
                # twice, one reservation would pay for both
                raise MalformedAvp(avp, "a second MSCC of one Rating-Group and Service-Identifier")
            seen.add(stream.key)
    else:
        # one service: the units are at the top level (Ro voice, SMS, USSD)
        parsed.in_mscc = False
        parsed.streams = [_usage(avps, service, unit, destination, ussd)]
    return parsed


# -- the answer ------------------------------------------------------------------------


def _service_unit(
    code: int, unit: Unit, amount: int, tariff_change_at: datetime | None = None
) -> Avp:
    if unit is Unit.BYTES:
        inner = codec.new(codec.CC_TOTAL_OCTETS, amount)
    elif unit is Unit.SECONDS:
        inner = codec.new(codec.CC_TIME, amount)
    else:
        inner = codec.new(codec.CC_SERVICE_SPECIFIC_UNITS, amount)
    if tariff_change_at is None:
        return codec.new(code, [inner])
    # RFC 4006 8.17: the rate changes at this instant within the grant; the
    # client then reports the units before and after it apart (8.18, 8.20)
    return codec.new(code, [codec.new(codec.TARIFF_TIME_CHANGE, tariff_change_at), inner])


#: RFC 4006 5.6.3: RESTRICT_ACCESS names the filter the gateway applies (set
#: up on it under these names, as a RADIUS NAS's ``Filter-Id`` is).
_RESTRICTION_FILTERS: Final = {
    ExhaustionAction.RESTRICT: "restrict",  # the free rating groups only
    ExhaustionAction.THROTTLE: "throttle",
}


def _final_unit(final: FinalUnitIndication) -> Avp:
    inner = [codec.new(codec.FINAL_UNIT_ACTION, _FINAL_ACTIONS[final.action])]
    restriction = _RESTRICTION_FILTERS.get(final.action)
    if restriction is not None:
        inner.append(codec.new(codec.FILTER_ID, restriction))
    if final.action is ExhaustionAction.REDIRECT and final.redirect_url:
        inner.append(
            codec.new(
                codec.REDIRECT_SERVER,
                [
                    codec.new(codec.REDIRECT_ADDRESS_TYPE, codec.REDIRECT_URL),
                    codec.new(codec.REDIRECT_SERVER_ADDRESS, final.redirect_url),
                ],
            )
        )
    return codec.new(codec.FINAL_UNIT_INDICATION, inner)


def _result_avps(result: Grant | Denial, validity: int) -> tuple[int, list[Avp]]:
    """The result code and the AVPs of one stream's answer."""
    ids: list[Avp] = []
    if result.service_identifier is not None:
        ids.append(codec.new(codec.SERVICE_IDENTIFIER, result.service_identifier))
    if result.rating_group is not None:
        ids.append(codec.new(codec.RATING_GROUP, result.rating_group))
    if isinstance(result, Denial):
        code = RESULT_OF_REASON.get(result.reason, codec.UNABLE_TO_COMPLY)
        body = [*ids]
        if result.final is not None and result.final.action is not ExhaustionAction.TERMINATE:
            # RFC 4006 5.6.3: no credit, but redirect or restrict instead of
            # ending the session; come back after Validity-Time
            body += [_final_unit(result.final), codec.new(codec.VALIDITY_TIME, validity)]
        return code, body
    body = [*ids]
    if result.units or result.validity_seconds:
        body.append(
            _service_unit(
                codec.GRANTED_SERVICE_UNIT, result.unit, result.units, result.tariff_change_at
            )
        )
    if result.validity_seconds:
        body.append(codec.new(codec.VALIDITY_TIME, result.validity_seconds))
    if result.threshold and not result.free:
        if result.unit is Unit.BYTES:
            body.append(codec.new(codec.VOLUME_QUOTA_THRESHOLD, result.threshold, codec.TGPP))
        elif result.unit is Unit.SECONDS:
            body.append(codec.new(codec.TIME_QUOTA_THRESHOLD, result.threshold, codec.TGPP))
    if result.final is not None:
        body.append(_final_unit(result.final))
    return codec.SUCCESS, body


def _cost_information(price: Money) -> Avp:
    sign, digits, exponent = price.amount.normalize().as_tuple()
    value = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    exp = int(exponent) if isinstance(exponent, int) else 0
    return codec.new(
        codec.COST_INFORMATION,
        [
            codec.new(
                codec.UNIT_VALUE,
                [codec.new(codec.VALUE_DIGITS, value), codec.new(codec.EXPONENT, exp)],
            ),
            codec.new(codec.CURRENCY_CODE, _CURRENCY_NUMBERS.get(price.currency, 999)),
        ],
    )


def _translated(number: str) -> Avp:
    return codec.new(
        codec.SERVICE_INFORMATION,
        [
            codec.new(
                codec.IMS_INFORMATION,
                [codec.new(codec.CALLED_PARTY_ADDRESS, f"tel:+{number}", codec.TGPP)],
                codec.TGPP,
            )
        ],
        codec.TGPP,
    )


def result_of_error(error: BaseException) -> int:
    if isinstance(error, UnknownSubscriber):
        return codec.USER_UNKNOWN
    if isinstance(error, UnknownSession | SessionClosed):
        return codec.UNKNOWN_SESSION_ID
    if isinstance(error, ConcurrentChange):
        return _TOO_BUSY  # another node changed the session: the gateway retries
    if isinstance(error, NotFound):
        return codec.USER_UNKNOWN
    if isinstance(error, DomainError):
        return RESULT_OF_REASON.get(error.code, codec.UNABLE_TO_COMPLY)
    return codec.UNABLE_TO_COMPLY


class CreditControlAnswers:
    """Answers CCRs through the CreditControl use case."""

    def __init__(
        self,
        credit_control: Charging,
        peers: SessionPeers,
        clock: Clock,
        options: CreditControlOptions,
        identity: tuple[str, str],
        validity_seconds: int,
    ) -> None:
        self._cc = credit_control
        self._peers = peers
        self._clock = clock
        self._ids = TimeOrderedIds()
        self._options = options
        self._identity = identity
        self._validity = validity_seconds

    def _error(self, request: Message, result: int, failed: Avp | None = None) -> Message:
        avps = [
            codec.new(codec.AUTH_APPLICATION_ID, codec.CREDIT_CONTROL_APPLICATION),
            codec.new(codec.RESULT_CODE, result),
        ]
        for code in (codec.CC_REQUEST_TYPE, codec.CC_REQUEST_NUMBER):
            try:
                got = codec.integer(request.avps, code)
            except MalformedAvp:
                got = None
            if got is not None:
                avps.append(codec.new(code, got))
        if failed is not None:
            avps.append(failed)
        # 3xxx are protocol errors: the answer carries the E-bit
        return codec.answer_to(request, *self._identity, avps, error=3000 <= result < 4000)

    async def answer(self, request: Message) -> tuple[Message, str]:
        """The CCA to ``request`` and the operation name (for metrics)."""
        try:
            ccr = parse(request, self._options)
        except MissingAvp as missing:
            failed = codec.failed_avp(code=missing.code, vendor=missing.vendor)
            return self._error(request, codec.MISSING_AVP, failed), "ccr_invalid"
        except codec.InvalidAvpLength as wrong:
            failed = codec.failed_avp(wrong.avp)
            return self._error(request, codec.INVALID_AVP_LENGTH, failed), "ccr_invalid"
        except MalformedAvp as malformed:
            failed = codec.failed_avp(malformed.avp)
            return self._error(request, codec.INVALID_AVP_VALUE, failed), "ccr_invalid"
        except AnswerWithError as refused:
            return self._error(request, refused.result, refused.failed), "ccr_invalid"
        operation = {
            codec.INITIAL: "ccr_initial",
            codec.UPDATE: "ccr_update",
            codec.TERMINATE: "ccr_terminate",
            codec.EVENT: "ccr_event",
        }[ccr.request_type]
        try:
            avps = await self._charge(ccr)
        except AnswerWithError as refused:
            return self._error(request, refused.result, refused.failed), operation
        except DomainError as error:
            log.info(
                "diameter: CCR refused",
                extra={"session_id": ccr.session_id, "reason": error.code, "error": str(error)},
            )
            return self._error(request, result_of_error(error)), operation
        head = [
            codec.new(codec.AUTH_APPLICATION_ID, codec.CREDIT_CONTROL_APPLICATION),
            codec.new(codec.CC_REQUEST_TYPE, ccr.request_type),
            codec.new(codec.CC_REQUEST_NUMBER, ccr.number),
        ]
        return codec.answer_to(request, *self._identity, [*head, *avps]), operation

    async def _charge(self, ccr: CreditControlRequest) -> list[Avp]:
        if ccr.request_type == codec.EVENT:
            return await self._event(ccr)
        if ccr.request_type == codec.INITIAL:
            assert ccr.subscriber is not None  # parse requires it
            peer = Opened(ccr.session_id, ccr.origin_host, ccr.origin_realm, self._clock.now())
            answer = await self._cc.start(
                ccr.session_id,
                ccr.subscriber,
                ccr.streams,
                number=ccr.number,
                companion=Companion(self._peers, peer),
            )
        elif ccr.request_type == codec.UPDATE:
            answer = await self._cc.update(ccr.session_id, ccr.number, ccr.streams)
            if answer.kind is RequestKind.TERMINATE:
                # Tcc supervision ended the session under this request number
                raise AnswerWithError(codec.UNKNOWN_SESSION_ID, message="the session was released")
        else:
            cause = "normal" if ccr.termination_cause in (None, 1) else str(ccr.termination_cause)
            answer = await self._cc.terminate(
                ccr.session_id,
                ccr.number,
                ccr.streams,
                cause=cause,
                companion=Companion(self._peers, Ended(ccr.session_id)),
            )
        return self._results(ccr, answer)

    def _results(self, ccr: CreditControlRequest, answer: Answer) -> list[Avp]:
        coded = [_result_avps(result, self._validity) for result in answer.results]
        codes = [code for code, _ in coded]
        failing = [code for code in codes if code != codec.SUCCESS]
        if not ccr.in_mscc:
            top = failing[0] if failing else codec.SUCCESS
            avps = [codec.new(codec.RESULT_CODE, top)]
            for _, body in coded:
                # a single service: its AVPs at the top level (no ids there)
                avps += [
                    a for a in body if a.code not in (codec.RATING_GROUP, codec.SERVICE_IDENTIFIER)
                ]
        else:
            raised = answer.raise_mscc_result_code
            if raised is None:
                raised = self._options.raise_mscc_result_code
            if failing and (len(failing) == len(codes) or raised):
                # every stream failed for the same cause, or the operator wants
                # a failing stream's code at the top for gateways that look only
                # there (the product's policy, else the node's setting)
                top = failing[0]
            else:
                top = codec.SUCCESS
            avps = [codec.new(codec.RESULT_CODE, top)]
            for code, body in coded:
                avps.append(
                    codec.new(
                        codec.MULTIPLE_SERVICES_CREDIT_CONTROL,
                        [*body, codec.new(codec.RESULT_CODE, code)],
                    )
                )
        if answer.translated_number:
            avps.append(_translated(answer.translated_number))
        return avps

    async def _event(self, ccr: CreditControlRequest) -> list[Avp]:
        assert ccr.subscriber is not None
        action = codec.DIRECT_DEBITING if ccr.requested_action is None else ccr.requested_action
        stream = ccr.streams[0]
        action_avp = codec.new(codec.REQUESTED_ACTION, action)
        if action == codec.DIRECT_DEBITING:
            if stream.requested is None or stream.requested == 0:
                stream = _with_requested(stream, 1)  # one message, one USSD step
            # the xDR is named here, so that the session's note (for a
            # REFUND_ACCOUNT) is written with the charge
            xdr_id = self._ids.new("xdr")
            noted = Opened(
                ccr.session_id, ccr.origin_host, ccr.origin_realm, self._clock.now(), xdr_id
            )
            answer = await self._cc.debit(
                ccr.session_id,
                ccr.subscriber,
                stream,
                number=ccr.number,
                companion=Companion(self._peers, noted),
                xdr_id=xdr_id,
            )
            return [action_avp, *self._results(ccr, answer)]
        if action == codec.REFUND_ACCOUNT:
            peer = await self._peers.get(ccr.session_id)
            if peer is None or peer.xdr_id is None:
                raise AnswerWithError(codec.UNKNOWN_SESSION_ID, message="nothing to refund")
            refunded = await self._cc.refund(peer.xdr_id)
            return [
                action_avp,
                codec.new(codec.RESULT_CODE, codec.SUCCESS),
                _cost_information(refunded),
            ]
        if stream.requested is None or stream.requested == 0:
            stream = _with_requested(stream, 1)
        if action == codec.CHECK_BALANCE:
            enough = await self._cc.can_afford(ccr.subscriber, stream)
            return [
                action_avp,
                codec.new(codec.RESULT_CODE, codec.SUCCESS),
                codec.new(
                    codec.CHECK_BALANCE_RESULT, codec.ENOUGH_CREDIT if enough else codec.NO_CREDIT
                ),
            ]
        price = await self._cc.price(ccr.subscriber, stream)
        return [action_avp, codec.new(codec.RESULT_CODE, codec.SUCCESS), _cost_information(price)]


def _with_requested(request: UsageRequest, units: int) -> UsageRequest:
    return UsageRequest(
        service=request.service,
        unit=request.unit,
        access_code=request.access_code,
        destination=request.destination,
        rating_group=request.rating_group,
        service_identifier=request.service_identifier,
        requested=units,
        used=request.used,
        final=request.final,
        used_after_change=request.used_after_change,
    )
