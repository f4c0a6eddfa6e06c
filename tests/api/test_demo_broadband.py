"""The demo's broadband access: a BRAS at 127.0.0.1 and a PPPoE login, made
once, kept as an operator changed them when the demo is loaded again."""

from __future__ import annotations

from ratel.application.radius import Credentials
from ratel.container import Container
from ratel.demo import DEMO_NAS, DEMO_PPPOE, load_demo
from ratel.domain.nas import NasVendor


async def test_the_demo_bras_and_pppoe_login_let_the_fibre_account_in(
    container: Container,
) -> None:
    report = await load_demo(container)
    assert report.nas == DEMO_NAS and report.pppoe == DEMO_PPPOE
    [nas] = await container.manage_nas().list()
    assert (nas.address, nas.secret, nas.vendor) == ("127.0.0.1", DEMO_NAS.secret, NasVendor.HUAWEI)
    # nothing listens on the demo's CoA port: ratel sends it nothing
    assert not nas.accepts_coa and not nas.accepts_disconnect

    authorize = container.authorize_login()
    accepted = await authorize(DEMO_PPPOE.user_name, Credentials(pap_password=DEMO_PPPOE.password))
    assert accepted.accepted and accepted.account_id == "acc_demo_bob_fibre"
    assert accepted.policy is not None and accepted.policy.download_kbps == 100_000
    refused = await authorize(DEMO_PPPOE.user_name, Credentials(pap_password="not-it"))
    assert not refused.accepted


async def test_loading_again_keeps_the_bras_and_a_changed_secret(container: Container) -> None:
    await load_demo(container)
    [nas] = await container.manage_nas().list()
    await container.manage_nas().change(nas.id, secret="changed-by-the-operator")
    await container.set_chap_secret()(DEMO_PPPOE.account_id, "changed-pppoe-password")

    await load_demo(container)
    [again] = await container.manage_nas().list()
    assert again.id == nas.id and again.secret == "changed-by-the-operator"
    async with container.uow()() as uow:
        account = await uow.accounts.get(DEMO_PPPOE.account_id)
    assert account is not None and DEMO_PPPOE.user_name in account.identifiers.aliases
    authorize = container.authorize_login()
    kept = await authorize(DEMO_PPPOE.user_name, Credentials(pap_password="changed-pppoe-password"))
    assert kept.accepted
