"""Tags, hashes and pseudonyms for redaction, and finding them again (gristmill.ops.pii.fake)."""

from __future__ import annotations

import ipaddress
import re

import pytest

from gristmill.ops.pii.fake import hash_tag, normalise, protected_ranges, pseudonym, tag
from gristmill.ops.pii.patterns import iban_valid, luhn_valid, ssn_valid

SAMPLES = {
    "PERSON": "Jouni Hahli", "ORGANIZATION": "Allianz", "LOCATION": "Helsinki",
    "STREET_ADDRESS": "1668 Glyn St", "EMAIL_ADDRESS": "jouni@corp.fi", "PHONE_NUMBER": "+1 212-555-0142",
    "CREDIT_CARD": "4111 1111 1111 1111", "IBAN_CODE": "GB82WEST12345698765432", "US_SSN": "123-45-6789",
    "IP_ADDRESS": "10.1.2.3", "URL": "https://corp.fi/x", "URL_CREDENTIALS": "admin:hunter2",
    "SECRET": "AKIAIOSFODNN7ABCDEFG",
}


@pytest.mark.parametrize("typ", sorted(SAMPLES))
def test_pseudonyms_are_consistent_and_salted(typ: str) -> None:
    value = SAMPLES[typ]
    fake = pseudonym(typ, value, "salt-a")
    assert fake == pseudonym(typ, value, "salt-a")
    assert fake != value
    others = {pseudonym(typ, value, f"salt-{i}") for i in range(8)}
    assert len(others) > 1


@pytest.mark.parametrize("typ", sorted(SAMPLES))
def test_every_pseudonym_is_found_again_in_context(typ: str) -> None:
    fake = pseudonym(typ, SAMPLES[typ], "s")
    text = f"Before ({fake}), after."
    start = text.index(fake)
    assert (start, start + len(fake)) in protected_ranges(text), fake


def test_pseudonyms_lie_in_reserved_ranges() -> None:
    assert pseudonym("EMAIL_ADDRESS", "a@b.com", "s").split("@")[1] in ("example.com", "example.org", "example.net")
    assert re.fullmatch(r"\(\d{3}\) 555-01\d\d", pseudonym("PHONE_NUMBER", "212 555 0142", "s"))
    card = pseudonym("CREDIT_CARD", "4111-1111-1111-1111", "s")
    assert card.startswith("0") and "-" in card and not luhn_valid(card.replace("-", ""))
    iban = pseudonym("IBAN_CODE", "GB82WEST12345698765432", "s")
    assert iban[:4] == "GB00" and len(iban) == 22 and not iban_valid(iban)
    area, group, serial = pseudonym("US_SSN", "123-45-6789", "s").split("-")
    assert area == "666" and not ssn_valid(area, group, serial)
    docs = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
    for value in ("10.1.2.3", "fe80::1"):
        ip = ipaddress.ip_address(pseudonym("IP_ADDRESS", value, "s"))
        assert any(ip in net for net in docs if net.version == ip.version)
    assert "EXAMPLE" in pseudonym("SECRET", "ghp_" + "x" * 36, "s")


def test_spelling_variants_share_a_pseudonym() -> None:
    assert pseudonym("PERSON", "John  Smith", "s") == pseudonym("PERSON", "john smith", "s")
    assert pseudonym("PHONE_NUMBER", "(212) 555-0142", "s") == pseudonym("PHONE_NUMBER", "212.555.0142", "s")
    assert normalise("IBAN_CODE", "gb82 west 1234") == "GB82WEST1234"


def test_address_lines_keep_their_shape() -> None:
    assert re.fullmatch(r"Apt\. \d{3}", pseudonym("STREET_ADDRESS", "Apt. 946", "s", part=True))
    assert re.fullmatch(r"\d{5}", pseudonym("STREET_ADDRESS", "11248", "s", part=True))
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+ \d{5}", pseudonym("STREET_ADDRESS", "Poland 11248", "s", part=True))


def test_dates_become_tags() -> None:
    assert pseudonym("DATE_OF_BIRTH", "10/23/1951", "s") == "<DATE_OF_BIRTH>"


def test_tags_and_hash_tags() -> None:
    assert tag("PERSON") == "<PERSON>"
    h = hash_tag("EMAIL_ADDRESS", "a@b.com", "s")
    assert re.fullmatch(r"<EMAIL_ADDRESS:[0-9a-f]{12}>", h)
    assert h == hash_tag("EMAIL_ADDRESS", "A@B.com", "s") != hash_tag("EMAIL_ADDRESS", "a@b.com", "t")
    text = f"x {h} <PERSON> y"
    assert protected_ranges(text) == [(2, 2 + len(h)), (3 + len(h), 11 + len(h))]


def test_real_values_are_not_protected() -> None:
    # (555-0100..0199 would be: they are reserved for fiction, so never a real number)
    text = "Mary Smith, john@corp.fi, (212) 555-0299, 4111 1111 1111 1111, 192.168.0.1, Jordan Abbott"
    assert protected_ranges(text) == []


def test_a_fake_ip_address_before_a_full_stop_or_port_is_recognised() -> None:
    """Found by a property test: 'The host was 10.1.2.3.' became '... 203.0.113.84.', whose fake
    address a second pass did not recognise before the full stop, and replaced again."""
    text = "The host was 203.0.113.84. Next: 2001:db8::1f:9a."
    assert [text[a:b] for a, b in protected_ranges(text)] == ["203.0.113.84", "2001:db8::1f:9a"]
    assert protected_ranges("203.0.113.84.5") == []  # a longer dotted number is not the fake
    # nor a fake IPv4 address followed by a port ("10.1.2.3:8080" became "203.0.113.84:8080")
    assert protected_ranges("at 203.0.113.84:8080") == [(3, 15)]
    assert protected_ranges("2001:db8::1f:9a:7") == []
    assert protected_ranges("203.0.113.84_x") == [(0, 12)]  # an underscore is an edge, as for detection
    assert protected_ranges("ip:203.0.113.84") == [(3, 15)]


def test_fake_ssns_and_cards_have_the_edges_the_detectors_accept() -> None:
    text = "x_666-12-3456_y, -666-12-3456, 0347 2215 9920 1736_z"
    assert [text[a:b] for a, b in protected_ranges(text)] == ["666-12-3456", "666-12-3456", "0347 2215 9920 1736"]
    assert protected_ranges("1666-12-3456 and a-666-12-3456") == []
    # four groups in the middle of a run of groups are not a fake card: two real cards side by side
    assert protected_ranges("5100 0000 0000 0008 5101 0000 0000 0007") == []
