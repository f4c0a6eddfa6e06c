"""Account lifecycle, add-ons, identifiers, location and usability."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratel.domain import events
from ratel.domain.account import Account, AccountStatus, AddOnAssignment
from ratel.domain.customer import Customer, CustomerStatus
from ratel.domain.errors import (
    AccountBlocked,
    AccountTerminated,
    CustomerClosed,
    CustomerSuspended,
    DomainError,
    DuplicateAddOn,
    IllegalTransition,
    InvalidAccount,
    InvalidAddOn,
    LocationNotRestricted,
    LocationRestricted,
    NaiveDatetime,
    ServiceDenied,
    UnknownAddOn,
)
from ratel.domain.identifiers import (
    CpeDevice,
    Iccid,
    Identifiers,
    Imei,
    Imsi,
    Msisdn,
    StaticIp,
)
from ratel.domain.location import LocationPolicy
from ratel.domain.wallet import Wallet

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
DAY = timedelta(days=1)
POLICY = LocationPolicy()

ACTIVE, BLOCKED, TERMINATED = AccountStatus.ACTIVE, AccountStatus.BLOCKED, AccountStatus.TERMINATED


def account_in(status: AccountStatus) -> Account:
    """A stored account rebuilt in ``status``: one running 30-day add-on (a-1),
    one that ended before LATER (a-2), roaming at sea; records nothing."""
    return Account(
        id="a-1",
        customer_id="c-1",
        product_code="MOBILE_S",
        created_at=NOW - 10 * DAY,
        status=status,
        add_ons=[
            AddOnAssignment("add-1", "DATA_30D", 10, NOW - DAY, NOW + 29 * DAY),
            AddOnAssignment("add-2", "DATA_24H", 10, NOW - DAY, NOW),
        ],
        identifiers=Identifiers(msisdn=Msisdn("447700900123"), imsi=Imsi("234150999999999")),
        location="MARITIME",
        location_changed_at=NOW - DAY,
    )


def customer_in(status: CustomerStatus) -> Customer:
    return Customer(
        id="c-1",
        name="Ada",
        currency="USD",
        wallet=Wallet.empty("USD"),
        created_at=NOW - 10 * DAY,
        status=status,
    )


# -- creation --------------------------------------------------------------------


def test_create_records_account_created() -> None:
    ids = Identifiers(msisdn=Msisdn("+447700900123"))
    account = Account.create(
        "a-9", "c-1", "FIBER_100", NOW, identifiers=ids, custom_fields={"crm": "x"}
    )
    assert account.status is ACTIVE
    assert account.identifiers == ids
    assert account.custom_fields == {"crm": "x"}
    assert account.add_ons == []
    assert account.location is None
    assert not account.location_block_lifted
    assert account.pull_events() == [
        events.AccountCreated(
            occurred_at=NOW, account_id="a-9", customer_id="c-1", product_code="FIBER_100"
        )
    ]
    assert account.pull_events() == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"id": ""}, InvalidAccount),
        ({"customer_id": " "}, InvalidAccount),
        ({"product_code": ""}, InvalidAccount),
        ({"created_at": datetime(2025, 1, 1)}, NaiveDatetime),  # noqa: DTZ001
        ({"location": " "}, InvalidAccount),
        ({"location_changed_at": datetime(2025, 1, 1)}, NaiveDatetime),  # noqa: DTZ001
        ({"custom_fields": {"k": 1}}, InvalidAccount),
        ({"identifiers": None}, InvalidAccount),
        ({"status": "frozen"}, ValueError),
        (
            {
                "add_ons": [
                    AddOnAssignment("x", "P", 1, NOW),
                    AddOnAssignment("x", "Q", 1, NOW),
                ]
            },
            DuplicateAddOn,
        ),
    ],
)
def test_invalid_account(kwargs: dict[str, object], error: type[Exception]) -> None:
    fields: dict[str, object] = {
        "id": "a-1",
        "customer_id": "c-1",
        "product_code": "P",
        "created_at": NOW,
    }
    with pytest.raises(error):
        Account(**(fields | kwargs))  # type: ignore[arg-type]


# -- every (status, action) pair --------------------------------------------------

Action = Callable[[Account], object]

ACTIONS: dict[str, Action] = {
    "block": lambda a: a.block("credit limit", LATER),
    "unblock": lambda a: a.unblock(LATER),
    "terminate": lambda a: a.terminate(LATER),
    "change_product": lambda a: a.change_product("MOBILE_L", LATER),
    "add_add_on": lambda a: a.add_add_on("add-3", "ROAM_7D", 5, LATER, duration=7 * DAY),
    "remove_add_on": lambda a: a.remove_add_on("add-1", LATER),
    "expire_add_ons": lambda a: a.expire_add_ons(LATER),
    "change_sim": lambda a: a.change_sim(
        Imsi("234150888888888"), Iccid("8944500102198304826"), LATER
    ),
    "change_number": lambda a: a.change_number(Msisdn("447700900999"), LATER),
    "set_identifiers": lambda a: a.set_identifiers(LATER, imei=Imei("490154203237518")),
    "add_alias": lambda a: a.add_alias("NTC-MODEM-77", LATER),
    "update_custom_fields": lambda a: a.update_custom_fields(LATER, {"clientid": "17"}),
    "set_location": lambda a: a.set_location("AEROSPACE", LATER, POLICY),
    "lift_location_block": lambda a: a.lift_location_block(LATER, POLICY),
}

# Actions that do not touch the status: one event each, in any live status.
PLAIN_EVENTS: dict[str, type[events.DomainEvent]] = {
    "change_product": events.ProductChanged,
    "add_add_on": events.AddOnAdded,
    "remove_add_on": events.AddOnRemoved,
    "expire_add_ons": events.AddOnRemoved,
    "change_sim": events.SimChanged,
    "change_number": events.NumberChanged,
    "set_identifiers": events.AccountUpdated,
    "add_alias": events.AccountUpdated,
    "update_custom_fields": events.AccountUpdated,
    "set_location": events.LocationChanged,
    "lift_location_block": events.LocationBlockLifted,
}

# (status before, action) -> (status after, event type or None for a no-op) or the error.
Outcome = tuple[AccountStatus, type[events.DomainEvent] | None] | type[DomainError]
TRANSITIONS: dict[tuple[AccountStatus, str], Outcome] = {
    (ACTIVE, "block"): (BLOCKED, events.AccountBlocked),
    (ACTIVE, "unblock"): (ACTIVE, None),
    (ACTIVE, "terminate"): (TERMINATED, events.AccountTerminated),
    (BLOCKED, "block"): (BLOCKED, None),
    (BLOCKED, "unblock"): (ACTIVE, events.AccountUnblocked),
    (BLOCKED, "terminate"): (TERMINATED, events.AccountTerminated),
    **{(s, a): (s, e) for s in (ACTIVE, BLOCKED) for a, e in PLAIN_EVENTS.items()},
    # terminated is final: every change is refused
    **{(TERMINATED, a): AccountTerminated for a in ACTIONS},
}


def test_transition_table_covers_every_pair() -> None:
    assert set(TRANSITIONS) == {(s, a) for s in AccountStatus for a in ACTIONS}


def snapshot(account: Account) -> tuple[object, ...]:
    return (
        account.status,
        account.product_code,
        tuple(account.add_ons),
        account.identifiers,
        tuple(sorted(account.custom_fields.items())),
        account.location,
        account.location_changed_at,
        account.location_block_lifted,
    )


@pytest.mark.parametrize(
    ("status", "action", "outcome"),
    [(s, a, o) for (s, a), o in TRANSITIONS.items()],
    ids=[f"{s}-{a}" for s, a in TRANSITIONS],
)
def test_transition(status: AccountStatus, action: str, outcome: Outcome) -> None:
    account = account_in(status)
    if isinstance(outcome, type):
        before = snapshot(account)
        with pytest.raises(outcome):
            ACTIONS[action](account)
        assert snapshot(account) == before
        assert account.pull_events() == []
        return
    after, event_type = outcome
    ACTIONS[action](account)
    assert account.status is after
    recorded = account.pull_events()
    if event_type is None:
        assert recorded == []
    else:
        assert [type(e) for e in recorded] == [event_type]
        event = recorded[0]
        assert isinstance(event, events.AccountEvent)
        assert (event.occurred_at, event.account_id, event.customer_id) == (LATER, "a-1", "c-1")


def test_account_terminated_is_an_illegal_transition() -> None:
    assert issubclass(AccountTerminated, IllegalTransition)


def test_block_event_carries_the_reason() -> None:
    account = account_in(ACTIVE)
    account.block("credit limit", LATER)
    assert account.pull_events() == [
        events.AccountBlocked(
            occurred_at=LATER, account_id="a-1", customer_id="c-1", reason="credit limit"
        )
    ]


# -- products and add-ons ----------------------------------------------------------------


def new_account() -> Account:
    account = Account.create("a-1", "c-1", "MOBILE_S", NOW)
    account.pull_events()
    return account


def test_change_product_event_and_same_product_is_a_no_op() -> None:
    account = new_account()
    account.change_product("MOBILE_S", LATER)
    assert account.pull_events() == []
    account.change_product("MOBILE_L", LATER)
    assert account.product_code == "MOBILE_L"
    assert account.pull_events() == [
        events.ProductChanged(
            occurred_at=LATER,
            account_id="a-1",
            customer_id="c-1",
            old_product_code="MOBILE_S",
            new_product_code="MOBILE_L",
        )
    ]


def test_24_hour_add_on_window() -> None:
    account = new_account()
    pack = account.add_add_on("p-1", "DATA_24H", 10, NOW, effective_to=NOW + DAY)
    assert pack == AddOnAssignment("p-1", "DATA_24H", 10, NOW, NOW + DAY)
    assert account.pull_events() == [
        events.AddOnAdded(
            occurred_at=NOW,
            account_id="a-1",
            customer_id="c-1",
            product_code="DATA_24H",
            assignment_id="p-1",
            effective_from=NOW,
            effective_to=NOW + DAY,
        )
    ]
    assert not pack.is_active(NOW - timedelta(microseconds=1))
    assert pack.is_active(NOW)
    assert pack.is_active(NOW + DAY - timedelta(microseconds=1))
    assert not pack.is_active(NOW + DAY)  # the end is exclusive
    assert account.expire_add_ons(NOW + DAY - timedelta(seconds=1)) == []
    assert account.pull_events() == []
    assert account.expire_add_ons(NOW + DAY) == [pack]
    assert account.add_ons == []
    assert account.pull_events() == [
        events.AddOnRemoved(
            occurred_at=NOW + DAY,
            account_id="a-1",
            customer_id="c-1",
            product_code="DATA_24H",
            assignment_id="p-1",
            reason="expired",
        )
    ]


def test_30_day_add_on_by_duration_from_a_later_start() -> None:
    account = new_account()
    start = NOW + 2 * DAY
    pack = account.add_add_on("p-1", "DATA_30D", 5, NOW, start, duration=timedelta(days=30))
    assert pack.effective_from == start
    assert pack.effective_to == start + 30 * DAY
    assert account.active_add_ons(NOW) == []  # not yet
    assert account.active_add_ons(start + 29 * DAY) == [pack]
    assert account.active_add_ons(start + 30 * DAY) == []
    assert account.expire_add_ons(start + 30 * DAY + timedelta(hours=3)) == [pack]


def test_add_on_without_end_lasts_until_removed() -> None:
    account = new_account()
    pack = account.add_add_on("p-1", "IPTV_SPORT", 1, NOW)
    assert pack.effective_from == NOW
    assert pack.effective_to is None
    assert pack.is_active(NOW + 3650 * DAY)
    assert account.expire_add_ons(NOW + 3650 * DAY) == []
    account.pull_events()
    assert account.remove_add_on("p-1", LATER) == pack
    assert account.pull_events() == [
        events.AddOnRemoved(
            occurred_at=LATER,
            account_id="a-1",
            customer_id="c-1",
            product_code="IPTV_SPORT",
            assignment_id="p-1",
            reason="removed",
        )
    ]


def test_active_add_ons_by_precedence_then_earliest_expiry() -> None:
    account = new_account()
    low = account.add_add_on("low", "L", 1, NOW, duration=DAY)
    open_high = account.add_add_on("open-high", "H0", 10, NOW)
    long_high = account.add_add_on("long-high", "H30", 10, NOW, duration=30 * DAY)
    short_high = account.add_add_on("short-high", "H1", 10, NOW, duration=DAY)
    medium = account.add_add_on("medium", "M", 5, NOW, duration=7 * DAY)
    future = account.add_add_on("future", "F", 99, NOW, NOW + 5 * DAY, NOW + 6 * DAY)
    assert account.active_add_ons(LATER) == [short_high, long_high, open_high, medium, low]
    assert account.active_add_ons(NOW + 5 * DAY) == [future, long_high, open_high, medium]


def test_expire_add_ons_records_one_event_each_earliest_first() -> None:
    account = new_account()
    account.add_add_on("b", "B", 1, NOW, duration=2 * DAY)
    account.add_add_on("a", "A", 9, NOW, duration=DAY)
    account.add_add_on("c", "C", 5, NOW, duration=10 * DAY)
    account.pull_events()
    expired = account.expire_add_ons(NOW + 3 * DAY)
    assert [a.id for a in expired] == ["a", "b"]
    assert [a.id for a in account.add_ons] == ["c"]
    recorded = account.pull_events()
    removed = [e for e in recorded if isinstance(e, events.AddOnRemoved)]
    assert [(type(e), e.assignment_id, e.reason) for e in removed] == [
        (events.AddOnRemoved, "a", "expired"),
        (events.AddOnRemoved, "b", "expired"),
    ]
    assert len(recorded) == 2


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda a: a.add_add_on("p", "P", 1, NOW, NOW, NOW), InvalidAddOn),
        (lambda a: a.add_add_on("p", "P", 1, NOW, NOW, NOW - DAY), InvalidAddOn),
        (lambda a: a.add_add_on("p", "P", 1, NOW, duration=timedelta(0)), InvalidAddOn),
        (lambda a: a.add_add_on("p", "P", 1, NOW, None, NOW + DAY, duration=DAY), InvalidAddOn),
        (lambda a: a.add_add_on("", "P", 1, NOW), InvalidAddOn),
        (lambda a: a.add_add_on("p", " ", 1, NOW), InvalidAddOn),
        (lambda a: a.add_add_on("p", "P", "high", NOW), InvalidAddOn),
        (
            lambda a: a.add_add_on("p", "P", 1, NOW, datetime(2025, 1, 1)),  # noqa: DTZ001
            NaiveDatetime,
        ),
        (lambda a: a.add_add_on("existing", "P", 1, NOW), DuplicateAddOn),
        (lambda a: a.remove_add_on("nope", NOW), UnknownAddOn),
    ],
)
def test_bad_add_on_changes_nothing(call: Action, error: type[Exception]) -> None:
    account = new_account()
    account.add_add_on("existing", "E", 1, NOW)
    account.pull_events()
    with pytest.raises(error):
        call(account)
    assert [a.id for a in account.add_ons] == ["existing"]
    assert account.pull_events() == []


def test_duplicate_add_on_is_an_invalid_add_on() -> None:
    assert issubclass(DuplicateAddOn, InvalidAddOn)
    assert issubclass(UnknownAddOn, LookupError)


# -- identifiers -----------------------------------------------------------------------


def test_change_sim_event_and_same_sim_is_a_no_op() -> None:
    account = account_in(ACTIVE)
    imsi, iccid = Imsi("234150888888888"), Iccid("8944500102198304826")
    account.change_sim(imsi, iccid, LATER)
    account.change_sim(imsi, iccid, LATER)
    assert account.identifiers.imsi == imsi
    assert account.identifiers.iccid == iccid
    assert account.identifiers.msisdn == Msisdn("447700900123")  # untouched
    assert account.pull_events() == [
        events.SimChanged(
            occurred_at=LATER,
            account_id="a-1",
            customer_id="c-1",
            old_imsi="234150999999999",
            new_imsi="234150888888888",
            old_iccid=None,
            new_iccid="8944500102198304826",
        )
    ]


def test_change_number_event_and_same_number_is_a_no_op() -> None:
    account = account_in(ACTIVE)
    account.change_number(Msisdn("447700900123"), LATER)
    assert account.pull_events() == []
    account.change_number(Msisdn("+447700900999"), LATER)
    account.change_number(None, LATER)
    assert account.identifiers.msisdn is None
    assert account.pull_events() == [
        events.NumberChanged(
            occurred_at=LATER,
            account_id="a-1",
            customer_id="c-1",
            old_msisdn="447700900123",
            new_msisdn="447700900999",
        ),
        events.NumberChanged(
            occurred_at=LATER,
            account_id="a-1",
            customer_id="c-1",
            old_msisdn="447700900999",
            new_msisdn=None,
        ),
    ]


def test_set_identifiers_names_what_changed() -> None:
    account = account_in(ACTIVE)
    cpe = CpeDevice("CXNK0012AB34", None, "GE")
    ip = StaticIp.parse("100.64.0.9/255.255.255.252")
    account.set_identifiers(LATER, cpe=cpe, static_ip=ip, imei=None)  # imei was None already
    account.set_identifiers(LATER, cpe=cpe)  # no change
    assert account.identifiers.cpe == cpe
    assert account.identifiers.static_ip == ip
    assert account.pull_events() == [
        events.AccountUpdated(
            occurred_at=LATER, account_id="a-1", customer_id="c-1", changed=("cpe", "static_ip")
        )
    ]
    account.set_identifiers(LATER, static_ip=None)
    assert account.identifiers.static_ip is None
    assert [e.changed for e in account.pull_events() if isinstance(e, events.AccountUpdated)] == [
        ("static_ip",)
    ]


def test_add_alias_keeps_the_modem_id_once() -> None:
    account = account_in(ACTIVE)
    account.add_alias("NTC-MODEM-77", LATER)
    account.add_alias(" NTC-MODEM-77 ", LATER)
    assert account.identifiers.aliases == frozenset({"NTC-MODEM-77"})
    assert account.pull_events() == [
        events.AccountUpdated(
            occurred_at=LATER, account_id="a-1", customer_id="c-1", changed=("aliases",)
        )
    ]


def test_custom_fields_merge_and_none_removes() -> None:
    account = account_in(ACTIVE)
    account.update_custom_fields(LATER, {"clientid": "17", "phoneid": "99"})
    account.update_custom_fields(LATER, {"phoneid": None, "profile": "gold"})
    account.update_custom_fields(LATER, {"clientid": "17", "missing": None})  # no change
    assert account.custom_fields == {"clientid": "17", "profile": "gold"}
    assert len(account.pull_events()) == 2


@pytest.mark.parametrize("fields", [{"": "x"}, {"k": 3}])
def test_bad_custom_fields_change_nothing(fields: dict[str, object]) -> None:
    account = account_in(ACTIVE)
    with pytest.raises(InvalidAccount):
        account.update_custom_fields(LATER, {"ok": "1", **fields})  # type: ignore[dict-item]
    assert account.custom_fields == {}
    assert account.pull_events() == []


# -- location (the mission's roaming example) ----------------------------------------------


def test_roaming_user_at_sea_loses_data_keeps_voice_and_sms_and_may_lift() -> None:
    customer = customer_in(CustomerStatus.OPEN)
    account = new_account()
    account.set_location("TERRESTRIAL", NOW, POLICY)
    assert account.usable_for(customer, "data", POLICY)

    account.set_location("MARITIME", LATER, POLICY)
    assert account.location == "MARITIME"
    assert account.location_changed_at == LATER
    with pytest.raises(LocationRestricted):
        account.check_can_use(customer, "data", POLICY)
    account.check_can_use(customer, "voice", POLICY)
    account.check_can_use(customer, "sms", POLICY)

    account.lift_location_block(LATER, POLICY)  # from self-care
    assert account.location_block_lifted
    account.check_can_use(customer, "data", POLICY)

    account.set_location("maritime", LATER, POLICY)  # the same place again: nothing changes
    assert account.location_block_lifted

    account.set_location("AEROSPACE", LATER + DAY, POLICY)  # a new location resets the lift
    assert not account.location_block_lifted
    assert not account.usable_for(customer, "data", POLICY)
    assert account.usable_for(customer, "voice", POLICY)

    assert account.status is ACTIVE  # the account itself was never blocked
    assert account.pull_events() == [
        events.LocationChanged(
            occurred_at=NOW,
            account_id="a-1",
            customer_id="c-1",
            location="TERRESTRIAL",
            restricted=False,
        ),
        events.LocationChanged(
            occurred_at=LATER,
            account_id="a-1",
            customer_id="c-1",
            location="MARITIME",
            restricted=True,
        ),
        events.LocationBlockLifted(
            occurred_at=LATER, account_id="a-1", customer_id="c-1", location="MARITIME"
        ),
        events.LocationChanged(
            occurred_at=LATER + DAY,
            account_id="a-1",
            customer_id="c-1",
            location="AEROSPACE",
            restricted=True,
        ),
    ]


def test_lifting_twice_is_a_no_op() -> None:
    account = account_in(ACTIVE)  # at sea
    account.lift_location_block(LATER, POLICY)
    account.lift_location_block(LATER, POLICY)
    assert len(account.pull_events()) == 1


@pytest.mark.parametrize("location", [None, "TERRESTRIAL"])
def test_lifting_outside_a_restricted_location_is_refused(location: str | None) -> None:
    account = new_account()
    if location:
        account.set_location(location, NOW, POLICY)
        account.pull_events()
    with pytest.raises(LocationNotRestricted):
        account.lift_location_block(LATER, POLICY)
    assert not account.location_block_lifted
    assert account.pull_events() == []


def test_location_follows_the_configured_policy() -> None:
    polar = LocationPolicy(restricted_locations=frozenset({"POLAR"}))
    account = new_account()
    account.set_location("MARITIME", NOW, polar)
    assert account.pull_events()[0] == events.LocationChanged(
        occurred_at=NOW, account_id="a-1", customer_id="c-1", location="MARITIME", restricted=False
    )
    assert account.usable_for(customer_in(CustomerStatus.OPEN), "data", polar)


# -- usability ---------------------------------------------------------------------------

OPEN, SUSP, CLOSED = CustomerStatus.OPEN, CustomerStatus.SUSPENDED, CustomerStatus.CLOSED


@pytest.mark.parametrize(
    ("account_status", "customer_status", "service", "location", "lifted", "error"),
    [
        (ACTIVE, OPEN, "data", None, False, None),
        (ACTIVE, OPEN, "voice", "MARITIME", False, None),
        (ACTIVE, OPEN, "sms", "AEROSPACE", False, None),
        (ACTIVE, OPEN, "data", "MARITIME", False, LocationRestricted),
        (ACTIVE, OPEN, "data", "MARITIME", True, None),
        (ACTIVE, SUSP, "voice", None, False, CustomerSuspended),
        (ACTIVE, CLOSED, "voice", None, False, CustomerClosed),
        (BLOCKED, OPEN, "voice", None, False, AccountBlocked),
        (BLOCKED, SUSP, "voice", None, False, AccountBlocked),
        (BLOCKED, CLOSED, "voice", None, False, CustomerClosed),
        (TERMINATED, OPEN, "voice", None, False, AccountTerminated),
        (TERMINATED, SUSP, "voice", None, False, AccountTerminated),
        (TERMINATED, CLOSED, "voice", None, False, AccountTerminated),
        (ACTIVE, SUSP, "data", "MARITIME", False, CustomerSuspended),
    ],
)
def test_check_can_use(
    account_status: AccountStatus,
    customer_status: CustomerStatus,
    service: str,
    location: str | None,
    lifted: bool,
    error: type[DomainError] | None,
) -> None:
    account = Account(
        id="a-1",
        customer_id="c-1",
        product_code="P",
        created_at=NOW,
        status=account_status,
        location=location,
        location_block_lifted=lifted,
    )
    customer = customer_in(customer_status)
    assert account.usable_for(customer, service, POLICY) is (error is None)
    if error is None:
        account.check_can_use(customer, service, POLICY)
    else:
        with pytest.raises(error) as raised:
            account.check_can_use(customer, service, POLICY)
        assert isinstance(raised.value, ServiceDenied)  # adapters turn these into rejections
    assert account.status is account_status


def test_suspended_customer_makes_accounts_unusable_without_changing_them() -> None:
    customer = customer_in(CustomerStatus.OPEN)
    accounts = [new_account(), new_account()]
    customer.suspend("non-payment", NOW)
    for account in accounts:
        assert not account.usable_for(customer, "voice", POLICY)
        assert account.status is ACTIVE
        assert account.pull_events() == []
    customer.resume(LATER)
    assert all(a.usable_for(customer, "voice", POLICY) for a in accounts)


def test_check_can_use_refuses_another_customers_account() -> None:
    other = Customer(id="c-2", name="B", currency="USD", wallet=Wallet.empty("USD"), created_at=NOW)
    with pytest.raises(ValueError):
        new_account().check_can_use(other, "voice", POLICY)


def test_naive_now_is_refused() -> None:
    account = new_account()
    with pytest.raises(NaiveDatetime):
        account.block("x", datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(NaiveDatetime):
        Account.create("a", "c", "P", datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(NaiveDatetime):
        account.active_add_ons(datetime(2025, 1, 1))  # noqa: DTZ001
    assert account.status is ACTIVE


# -- property: lifecycle -------------------------------------------------------------------


def _step_actions(i: int, when: datetime) -> list[Action]:
    """Actions with arguments varied by ``i`` so that repeats hit no-ops,
    duplicates, unknown ids and the same or a new location."""
    product = ["MOBILE_S", "MOBILE_L", "MOBILE_XL"][i % 3]
    location = ["MARITIME", "AEROSPACE", "TERRESTRIAL"][i % 3]
    return [
        lambda a: a.block("x", when),
        lambda a: a.unblock(when),
        lambda a: a.terminate(when),
        lambda a: a.change_product(product, when),
        lambda a: a.add_add_on(f"add-{i % 4}", "PACK", i % 3, when, duration=(i % 3 + 1) * DAY),
        lambda a: a.remove_add_on(f"add-{i % 4}", when),
        lambda a: a.expire_add_ons(when),
        lambda a: a.change_number(Msisdn(f"44770090012{i % 3}"), when),
        lambda a: a.change_sim(Imsi(f"23415099999999{i % 3}"), None, when),
        lambda a: a.add_alias(f"modem-{i % 3}", when),
        lambda a: a.update_custom_fields(when, {"k": str(i % 2)}),
        lambda a: a.set_location(location, when, POLICY),
        lambda a: a.lift_location_block(when, POLICY),
    ]


ACTION_COUNT = len(_step_actions(0, NOW))


@given(
    st.lists(
        st.tuples(
            st.integers(0, ACTION_COUNT - 1),
            st.integers(0, 11),
            st.integers(0, 36 * 60),  # minutes since the previous step
        ),
        max_size=40,
    )
)
def test_terminated_stays_terminated_and_each_change_records_one_event(
    steps: list[tuple[int, int, int]],
) -> None:
    account = new_account()
    when = NOW
    terminated = False
    for which, variant, minutes in steps:
        when += timedelta(minutes=minutes)
        before = snapshot(account)
        before_add_ons = list(account.add_ons)
        try:
            _step_actions(variant, when)[which](account)
        except DomainError:
            assert snapshot(account) == before  # a refusal changes nothing
            assert account.pull_events() == []
        else:
            recorded = account.pull_events()
            if snapshot(account) == before:
                assert recorded == []
            elif recorded and isinstance(recorded[0], events.AddOnRemoved):
                # expiry drops several add-ons at once: one event per add-on
                assert len(recorded) == len(before_add_ons) - len(account.add_ons)
            else:
                assert len(recorded) == 1
            assert all(e.occurred_at == when for e in recorded)
        terminated = terminated or account.status is TERMINATED
        if terminated:
            assert account.status is TERMINATED
