"""Links of customers to the CRM systems that know them: a Zendesk
organization (the Zendesk app links it; provisioning may create it)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from ratel.domain.errors import DomainError

_MAX_RECORD_ID: Final = 64


class CrmSystem(StrEnum):
    ZENDESK = "zendesk"


class InvalidCrmRecord(DomainError, ValueError):
    """A CRM record id is empty, too long or has spaces or control characters."""

    code = "invalid_crm_record"


class CrmRecordTaken(DomainError):
    """The CRM record is linked to another customer already."""

    code = "crm_record_taken"


def record_id(value: str, system: CrmSystem | None = None) -> str:
    """A CRM record id as stored: stripped, 1 to 64 printable characters, no
    spaces. A Zendesk organization id is a number: ASCII digits, stored
    without leading zeros (``0360001`` and ``360001`` are one organization,
    and one customer's)."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > _MAX_RECORD_ID:
        raise InvalidCrmRecord(f"a CRM record id has 1 to {_MAX_RECORD_ID} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise InvalidCrmRecord(f"not a CRM record id: {value!r}")
    if system is CrmSystem.ZENDESK:
        if not (text.isascii() and text.isdigit()):
            raise InvalidCrmRecord(f"a Zendesk organization id is a number: {value!r}")
        return str(int(text))
    return text
