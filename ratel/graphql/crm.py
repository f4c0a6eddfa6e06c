"""Root fields for the CRM apps and the back office: the Zendesk app's link
between a customer and a Zendesk organization, vouchers (never their codes)
and the named service policies.

The Salesforce tab needs no field of its own: ``customers(filter: {country,
productCode})`` for a campaign, a customer's ``payments`` and ``products``,
and ``addAddOn(effectiveTo: ...)``. The Zendesk app finds a customer with
``customers(filter: {name})`` or ``{accountId}``, or by its organization
here, and links back with ``Customer.pageUrl``.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from ratel.domain.crm import CrmSystem
from ratel.domain.customer import Customer as CustomerDomain
from ratel.domain.voucher import VoucherStatus as VoucherStatusDomain
from ratel.graphql.fields import attempt, guarded, guarded_mutation
from ratel.graphql.permissions import may_read
from ratel.graphql.types import (
    Connection,
    Customer,
    Info,
    NamedServicePolicy,
    ServicePolicy,
    UserError,
    Voucher,
    connection,
    decode_cursor,
    encode_cursor,
    page_size,
    slice_connection,
)


@strawberry.enum
class VoucherStatus(Enum):
    ACTIVE = "active"
    REDEEMED = "redeemed"
    CANCELLED = "cancelled"


@strawberry.type
class ZendeskLinkPayload:
    customer: Customer | None
    zendesk_organization_id: str | None
    errors: list[UserError]


@strawberry.type
class CrmQuery:
    @guarded("Vouchers ordered by id, of one batch or status if given (never their codes).")
    async def vouchers(
        self,
        info: Info,
        batch: str | None = None,
        status: VoucherStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Voucher]:
        size = page_size(first)
        after_id = decode_cursor(after, "voucher")
        rows = await info.context.use_cases.list_vouchers(
            batch=batch,
            status=VoucherStatusDomain(status.value) if status else None,
            after=after_id,
            limit=size + 1,
        )
        return connection(
            [Voucher.of(v) for v in rows],
            size,
            lambda v, _i: encode_cursor("voucher", v.id),
            has_previous=after_id is not None,
        )

    @guarded("The named service policies of the catalogue, by code.")
    async def service_policies(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[NamedServicePolicy]:
        policies = await info.context.use_cases.list_service_policies()
        named = [
            NamedServicePolicy(code=code, policy=ServicePolicy.of(policy))
            for code, policy in policies.items()
        ]
        return slice_connection(named, first, after)

    @guarded("Zendesk app: the customer linked to a Zendesk organization (null: none).")
    async def customer_by_zendesk_organization(
        self, info: Info, organization_id: str
    ) -> Customer | None:
        customer = await info.context.use_cases.customer_by_crm_record(
            CrmSystem.ZENDESK, organization_id
        )
        return Customer.of(customer) if customer else None


@strawberry.type
class CrmMutation:
    @guarded_mutation("Zendesk app: link a customer to a Zendesk organization.")
    async def link_zendesk_organization(
        self, info: Info, customer_id: str, organization_id: str
    ) -> ZendeskLinkPayload:
        call = info.context.use_cases.link_crm_record
        customer, errors = await attempt(
            lambda: call(customer_id, CrmSystem.ZENDESK, organization_id)
        )
        return _link_payload(info, customer, organization_id.strip() if customer else None, errors)

    @guarded_mutation("Zendesk app: remove a customer's link to its Zendesk organization.")
    async def unlink_zendesk_organization(self, info: Info, customer_id: str) -> ZendeskLinkPayload:
        use_cases = info.context.use_cases

        async def call() -> CustomerDomain | None:
            await use_cases.unlink_crm_record(customer_id, CrmSystem.ZENDESK)
            found = await use_cases.customers_by_id([customer_id])
            return found.get(customer_id)

        customer, errors = await attempt(call)
        return _link_payload(info, customer, None, errors)


def _link_payload(
    info: Info,
    customer: CustomerDomain | None,
    organization_id: str | None,
    errors: list[UserError],
) -> ZendeskLinkPayload:
    readable = customer is not None and may_read(info, "Query.customer", customer.id)
    return ZendeskLinkPayload(
        customer=Customer.of(customer) if customer and readable else None,
        zendesk_organization_id=organization_id,
        errors=errors,
    )
