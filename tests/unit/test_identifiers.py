"""Identifier value objects: validation tables, canonical strings, round trips."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratel.domain.errors import DomainError, InvalidIdentifier
from ratel.domain.identifiers import (
    UNSET,
    CpeDevice,
    Iccid,
    Identifiers,
    Imei,
    Imsi,
    Msisdn,
    StaticIp,
    luhn_check_digit,
    luhn_valid,
)

# -- Luhn -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("490154203237518", True),
        ("490154203237519", False),
        ("79927398713", True),
        ("79927398710", False),
        ("0", True),
        ("", False),
        ("12a4", False),
    ],
)
def test_luhn_valid(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@given(st.text(alphabet="0123456789", min_size=1, max_size=25))
def test_luhn_check_digit_always_completes_a_valid_number(payload: str) -> None:
    assert luhn_valid(payload + luhn_check_digit(payload))


def test_luhn_check_digit_refuses_non_digits() -> None:
    with pytest.raises(InvalidIdentifier):
        luhn_check_digit("12x")


# -- MSISDN ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("447700900123", "447700900123"),
        ("+447700900123", "447700900123"),
        ("  +15551234567 ", "15551234567"),
        ("123456", "123456"),  # 6 digits: the shortest allowed
        ("123456789012345", "123456789012345"),  # 15 digits: the E.164 maximum
    ],
)
def test_valid_msisdn(text: str, canonical: str) -> None:
    msisdn = Msisdn(text)
    assert str(msisdn) == canonical
    assert msisdn.e164 == "+" + canonical
    assert Msisdn.parse(str(msisdn)) == msisdn


@pytest.mark.parametrize(
    "text",
    [
        "",
        "+",
        "12345",  # too short
        "1234567890123456",  # 16 digits: too long
        "++447700900123",
        "44 7700 900123",
        "44-7700-900123",
        "44770090012a",
        "+-447700900123",
        "٤٤٧٧٠٠٩٠٠١٢٣",  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_invalid_msisdn(text: str) -> None:
    with pytest.raises(InvalidIdentifier):
        Msisdn(text)


def test_invalid_identifier_is_a_domain_error_and_a_value_error() -> None:
    with pytest.raises(DomainError):
        Msisdn("x")
    with pytest.raises(ValueError):
        Msisdn("x")


def test_msisdn_refuses_a_non_string() -> None:
    with pytest.raises(InvalidIdentifier):
        Msisdn(447700900123)  # type: ignore[arg-type]


# -- IMSI -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mcc", "mnc", "msin"),
    [
        ("234150999999999", "234", "15", "0999999999"),  # UK, 2-digit MNC
        ("310150123456789", "310", "150", "123456789"),  # USA, 3-digit MNC
        ("722310123456789", "722", "310", "123456789"),  # Argentina, 3-digit MNC
        ("50501123456789", "505", "01", "123456789"),  # 14 digits
        (" 262011234567890 ", "262", "01", "1234567890"),
    ],
)
def test_valid_imsi(text: str, mcc: str, mnc: str, msin: str) -> None:
    imsi = Imsi(text)
    assert (imsi.mcc, imsi.mnc, imsi.msin) == (mcc, mnc, msin)
    assert imsi.plmn == mcc + mnc
    assert str(imsi) == text.strip()
    assert Imsi.parse(str(imsi)) == imsi


@pytest.mark.parametrize(
    "text",
    ["", "1234567890123", "1234567890123456", "23415099999999x", "+234150999999999"],
)
def test_invalid_imsi(text: str) -> None:
    with pytest.raises(InvalidIdentifier):
        Imsi(text)


def test_imsi_split_with_explicit_mnc_length() -> None:
    imsi = Imsi("405025123456789")
    assert imsi.split() == ("405", "02", "5123456789")
    assert imsi.split(3) == ("405", "025", "123456789")
    with pytest.raises(InvalidIdentifier):
        imsi.split(4)


# -- ICCID ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "894450010219830482",  # 18 digits: no check digit
        "890000000000000000",  # 18 digits: any digits after 89
        "8944500102198304826",  # 19 digits, Luhn ok
        "89012608822912345677",  # 20 digits, Luhn ok
        "89314404000012345675",
    ],
)
def test_valid_iccid(text: str) -> None:
    iccid = Iccid(text)
    assert str(iccid) == text
    assert Iccid.parse(text) == iccid
    assert iccid.has_check_digit is (len(text) >= 19)


@pytest.mark.parametrize(
    "text",
    [
        "8944500102198304827",  # 19 digits, wrong check digit
        "89012608822912345670",  # 20 digits, wrong check digit
        "9944500102198304826",  # not the telecom prefix 89
        "79012608822912345677",
        "89445001021983048",  # 17 digits
        "890126088229123456770",  # 21 digits
        "8944500102198304F26",
        "",
    ],
)
def test_invalid_iccid(text: str) -> None:
    with pytest.raises(InvalidIdentifier):
        Iccid(text)


# -- IMEI -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tac", "imeisv", "svn"),
    [
        ("490154203237518", "49015420", False, None),
        ("352099001761481", "35209900", False, None),
        ("3520990017614823", "35209900", True, "23"),  # IMEISV: no check digit
        ("4901542032375100", "49015420", True, "00"),
    ],
)
def test_valid_imei(text: str, tac: str, imeisv: bool, svn: str | None) -> None:
    imei = Imei(text)
    assert imei.tac == tac
    assert imei.is_imeisv is imeisv
    assert imei.software_version == svn
    assert str(imei) == text
    assert Imei.parse(text) == imei


@pytest.mark.parametrize(
    "text",
    [
        "490154203237519",  # wrong check digit
        "352099001761482",
        "49015420323751",  # 14 digits
        "49015420323751800",  # 17 digits
        "49-015420-323751-8",
        "",
    ],
)
def test_invalid_imei(text: str) -> None:
    with pytest.raises(InvalidIdentifier):
        Imei(text)


# -- CPE device -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "serial", "port", "port_type", "canonical"),
    [
        ("CXNK0012AB34", "CXNK0012AB34", None, None, "CXNK0012AB34"),
        ("cxnk0012ab34", "CXNK0012AB34", None, None, "CXNK0012AB34"),
        ("CXNK0012AB34/3", "CXNK0012AB34", 3, None, "CXNK0012AB34/3"),
        ("CXNK0012AB34/*", "CXNK0012AB34", None, None, "CXNK0012AB34"),
        ("CXNK0012AB34/*/GE", "CXNK0012AB34", None, "GE", "CXNK0012AB34/*/GE"),
        ("CXNK0012AB34/1/rg", "CXNK0012AB34", 1, "RG", "CXNK0012AB34/1/RG"),
        ("00:1a:2b:3c:4d:5e", "00:1A:2B:3C:4D:5E", None, None, "00:1A:2B:3C:4D:5E"),
    ],
)
def test_cpe_parse(
    text: str, serial: str, port: int | None, port_type: str | None, canonical: str
) -> None:
    cpe = CpeDevice.parse(text)
    assert (cpe.serial, cpe.port, cpe.port_type) == (serial, port, port_type)
    assert cpe.all_ports is (port is None)
    assert str(cpe) == canonical
    assert CpeDevice.parse(str(cpe)) == cpe


@pytest.mark.parametrize(
    "text",
    [
        "",
        "/3",
        "CXNK0012AB34/",
        "CXNK0012AB34/0",
        "CXNK0012AB34/x",
        "CXNK0012AB34/-1",
        "CXNK0012AB34/1/XX",
        "CXNK0012AB34/1/GE/extra",
        "CXNK 0012AB34",
    ],
)
def test_invalid_cpe(text: str) -> None:
    with pytest.raises(InvalidIdentifier):
        CpeDevice.parse(text)


@pytest.mark.parametrize(
    ("port", "port_type"),
    [(0, None), (True, None), ("1", None), (None, "ONT"), (None, "")],
)
def test_invalid_cpe_fields(port: object, port_type: str | None) -> None:
    with pytest.raises(InvalidIdentifier):
        CpeDevice("CXNK0012AB34", port, port_type)  # type: ignore[arg-type]


# -- static IP ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address", "netmask", "prefixlen", "canonical"),
    [
        ("10.1.2.3/24", IPv4Address("10.1.2.3"), IPv4Address("255.255.255.0"), 24, "10.1.2.3/24"),
        (
            "10.1.2.3/255.255.255.252",
            IPv4Address("10.1.2.3"),
            IPv4Address("255.255.255.252"),
            30,
            "10.1.2.3/30",
        ),
        ("192.0.2.7", IPv4Address("192.0.2.7"), IPv4Address("255.255.255.255"), 32, "192.0.2.7/32"),
        (
            "2001:db8::5/64",
            IPv6Address("2001:db8::5"),
            IPv6Address("ffff:ffff:ffff:ffff::"),
            64,
            "2001:db8::5/64",
        ),
    ],
)
def test_static_ip(
    text: str,
    address: IPv4Address | IPv6Address,
    netmask: IPv4Address | IPv6Address,
    prefixlen: int,
    canonical: str,
) -> None:
    ip = StaticIp.parse(text)
    assert (ip.address, ip.netmask, ip.prefixlen) == (address, netmask, prefixlen)
    assert str(ip) == canonical
    assert StaticIp.parse(str(ip)) == ip


def test_static_ip_from_separate_address_and_netmask() -> None:
    assert StaticIp.of("10.1.2.3", "255.255.255.0") == StaticIp.parse("10.1.2.3/24")
    assert StaticIp.of("10.1.2.3", 24).version == 4


@pytest.mark.parametrize(
    "text", ["", "10.1.2", "10.1.2.3/33", "10.1.2.3/255.0.255.0", "300.1.2.3", "x/24"]
)
def test_invalid_static_ip(text: str) -> None:
    with pytest.raises(InvalidIdentifier):
        StaticIp.parse(text)


# -- Identifiers ----------------------------------------------------------------


def test_identifiers_are_all_optional() -> None:
    ids = Identifiers()
    assert ids.to_dict() == {
        "msisdn": None,
        "imsi": None,
        "iccid": None,
        "imei": None,
        "aliases": [],
        "cpe": None,
        "static_ip": None,
    }


def test_identifiers_replace_changes_given_fields_and_none_clears() -> None:
    ids = Identifiers(msisdn=Msisdn("447700900123"), imsi=Imsi("234150999999999"))
    changed = ids.replace(msisdn=None, imei=Imei("490154203237518"))
    assert changed.msisdn is None
    assert changed.imsi == ids.imsi
    assert changed.imei == Imei("490154203237518")
    assert changed.changed_fields(ids) == ("msisdn", "imei")
    assert ids.replace() == ids
    assert ids.replace(msisdn=UNSET) == ids


def test_identifiers_aliases_normalised_and_added() -> None:
    ids = Identifiers(aliases=frozenset({" modem-1 "}))
    assert ids.aliases == frozenset({"modem-1"})
    assert ids.with_alias("modem-2").aliases == frozenset({"modem-1", "modem-2"})
    with pytest.raises(InvalidIdentifier):
        ids.with_alias("  ")
    with pytest.raises(InvalidIdentifier):
        Identifiers(aliases="modem-1")  # type: ignore[arg-type]


def test_identifiers_refuse_raw_strings() -> None:
    with pytest.raises(InvalidIdentifier):
        Identifiers(msisdn="447700900123")  # type: ignore[arg-type]


def test_identifiers_to_dict_gives_canonical_strings() -> None:
    ids = Identifiers(
        msisdn=Msisdn("+447700900123"),
        iccid=Iccid("8944500102198304826"),
        aliases=frozenset({"b", "a"}),
        cpe=CpeDevice("CXNK0012AB34", None, "GE"),
        static_ip=StaticIp.parse("10.1.2.3/255.255.255.0"),
    )
    assert ids.to_dict() == {
        "msisdn": "447700900123",
        "imsi": None,
        "iccid": "8944500102198304826",
        "imei": None,
        "aliases": ["a", "b"],
        "cpe": "CXNK0012AB34/*/GE",
        "static_ip": "10.1.2.3/24",
    }


def test_identifiers_are_hashable_values() -> None:
    a = Identifiers(msisdn=Msisdn("447700900123"), aliases=frozenset({"x"}))
    b = Identifiers(msisdn=Msisdn("+447700900123"), aliases=frozenset({"x"}))
    assert a == b
    assert hash(a) == hash(b)
