"""GraphQL for RADIUS: the NAS registry and CHAP secrets (administrators only).

The shared secret of a NAS is written, never read back: ``Nas`` has no
secret field.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from ratel.application.radius import ManageNas, RadiusSessions, SetChapSecret
from ratel.domain import nas as nas_domain
from ratel.domain.errors import DomainError
from ratel.graphql.permissions import Guard
from ratel.graphql.types import Connection, Info, UserError, slice_connection


@strawberry.enum
class NasVendor(Enum):
    HUAWEI = "huawei"
    JUNIPER = "juniper"
    ALCATEL = "alcatel"
    CISCO = "cisco"
    CISCO_PDSN = "cisco_pdsn"
    CISCO_ASR5700 = "cisco_asr5700"
    GENERIC = "generic"


@strawberry.type(description="A RADIUS client (BRAS, router, PDSN) known by its address.")
class Nas:
    id: str
    name: str
    address: str
    vendor: NasVendor
    accepts_coa: bool
    accepts_disconnect: bool
    dae_port: int
    require_message_authenticator: bool

    @staticmethod
    def of(nas: nas_domain.Nas) -> Nas:
        return Nas(
            id=nas.id,
            name=nas.name,
            address=nas.address,
            vendor=NasVendor(nas.vendor.value),
            accepts_coa=nas.accepts_coa,
            accepts_disconnect=nas.accepts_disconnect,
            dae_port=nas.dae_port,
            require_message_authenticator=nas.require_message_authenticator,
        )


@strawberry.type(description="An open broadband session as its NAS reports it.")
class RadiusSession:
    nas_address: str
    acct_session_id: str
    charging_session_id: str
    user_name: str
    framed_ip: str | None
    # octets can pass 2^31: GraphQL's Int cannot hold them
    input_octets: str
    output_octets: str
    session_time: int
    restricted: bool = strawberry.field(description="Hotlined or throttled by a CoA.")
    restriction: str | None = strawberry.field(
        description="How: hotline (redirected to the top-up portal) or throttle; null: neither."
    )
    last_dae: str | None = strawberry.field(
        description="The NAS's answer to the last CoA / Disconnect (ACK, NAK with Error-Cause)."
    )
    started_at: datetime
    updated_at: datetime

    @staticmethod
    def of(session: nas_domain.RadiusSession) -> RadiusSession:
        return RadiusSession(
            nas_address=session.nas_address,
            acct_session_id=session.acct_session_id,
            charging_session_id=session.charging_session_id,
            user_name=session.user_name,
            framed_ip=session.framed_ip,
            input_octets=str(session.input_octets),
            output_octets=str(session.output_octets),
            session_time=min(session.session_time, 2**31 - 1),
            restricted=session.restricted,
            restriction=session.restriction.value if session.restriction else None,
            last_dae=session.last_dae,
            started_at=session.started_at,
            updated_at=session.updated_at,
        )


@strawberry.input
class NasInput:
    name: str
    address: str
    secret: str
    vendor: NasVendor = NasVendor.GENERIC
    accepts_coa: bool = False
    accepts_disconnect: bool = False
    dae_port: int = nas_domain.DEFAULT_DAE_PORT
    require_message_authenticator: bool = False


@strawberry.input
class NasChangeInput:
    name: str | None = None
    address: str | None = None
    secret: str | None = None
    vendor: NasVendor | None = None
    accepts_coa: bool | None = None
    accepts_disconnect: bool | None = None
    dae_port: int | None = None
    require_message_authenticator: bool | None = None


@strawberry.type
class NasPayload:
    nas: Nas | None
    errors: list[UserError]


@strawberry.type
class DonePayload:
    done: bool
    errors: list[UserError]


def _manage_nas(info: Info) -> ManageNas:
    manage = info.context.use_cases.manage_nas
    if manage is None:
        raise DomainError("RADIUS is not configured in this process")
    return manage


def _radius_sessions(info: Info) -> RadiusSessions:
    sessions = info.context.use_cases.radius_sessions
    if sessions is None:
        raise DomainError("RADIUS is not configured in this process")
    return sessions


def _set_chap_secret(info: Info) -> SetChapSecret:
    use_case = info.context.use_cases.set_chap_secret
    if use_case is None:
        raise DomainError("RADIUS is not configured in this process")
    return use_case


@strawberry.type
class RadiusQuery:
    @strawberry.field(description="Every NAS, by name.", extensions=[Guard()])
    async def nas_list(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Nas]:
        # a registry of routers: short enough to page in memory
        nas = await _manage_nas(info).list()
        return slice_connection([Nas.of(n) for n in nas], first, after)

    @strawberry.field(
        description="An account's open broadband sessions, with their last CoA outcome.",
        extensions=[Guard()],
    )
    async def radius_sessions(
        self, info: Info, account_id: str, first: int | None = None, after: str | None = None
    ) -> Connection[RadiusSession]:
        sessions = await _radius_sessions(info).open_for_account(account_id)
        return slice_connection([RadiusSession.of(s) for s in sessions], first, after)


@strawberry.type
class RadiusMutation:
    @strawberry.mutation(description="Register a NAS.", extensions=[Guard()])
    async def register_nas(self, info: Info, input: NasInput) -> NasPayload:
        try:
            nas = await _manage_nas(info).register(
                input.name,
                input.address,
                input.secret,
                vendor=nas_domain.NasVendor(input.vendor.value),
                accepts_coa=input.accepts_coa,
                accepts_disconnect=input.accepts_disconnect,
                dae_port=input.dae_port,
                require_message_authenticator=input.require_message_authenticator,
            )
        except (DomainError, ValueError) as error:
            return NasPayload(nas=None, errors=[UserError.of(error)])
        return NasPayload(nas=Nas.of(nas), errors=[])

    @strawberry.mutation(description="Change some fields of a NAS.", extensions=[Guard()])
    async def change_nas(self, info: Info, id: str, input: NasChangeInput) -> NasPayload:
        fields: dict[str, object] = {
            name: value
            for name, value in vars(input).items()
            if value is not None and name != "vendor"
        }
        if input.vendor is not None:
            fields["vendor"] = nas_domain.NasVendor(input.vendor.value)
        try:
            nas = await _manage_nas(info).change(id, **fields)
        except (DomainError, ValueError, TypeError) as error:
            return NasPayload(nas=None, errors=[UserError.of(error)])
        return NasPayload(nas=Nas.of(nas), errors=[])

    @strawberry.mutation(description="Forget a NAS: its packets are dropped.", extensions=[Guard()])
    async def remove_nas(self, info: Info, id: str) -> DonePayload:
        try:
            removed = await _manage_nas(info).remove(id)
        except DomainError as error:
            return DonePayload(done=False, errors=[UserError.of(error)])
        if not removed:
            missing = UserError(code="not_found", message=f"NAS {id} does not exist")
            return DonePayload(done=False, errors=[missing])
        return DonePayload(done=True, errors=[])

    @strawberry.mutation(
        description="The password an account's router sends with CHAP.", extensions=[Guard()]
    )
    async def set_chap_secret(self, info: Info, account_id: str, secret: str) -> DonePayload:
        try:
            await _set_chap_secret(info)(account_id, secret)
        except (DomainError, ValueError) as error:
            return DonePayload(done=False, errors=[UserError.of(error)])
        return DonePayload(done=True, errors=[])
