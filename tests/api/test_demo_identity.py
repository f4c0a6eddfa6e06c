"""The demo's callers: staff logins, a self-care password and a USSD key."""

from __future__ import annotations

import pytest

from ratel.application.identity import CallerKind, Permission
from ratel.container import Container
from ratel.demo import DEMO_STAFF, SELF_CARE_ACCOUNT, SELF_CARE_PASSWORD, load_demo
from ratel.domain.staff import AuthenticationFailed


async def test_the_demo_callers_can_log_in(container: Container) -> None:
    report = await load_demo(container)
    assert [s.login for s in report.staff] == ["admin", "helpdesk"]
    authenticate = container.authenticate_caller()

    for staff in DEMO_STAFF:
        session = await container.staff_login()(staff.login, staff.password)
        principal = await authenticate(session.token)
        assert principal.kind is CallerKind.STAFF and principal.roles == {staff.role}
    admin = await container.staff_login()("admin", "ratel-admin-demo")
    helpdesk = await container.staff_login()("helpdesk", "ratel-helpdesk-demo")
    assert (await authenticate(admin.token)).may(Permission.CUSTOMERS_WRITE)
    assert not (await authenticate(helpdesk.token)).may(Permission.CUSTOMERS_WRITE)

    assert report.self_care == (SELF_CARE_ACCOUNT, SELF_CARE_PASSWORD)
    alice = await container.self_care_login()(SELF_CARE_ACCOUNT, SELF_CARE_PASSWORD)
    assert alice.principal.account_id == "acc_demo_alice"
    assert alice.principal.customer_id == "cus_demo_alice"

    assert report.ussd_api_key is not None and report.ussd_api_key.startswith("rk_")
    gateway = await authenticate(report.ussd_api_key)
    assert gateway.kind is CallerKind.API_CLIENT and gateway.may(Permission.USSD)


async def test_loading_again_keeps_the_callers(container: Container) -> None:
    first = await load_demo(container)
    alice = await container.self_care_login()(SELF_CARE_ACCOUNT, SELF_CARE_PASSWORD)
    again = await load_demo(container)
    # nothing made twice, nothing reset: the first key and session still work
    assert again.ussd_api_key is None
    assert len(await container.list_api_keys()()) == 1
    assert [s.login for s in await container.list_staff()()] == ["admin", "helpdesk"]
    assert first.ussd_api_key is not None
    authenticate = container.authenticate_caller()
    assert (await authenticate(first.ussd_api_key)).may(Permission.USSD)
    assert (await authenticate(alice.token)).account_id == SELF_CARE_ACCOUNT


async def test_demo_passwords_are_checked(container: Container) -> None:
    await load_demo(container)
    with pytest.raises(AuthenticationFailed):
        await container.staff_login()("admin", "ratel-helpdesk-demo")
