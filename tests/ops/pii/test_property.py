"""Property tests of pii.detect / pii.redact over composed PII strings.

Texts are random concatenations of generated PII values (e-mail addresses, phone numbers,
SSNs, card numbers, IBANs, IPv4 addresses, URLs) with random separators between them:
none at all, invisible characters, bidirectional controls, bare punctuation, or clean
separators (whitespace, with or without punctuation). Two properties:

* after redaction, in every mode, no generated value is left verbatim in the text, and
  ``pii.remaining`` is what pii.detect still finds in the output (values that run into
  each other so that no reader could split them, digits into digits, are not generated:
  :func:`ambiguous`);
* with clean separators, the detected spans are exactly the planted ones.

NER is off (``ner=False``): every planted type is found by rules, so the spans are
deterministic and the examples fast; the NER path is covered in test_pii.py.
"""

from __future__ import annotations

import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gristmill.ops.pii.detect import PiiDetect
from gristmill.ops.pii.patterns import luhn_valid
from gristmill.ops.pii.redact import PiiRedact

# Derandomized, so the suite is the same on every run; run it with more examples and
# --hypothesis-seed to hunt (about 25,000 examples over 30 seeds found the cases that are now
# regression examples in test_pii.py: test_values_side_by_side_found_by_the_property_tests, and
# test_fake.py).
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# ---- values ---------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _LETTERS + "0123456789"


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    local = draw(st.text(_LETTERS, min_size=1, max_size=3)) + draw(st.text(_ALNUM, max_size=6))
    if draw(st.booleans()):
        local += draw(st.sampled_from("._")) + draw(st.text(_ALNUM, min_size=1, max_size=5))
    label = draw(st.text(_LETTERS, min_size=1, max_size=2)) + draw(st.text(_ALNUM, max_size=6))
    assume(label != "example")
    tld = draw(st.sampled_from(["com", "fi", "de", "io", "org", "co.uk", "travel"]))
    return "EMAIL_ADDRESS", f"{local}@{label}.{tld}"


_AREAS = [201, 202, 206, 212, 303, 305, 312, 404, 415, 512, 617, 646, 702, 713, 805, 919]


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str]:
    area = draw(st.sampled_from(_AREAS))
    exchange = draw(st.integers(200, 999).filter(lambda x: x != 555 and x % 100 != 11))
    line = draw(st.integers(0, 9999))
    number = phonenumbers.parse(f"+1{area}{exchange}{line:04d}")
    assume(phonenumbers.is_valid_number(number))
    shape = draw(st.sampled_from(["+1 {a}-{e}-{l}", "({a}) {e}-{l}", "{a}-{e}-{l}", "+1 ({a}) {e}-{l}",
                                  "{a}.{e}.{l}"]))
    return "PHONE_NUMBER", shape.format(a=area, e=exchange, l=f"{line:04d}")


@st.composite
def ssns(draw: st.DrawFn) -> tuple[str, str]:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    return "US_SSN", f"{area:03d}-{draw(st.integers(1, 99)):02d}-{draw(st.integers(1, 9999)):04d}"


@st.composite
def cards(draw: st.DrawFn) -> tuple[str, str]:
    prefix = draw(st.sampled_from(["4", "51", "52", "53", "54", "55"]))
    body = prefix + "".join(draw(st.sampled_from("0123456789")) for _ in range(15 - len(prefix)))
    digits = body + next(d for d in "0123456789" if luhn_valid(body + d))
    sep = draw(st.sampled_from(["", " ", "-"]))
    return "CREDIT_CARD", sep.join(digits[i:i + 4] for i in range(0, 16, 4))


@st.composite
def ibans(draw: st.DrawFn) -> tuple[str, str]:
    bban = "".join(draw(st.sampled_from("0123456789")) for _ in range(18))
    check = 98 - int(bban + "131400") % 97  # D=13, E=14, check digits 00
    compact = f"DE{check:02d}{bban}"
    if draw(st.booleans()):
        return "IBAN_CODE", " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    return "IBAN_CODE", compact


_DOC_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")


@st.composite
def ipv4s(draw: st.DrawFn) -> tuple[str, str]:
    octets = [draw(st.integers(1, 223))] + [draw(st.integers(0, 255)) for _ in range(3)]
    value = ".".join(map(str, octets))
    assume(not value.startswith(_DOC_NETS))
    return "IP_ADDRESS", value


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, str]:
    host = draw(st.text(_LETTERS, min_size=2, max_size=8))
    assume(host != "example")
    path = draw(st.text(_ALNUM + "-_", min_size=1, max_size=8))
    return "URL", f"https://{draw(st.sampled_from(['', 'www.']))}{host}.com/{path}"


VALUES = st.one_of(emails(), phones(), ssns(), cards(), ibans(), ipv4s(), urls())

# ---- separators -----------------------------------------------------------------------------

CLEAN = [" ", "\n", ", ", "; ", " | ", " / ", " and ", "\t", ". ", " (", ") "]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\u180e"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e",
        "\u200f"]
PUNCT = list(",;|/()[]<>'\"=+#*!?:&") + ["-", ".", "_", "~"]
DIRTY = st.one_of(st.just(""), st.sampled_from(INVISIBLE + BIDI + PUNCT),
                  st.lists(st.sampled_from(INVISIBLE + BIDI + PUNCT + CLEAN), min_size=2, max_size=3).map("".join))


def compose(parts: list[tuple[str, str]], seps: list[str]) -> tuple[str, list[tuple[str, int, int, str]]]:
    """The text and the planted ``(type, start, end, value)`` spans."""
    text, planted = "", []
    for k, (typ, value) in enumerate(parts):
        if k:
            text += seps[k - 1]
        planted.append((typ, len(text), len(text) + len(value), value))
        text += value
    return text, planted


def redact(text: str, mode: str) -> tuple[str, int]:
    op = PiiRedact(types=None, mode=mode, salt="property-salt", ner=False)
    op.ensure_setup()
    out = op.process(pa.table({"id": ["r0"], "text": [text]})).kept
    return out.column("text")[0].as_py(), out.column("pii.remaining")[0].as_py()


def detect(text: str) -> list[tuple[str, int, int]]:
    op = PiiDetect(ner=False)
    op.ensure_setup()
    out = op.process(pa.table({"id": ["r0"], "text": [text]})).kept
    return [(s["type"], s["start"], s["end"]) for s in out.column("pii.spans")[0].as_py()]


def ambiguous(left: str, sep: str, right_type: str, right: str) -> bool:
    """Whether no reader could tell where ``left`` ends: letters run into letters or digits into
    digits with nothing between, digits joined to digits by a character numbers are written
    with ("201-200-0000" + "-" + "001-01-0001" is one number as much as two), anything an
    e-mail address may start with right before one ("...0000 00" + "a@a.com"), or a "+"
    right before a number, which makes it international."""
    a, b = left[-1], right[0]
    if right_type == "EMAIL_ADDRESS" and a.isalnum() and (sep == "" or sep in "._-+%"):
        return True
    if sep == "":
        return (a.isdigit() and (b.isdigit() or b in "+(")) or (a.isalpha() and b.isalpha())
    if sep[-1] == "+" and b.isdigit():  # "+201-200-0000" is another number, with a country code
        return True
    # libphonenumber's punctuation inside a number: - . / ( ) [ ] ~ (and "_" joins words)
    visible = "".join(c for c in sep if c not in INVISIBLE + BIDI)
    return a.isdigit() and b.isdigit() and visible != "" and set(visible) <= set("-._/()[]~")


@st.composite
def composed(draw: st.DrawFn, separators: st.SearchStrategy[str]) -> tuple[str, list[tuple[str, int, int, str]]]:
    parts = draw(st.lists(VALUES, min_size=1, max_size=4))
    seps = [draw(separators) for _ in parts[1:]]
    assume(not any(ambiguous(parts[k][1], sep, *parts[k + 1]) for k, sep in enumerate(seps)))
    prefix = draw(st.sampled_from(["", "Contact: ", "x ", "\u200b"]))
    text, planted = compose(parts, seps)
    return prefix + text, [(t, a + len(prefix), b + len(prefix), v) for t, a, b, v in planted]


@pytest.mark.parametrize("mode", ["tag", "hash", "pseudonym"])
@SETTINGS
@given(case=composed(st.one_of(DIRTY, st.sampled_from(CLEAN))))
@example(case=("jouni@corp.fi123-45-6789", [("EMAIL_ADDRESS", 0, 13, "jouni@corp.fi"),
                                            ("US_SSN", 13, 24, "123-45-6789")]))
def test_no_planted_value_survives_redaction(mode: str, case: tuple[str, list]) -> None:
    text, planted = case
    out, remaining = redact(text, mode)
    for typ, _, _, value in planted:
        assert value not in out, f"{typ} {value!r} left in {out!r} (from {text!r})"
    # pii.remaining is honest: it counts what detection still finds in the output
    assert remaining == len(detect(out))


@SETTINGS
@given(case=composed(st.sampled_from(CLEAN)))
def test_spans_are_the_planted_ones_with_clean_separators(case: tuple[str, list]) -> None:
    text, planted = case
    # " (" before "(201) 200-0000" is not a clean separator: which "(" opens the number is ambiguous
    assume("((" not in text and "))" not in text)
    assert detect(text) == [(t, a, b) for t, a, b, _ in planted], text


@pytest.mark.parametrize("mode", ["hash", "pseudonym"])
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=composed(st.one_of(DIRTY, st.sampled_from(CLEAN))))
def test_redacting_twice_changes_nothing(mode: str, case: tuple[str, list]) -> None:
    """Pseudonyms and hash tags glued to other values or to invisible characters are still
    recognised as redacted, so a second pass leaves the text and its counts as they are."""
    op = PiiRedact(types=None, mode=mode, salt="property-salt", ner=False)
    op.ensure_setup()
    once = op.process(pa.table({"id": ["r0"], "text": [case[0]]})).kept
    twice = op.process(once).kept
    assert twice.column("text").to_pylist() == once.column("text").to_pylist()
    assert twice.column("pii.remaining").to_pylist() == once.column("pii.remaining").to_pylist()
