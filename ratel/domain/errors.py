"""Typed domain errors. Adapters turn them into protocol answers
(Diameter result codes, RADIUS Access-Reject, GraphQL user errors)."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the operation. ``code`` is a stable name for APIs."""

    code = "domain_error"


class InvalidMoney(DomainError, ValueError):
    code = "invalid_money"


class CurrencyMismatch(DomainError, ValueError):
    code = "currency_mismatch"


class InvalidIdentifier(DomainError, ValueError):
    code = "invalid_identifier"


class IllegalTransition(DomainError):
    """A lifecycle change that the current status does not allow."""

    code = "illegal_transition"


class CustomerClosed(IllegalTransition):
    code = "customer_closed"


class AccountTerminated(IllegalTransition):
    code = "account_terminated"


class ServiceDenied(DomainError):
    """The account may not use a service now (blocked, suspended, terminated,
    restricted location, service not in its products)."""

    code = "service_denied"


class AccountBlocked(ServiceDenied):
    code = "account_blocked"


class CustomerSuspended(ServiceDenied):
    code = "customer_suspended"


class LocationRestricted(ServiceDenied):
    code = "location_restricted"


class ServiceNotSubscribed(ServiceDenied):
    code = "service_not_subscribed"


class InsufficientFunds(DomainError):
    """Neither quota nor money (within the credit limit) covers the request."""

    code = "insufficient_funds"


class CreditLimitExceeded(InsufficientFunds):
    code = "credit_limit_exceeded"


class RatingFailed(DomainError):
    """No tariff or rate covers the destination or access code."""

    code = "rating_failed"


class InvalidCatalogue(DomainError, ValueError):
    code = "invalid_catalogue"


class InvalidQuota(DomainError, ValueError):
    code = "invalid_quota"


class SessionClosed(DomainError):
    """A credit-control request arrived for a session that already ended."""

    code = "session_closed"


class OutOfOrderRequest(DomainError):
    """A request number older than the last answered one that is not a retransmission."""

    code = "out_of_order_request"


# -- customers and accounts ------------------------------------------------------


class NaiveDatetime(DomainError, ValueError):
    """A time without a timezone: the domain works in timezone-aware UTC only."""

    code = "naive_datetime"


class InvalidCustomer(DomainError, ValueError):
    """A customer field is malformed (name, country, email, billing period)."""

    code = "invalid_customer"


class InvalidAccount(DomainError, ValueError):
    """An account field is malformed (empty id or product code, bad location)."""

    code = "invalid_account"


class CustomerClosedDenied(CustomerClosed, ServiceDenied):
    """A service was asked for on an account of a closed (terminated) customer.
    Both a ``CustomerClosed`` and a ``ServiceDenied``, so adapters answer it as
    a rejection like the other denials."""

    code = "customer_closed"


class AccountTerminatedDenied(AccountTerminated, ServiceDenied):
    """A service was asked for on a terminated account. Both an
    ``AccountTerminated`` and a ``ServiceDenied`` (see ``CustomerClosedDenied``)."""

    code = "account_terminated"


class InvalidAddOn(DomainError, ValueError):
    """An add-on assignment is malformed, e.g. its window ends before it starts."""

    code = "invalid_add_on"


class DuplicateAddOn(InvalidAddOn):
    """The account already holds an add-on assignment with this id."""

    code = "duplicate_add_on"


class UnknownAddOn(DomainError, LookupError):
    """The account holds no add-on assignment with this id."""

    code = "unknown_add_on"


class LocationNotRestricted(IllegalTransition):
    """A location block can only be lifted where the location is restricted."""

    code = "location_not_restricted"


class DuplicateIdentifier(DomainError):
    """An identifier (MSISDN, IMSI, ICCID, alias, ...) already names another account."""

    code = "duplicate_identifier"


class ReferenceReused(DomainError):
    """A top-up or payment names a reference the customer already has for
    another amount (a retried request is answered with the first one)."""

    code = "reference_reused"


class SessionExists(DomainError):
    """A credit-control session with this id was already started."""

    code = "session_exists"


class NotFound(DomainError, LookupError):
    """An object named in a request does not exist."""

    code = "not_found"


class ConcurrentChange(DomainError):
    """Another transaction changed the same object first; the call may be retried."""

    code = "concurrent_change"
