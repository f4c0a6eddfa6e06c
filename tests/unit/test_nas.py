"""NAS definitions and the counters of an accounting session."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratel.domain.nas import InvalidNas, Nas, NasVendor, RadiusSession

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def session(input_octets: int = 0, output_octets: int = 0) -> RadiusSession:
    return RadiusSession(
        nas_address="192.0.2.1",
        acct_session_id="s",
        charging_session_id="radius:192.0.2.1:s",
        sub_session="",
        account_id="acc",
        customer_id="cus",
        user_name="alice",
        started_at=NOW,
        updated_at=NOW,
        input_octets=input_octets,
        output_octets=output_octets,
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"name": " "},
        {"address": "bras-1.example"},
        {"secret": ""},
        {"secret": "x" * 129},
        {"dae_port": 0},
        {"vendor": NasVendor.CISCO_ASR5700, "accepts_coa": True},
    ],
)
def test_a_nas_that_cannot_be_used_is_refused(fields: dict[str, object]) -> None:
    values: dict[str, object] = {"id": "n", "name": "bras", "address": "192.0.2.1", "secret": "s"}
    values.update(fields)
    with pytest.raises(InvalidNas):
        Nas(**values)  # type: ignore[arg-type]


def test_changing_a_nas_validates_again() -> None:
    nas = Nas(id="n", name="bras", address="192.0.2.1", secret="s")
    assert nas.changed(address="2001:DB8::7").address == "2001:db8::7"
    with pytest.raises(InvalidNas):
        nas.changed(address="nowhere")


@given(
    before=st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)),
    after=st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)),
)
def test_usage_is_never_negative_and_stale_reports_are_recognised(
    before: tuple[int, int], after: tuple[int, int]
) -> None:
    known = session(*before)
    used = known.usage_since(*after)
    assert used >= 0
    wrapped = [b < 2**32 and a < b and b - a > 2**31 for b, a in zip(before, after, strict=True)]
    since = sum(after) - sum(before) + 2**32 * sum(wrapped)
    assert known.is_stale(*after) == (since < 0)
    if not known.is_stale(*after):
        assert used == since


def test_a_32_bit_counter_that_wrapped_is_charged_across_the_wrap() -> None:
    """A NAS that sends no Gigawords: 4 GiB - 100 octets in, then 50 after the
    wrap is 150 octets used, not a late report."""
    known = session(2**32 - 100, 10)
    assert not known.is_stale(50, 10)
    assert known.usage_since(50, 10) == 150
    # a report a little behind is still a late one
    assert known.is_stale(2**32 - 200, 10)
    assert known.usage_since(2**32 - 200, 10) == 0
