"""How a charging answer becomes a CCA's result codes: per MSCC, and at the
top level with and without the "raise MSCC result code" option."""

from __future__ import annotations

import pytest

from ratel.adapters.diameter import codec
from ratel.adapters.diameter.credit_control import (
    CreditControlAnswers,
    CreditControlOptions,
    CreditControlRequest,
)
from ratel.domain.catalogue import Unit
from ratel.domain.charging import Answer, Denial, Grant, RequestKind


def answers(raise_code: bool) -> CreditControlAnswers:
    return CreditControlAnswers(
        credit_control=None,  # type: ignore[arg-type]  # _results needs no use case
        peers=None,  # type: ignore[arg-type]
        clock=None,  # type: ignore[arg-type]
        options=CreditControlOptions(raise_mscc_result_code=raise_code),
        identity=("ocs.test", "test"),
        validity_seconds=600,
    )


def request(in_mscc: bool = True) -> CreditControlRequest:
    return CreditControlRequest(
        "s", codec.UPDATE, 1, "32251@3gpp.org", "gw", "gw.test", None, None, in_mscc=in_mscc
    )


GRANT = Grant("k10", 10, None, Unit.BYTES, 1000, 600, 200)
DENIED = Denial("k20", 20, None, "rating_failed", "no rate")
BLOCKED = Denial("k30", 30, None, "account_blocked", "blocked")


def codes(avps: list) -> tuple[int | None, list[int | None]]:
    msccs = codec.find_all(avps, codec.MULTIPLE_SERVICES_CREDIT_CONTROL)
    return (
        codec.integer(avps, codec.RESULT_CODE),
        [codec.integer(codec.group(m), codec.RESULT_CODE) for m in msccs],
    )


@pytest.mark.parametrize(
    ("raise_code", "results", "expected"),
    [
        (False, (GRANT, DENIED), (2001, [2001, 5031])),
        (True, (GRANT, DENIED), (5031, [2001, 5031])),
        (False, (DENIED, BLOCKED), (5031, [5031, 4010])),  # every stream failed
        (False, (GRANT,), (2001, [2001])),
        (True, (GRANT,), (2001, [2001])),
    ],
)
def test_top_level_result_code(raise_code: bool, results: tuple, expected: tuple) -> None:
    answer = Answer(1, RequestKind.UPDATE, results)
    assert codes(answers(raise_code)._results(request(), answer)) == expected


def test_a_single_service_answers_at_the_top_level() -> None:
    answer = Answer(1, RequestKind.UPDATE, (GRANT,))
    avps = answers(False)._results(request(in_mscc=False), answer)
    assert codes(avps) == (2001, [])
    assert codec.find(avps, codec.GRANTED_SERVICE_UNIT) is not None
    assert codec.find(avps, codec.RATING_GROUP) is None
