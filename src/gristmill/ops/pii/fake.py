"""Replacement values for redaction: type tags, salted hashes and consistent pseudonyms,
and a scanner that finds them again in redacted text.

* tag: ``<EMAIL_ADDRESS>``;
* hash: ``<EMAIL_ADDRESS:5d41402abc4b>`` — the first 12 hex digits of
  sha256(salt, normalised value), the same for a value wherever it occurs;
* pseudonym: a fake value of the same type chosen by the salted hash of the normalised
  value (case, spacing and punctuation of numbers ignored), so the same original maps to
  the same fake value in every shard and worker without shared state.

Every fake value lies in a reserved range or carries a check that makes it recognisable
out of context, so :func:`protected_ranges` finds it again and detection skips it
(redacting redacted text changes nothing):

====================  ====================================================  ================================
type                  fake value                                            why it is never a real value
====================  ====================================================  ================================
EMAIL_ADDRESS         ``avery.ellis37@example.org``                          example.com/.org/.net are reserved (RFC 2606)
PHONE_NUMBER          ``(415) 555-0137``                                     555-0100..0199 are reserved for fiction (NANP)
CREDIT_CARD           ``0347 2215 9920 1736``                                leading 0 is no card network; Luhn check fails
IBAN_CODE             ``GB00WEST12345678901234``                             check digits 00 never validate (ISO 13616)
US_SSN                ``666-42-1337``                                        area 666 is never issued
IP_ADDRESS            ``198.51.100.23`` / ``2001:db8::1f:9a``                documentation ranges (RFC 5737, RFC 3849)
URL                   ``https://example.com/p/3fa2c1``                       reserved domain
URL_CREDENTIALS       ``user4821:example-3fa2c1d0``                          marked ``example-``
SECRET                ``AKIAEXAMPLE3fa2c1d09b``                              marked ``EXAMPLE`` (the AWS documentation convention)
PERSON                ``Jordan K. Ellis``                                    lists + a middle initial fixed by a check on the two names
ORGANIZATION          ``Northwind Analytics Group``                          lists + a suffix fixed by a check
LOCATION              ``Ashbrook Falls``                                     lists + a second word fixed by a check
STREET_ADDRESS        ``2187 Millbrook Lane``                                lists + a house number fixed by a check (mod 31)
DATE_OF_BIRTH, other  the type tag (``<DATE_OF_BIRTH>``)                     dates have no reserved range
====================  ====================================================  ================================

For the last four rows a real value that happens to have the exact fake shape (both
names from the lists with the right middle initial, ...) is taken for a pseudonym and
kept; with middle initials that is rare, and the lists are not used for detection.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable

from gristmill.ops.pii.spans import TYPES

__all__ = ["hash_tag", "normalise", "protected_ranges", "pseudonym", "tag"]

FIRST = ("Avery Jordan Riley Morgan Casey Taylor Quinn Rowan Jamie Skyler Parker Reese Emerson Finley Hayden "
         "Logan Harper Dakota Cameron Drew Elliot Sage Blake Alex Robin Kendall Marley Peyton Remy Sawyer "
         "Addison Bailey Charlie Devon Ellis Frankie Jesse Kai Lane Micah Noel Oakley Phoenix Reagan Shawn "
         "Tatum Val Wren Arden Blair Corey Dallas Eden Gray Hollis Jody Kerry Lee Marion Nico Perry Sam").split()
LAST = ("Abbott Barlow Calloway Dempsey Ellsworth Fairbanks Galloway Hartley Ingram Jessup Kendrick Langley "
        "Merriweather Northcott Oakhurst Pemberton Quimby Radcliffe Sterling Thornbury Underhill Vance Whitlock "
        "Yardley Ashdown Brightwell Colton Drummond Everly Fenwick Gresham Holloway Ivers Jarrow Kingsley Lockhart "
        "Marchetti Nettleton Ormsby Pryor Rutherford Selwyn Tolliver Upton Vickery Wexford Ashby Blackwood "
        "Carrow Delacroix Emberly Foxworth Garrick Huxley Ironside Keel Larkin Mallory Newbold Orwell Penrose "
        "Redgrave Stanhope Trevelyan").split()
_INITIALS = "ABCDEFGHJKLMNPRSTVW"
ORG_ADJ = ("Northwind Bluestone Silverline Brightwater Ironwood Clearpath Redwood Summit Evergreen Highland "
           "Copperfield Granite Harborview Lakeside Meridian Oakridge Pinecrest Riverbend Stonegate Westbrook "
           "Amberly Crestview Foxglove Goldleaf").split()
ORG_NOUN = ("Analytics Logistics Dynamics Systems Partners Solutions Ventures Foods Textiles Robotics Media "
            "Outfitters Labs Networks Holdings Interactive Supply Energy Health Capital Studios Works Mills "
            "Freight").split()
ORG_SUFFIX = ("Inc.", "LLC", "Ltd.", "Group", "Co.", "GmbH", "plc", "Corp.")
PLACE_STEM = ("Ash Birch Cedar Elm Fern Glen Hazel Ivy Juniper Linden Maple Oak Pine Rowan Willow Alder Briar "
              "Clover Heather Laurel Moss Thorn Wren Hollis").split()
PLACE_END = "brook field ford haven mere ridge stead ton wick worth bury dale gate hurst leigh more".split()
PLACE_GEO = ("Falls", "Crossing", "Heights", "Springs", "Harbor", "Junction", "Landing", "Vale")
STREET_SUFFIX = ("Lane", "Road", "Avenue", "Street", "Drive", "Court", "Way", "Place")
AREA_CODES = (201, 205, 212, 213, 303, 305, 312, 404, 415, 503, 512, 602, 617, 702, 713, 801, 808, 907, 919, 971)
_DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
_EXAMPLE_TLDS = ("com", "org", "net")


def _check(*parts: str) -> int:
    """An unkeyed check value of the parts (fixes the checked part of a fake value)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:4], "big")


def normalise(typ: str, value: str) -> str:
    """The form of ``value`` that decides its hash and pseudonym: spelling variants of one value agree."""
    if typ in ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN"):
        return re.sub(r"\D", "", value)
    if typ == "IBAN_CODE":
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    return " ".join(value.split()).casefold()


def _digest(salt: str, typ: str, value: str) -> bytes:
    return hashlib.sha256(f"{salt}\x1f{typ}\x1f{normalise(typ, value)}".encode()).digest()


def tag(typ: str) -> str:
    """The type tag that replaces a value in ``tag`` mode."""
    return f"<{typ}>"


def hash_tag(typ: str, value: str, salt: str) -> str:
    """``<TYPE:hex12>``: the type and the first 12 hex digits of the salted sha256 of the value."""
    digest = hashlib.sha256(f"{salt}\x1f{normalise(typ, value)}".encode()).hexdigest()
    return f"<{typ}:{digest[:12]}>"


class _Draw:
    """Deterministic choices from a digest."""

    def __init__(self, digest: bytes) -> None:
        self.n = int.from_bytes(digest, "big")

    def pick(self, seq: tuple | list):  # type: ignore[no-untyped-def]
        self.n, i = divmod(self.n, len(seq))
        return seq[i]

    def int(self, k: int) -> int:
        self.n, i = divmod(self.n, k)
        return i


def _fake_person(d: _Draw) -> str:
    first, last = d.pick(FIRST), d.pick(LAST)
    return f"{first} {_INITIALS[_check('P', first, last) % len(_INITIALS)]}. {last}"


def _fake_org(d: _Draw) -> str:
    adj, noun = d.pick(ORG_ADJ), d.pick(ORG_NOUN)
    return f"{adj} {noun} {ORG_SUFFIX[_check('O', adj, noun) % len(ORG_SUFFIX)]}"


def _fake_place(d: _Draw) -> str:
    name = d.pick(PLACE_STEM) + d.pick(PLACE_END)
    return f"{name} {PLACE_GEO[_check('L', name) % len(PLACE_GEO)]}"


def _fake_street(d: _Draw) -> str:
    name = d.pick(PLACE_STEM) + d.pick(PLACE_END)
    suffix = STREET_SUFFIX[_check('S', name) % len(STREET_SUFFIX)]
    number = 100 + 31 * d.int(300) + _check("A", name, suffix) % 31
    return f"{number} {name} {suffix}"


def _fake_card(d: _Draw, value: str) -> str:
    digits = "0" + "".join(str(d.int(10)) for _ in range(15))
    from gristmill.ops.pii.patterns import luhn_valid

    if luhn_valid(digits):
        digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    sep = next((c for c in value if c in " -"), "")
    return sep.join(digits[i:i + 4] for i in range(0, 16, 4))


def _fake_iban(d: _Draw, value: str) -> str:
    compact = re.sub(r"[^0-9A-Za-z]", "", value).upper()
    country, bban = compact[:2], compact[4:]
    chars = [chr(65 + d.int(26)) if c.isalpha() else str(d.int(10)) for c in bban]
    return f"{country}00{''.join(chars)}"


def _fake_ip(d: _Draw, value: str) -> str:
    if ":" in value:
        return f"2001:db8::{d.int(0xFFFF):x}:{d.int(0xFFFF):x}"
    net = d.pick(("192.0.2", "198.51.100", "203.0.113"))
    return f"{net}.{1 + d.int(254)}"


def _fake_secret(d: _Draw, value: str) -> str:
    hexs = "".join("0123456789abcdef"[d.int(16)] for _ in range(16))
    if "PRIVATE KEY" in value:
        return f"-----BEGIN PRIVATE KEY-----\nEXAMPLE{hexs}\n-----END PRIVATE KEY-----"
    prefix = re.match(r"(?:AKIA|ASIA|gh[pousr]_|github_pat_|xox[abposr]-|AIza|[rsp]k_(?:live|test)_|sk-|eyJ)?", value)
    return f"{prefix.group() if prefix else ''}EXAMPLE{hexs}"


_UNIT_LINE = re.compile(r"(?i)^(apt\.?|apartment|suite|ste\.?|unit|flat|floor|fl\.|room|rm\.?|bldg\.?|building|#)"
                        r"(\s*)\d+[A-Za-z]?$")


def _fake_address_line(d: _Draw, value: str) -> str:
    """A fake for a later line of an address, in the same shape: unit, postcode, place, place + postcode."""
    m = _UNIT_LINE.match(value)
    if m:
        return f"{m.group(1)}{m.group(2)}{100 + d.int(900)}"
    words = re.sub(r"[\d\s,.()-]+$", "", value)
    tail = value[len(words):]
    fake_tail = "".join(str(d.int(10)) if c.isdigit() else c for c in tail)
    if not words.strip():
        return fake_tail
    return _fake_place(d) + fake_tail


def pseudonym(typ: str, value: str, salt: str, part: bool = False) -> str:
    """A fake value of type ``typ`` for ``value``: the same for the same (salt, normalised value).

    ``part`` marks a later line of a street address (unit, city, postcode), which gets a
    fake of its own shape instead of a whole street line.
    """
    d = _Draw(_digest(salt, typ, value))
    if typ == "STREET_ADDRESS" and part:
        return _fake_address_line(d, value)
    if typ == "PERSON":
        return _fake_person(d)
    if typ == "ORGANIZATION":
        return _fake_org(d)
    if typ == "LOCATION":
        return _fake_place(d)
    if typ == "STREET_ADDRESS":
        return _fake_street(d)
    if typ == "EMAIL_ADDRESS":
        first, last = d.pick(FIRST).lower(), d.pick(LAST).lower()
        return f"{first}.{last}{d.int(100)}@example.{d.pick(_EXAMPLE_TLDS)}"
    if typ == "PHONE_NUMBER":
        return f"({d.pick(AREA_CODES)}) 555-01{d.int(100):02d}"
    if typ == "CREDIT_CARD":
        return _fake_card(d, value)
    if typ == "IBAN_CODE":
        return _fake_iban(d, value)
    if typ == "US_SSN":
        return f"666-{1 + d.int(99):02d}-{1 + d.int(9999):04d}"
    if typ == "IP_ADDRESS":
        return _fake_ip(d, value)
    if typ == "URL":
        return f"https://example.{d.pick(_EXAMPLE_TLDS)}/p/{d.int(16 ** 6):06x}"
    if typ == "URL_CREDENTIALS":
        return f"user{d.int(10000):04d}:example-{d.int(16 ** 8):08x}"
    if typ == "SECRET":
        return _fake_secret(d, value)
    return tag(typ)


# ---- finding replacements again ---------------------------------------------------------

def _alt(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_NB = r"(?<![^\W_])"   # not preceded by a letter or digit
_NA = r"(?![^\W_])"    # not followed by a letter or digit
_TAG_RE = re.compile(rf"<(?:{_alt(TYPES)}|[A-Z][A-Z_]{{2,30}})(?::[0-9a-f]{{12}})?>")
_PERSON_RE = re.compile(rf"{_NB}({_alt(FIRST)}) ([A-Z])\. ({_alt(LAST)}){_NA}")
_ORG_RE = re.compile(rf"{_NB}({_alt(ORG_ADJ)}) ({_alt(ORG_NOUN)}) ({_alt(ORG_SUFFIX)})(?!\w)")
_PLACE_RE = re.compile(rf"{_NB}((?:{_alt(PLACE_STEM)})(?:{_alt(PLACE_END)})) ({_alt(PLACE_GEO)}){_NA}")
_STREET_RE = re.compile(rf"{_NB}(\d{{3,5}}) ((?:{_alt(PLACE_STEM)})(?:{_alt(PLACE_END)})) ({_alt(STREET_SUFFIX)}){_NA}")
_EMAIL_RE = re.compile(rf"{_NB}[\w.+-]+@example\.(?:{_alt(_EXAMPLE_TLDS)}){_NA}")
_PHONE_RE = re.compile(r"\(\d{3}\) 555-01\d{2}(?!\d)")
# The fakes' edges are those the detectors accept (gristmill.ops.pii.patterns: a number may touch
# an underscore, or a '-' or '.' after a space), so that whatever the detector would find again is
# recognised as a fake first.
_NUM_START = r"(?<![^\W_])(?<![^\W_][.-])"
_NUM_END = r"(?![^\W_])(?!-[^\W_])"
# A fake card number stands alone: four groups inside a longer run of groups are the middle of
# real numbers ("5100 0000 0000 0008 5101 ..." holds "0000 0000 0008 5101").
_CARD_RE = re.compile(_NUM_START + r"(?<!\d[ -])0\d{3}([ -]?)\d{4}\1\d{4}\1\d{4}(?![ -]\d)" + _NUM_END)
_IBAN_RE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}00[A-Z0-9]{11,30}(?![A-Za-z0-9])")
_SSN_RE = re.compile(_NUM_START + r"666-\d{2}-\d{4}" + _NUM_END)
# A full stop after a fake IPv4 address ends the sentence and a colon starts the port
# ("203.0.113.84:8080"), a colon before it ends a label ("ip:203.0.113.84"); next to a fake IPv6
# address a colon would continue it.
_IP_RE = re.compile(r"(?<![^\W_])(?<![\w.]\.)(?:192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}(?![^\W_]|\.\d)|"
                    r"(?<![\w.:])2001:db8::[0-9a-f]{1,4}:[0-9a-f]{1,4}(?![\w:]|\.\d)")
_URL_RE = re.compile(rf"https?://example\.(?:{_alt(_EXAMPLE_TLDS)})/p/[0-9a-f]{{6}}")
_CRED_RE = re.compile(r"user\d{4}:example-[0-9a-f]{8}")
_SECRET_RE = re.compile(r"-----BEGIN PRIVATE KEY-----\nEXAMPLE[0-9a-f]{16}\n-----END PRIVATE KEY-----|"
                        r"[\w-]{0,12}EXAMPLE[0-9a-f]{16}")


def protected_ranges(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds tags, hash tags or pseudonyms made by this module, as (start, end) pairs."""
    out: list[tuple[int, int]] = []
    if "<" in text:
        out += [m.span() for m in _TAG_RE.finditer(text)]
    for m in _PERSON_RE.finditer(text):
        if _INITIALS[_check("P", m.group(1), m.group(3)) % len(_INITIALS)] == m.group(2):
            out.append(m.span())
    for m in _ORG_RE.finditer(text):
        if ORG_SUFFIX[_check("O", m.group(1), m.group(2)) % len(ORG_SUFFIX)] == m.group(3):
            out.append(m.span())
    for m in _PLACE_RE.finditer(text):
        if PLACE_GEO[_check("L", m.group(1)) % len(PLACE_GEO)] == m.group(2):
            out.append(m.span())
    for m in _STREET_RE.finditer(text):
        if (int(m.group(1)) - 100) % 31 == _check("A", m.group(2), m.group(3)) % 31 and \
                STREET_SUFFIX[_check("S", m.group(2)) % len(STREET_SUFFIX)] == m.group(3):
            out.append(m.span())
    if "@example." in text:
        out += [m.span() for m in _EMAIL_RE.finditer(text)]
    if "555-01" in text:
        out += [m.span() for m in _PHONE_RE.finditer(text)]
    from gristmill.ops.pii.patterns import luhn_valid

    out += [m.span() for m in _CARD_RE.finditer(text) if not luhn_valid(re.sub(r"\D", "", m.group()))]
    out += [m.span() for m in _IBAN_RE.finditer(text)]
    if "666-" in text:
        out += [m.span() for m in _SSN_RE.finditer(text)]
    for m in _IP_RE.finditer(text):
        try:
            ip = ipaddress.ip_address(m.group())
        except ValueError:
            continue
        if any(ip in net for net in _DOC_NETS if net.version == ip.version):
            out.append(m.span())
    if "example" in text:
        out += [m.span() for m in _URL_RE.finditer(text)]
        out += [m.span() for m in _CRED_RE.finditer(text)]
    if "EXAMPLE" in text:
        out += [m.span() for m in _SECRET_RE.finditer(text)]
    return sorted(out)
