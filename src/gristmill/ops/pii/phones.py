"""Phone numbers: libphonenumber's matcher per region, cleaned of what only looks like a number.

See ``PHONE_NUMBER`` in :mod:`gristmill.ops.pii.patterns` for the rule; this module holds the
detector and its helpers (brackets, extensions, country codes, phone words nearby).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gristmill.ops.pii.spans import Span

__all__ = ["DEFAULT_REGIONS", "detect_phone_cues", "detect_phones"]

# Regions tried by the phone detector, measured on the PII dev set (benchmarks/bench_pii.py).
DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "AU", "IN", "BR", "CA")

# ---- phone numbers ----------------------------------------------------------------------

_PHONE_SHAPE = re.compile(r"(?<![\w+.,/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d[\d .-]{4,18}\d"
                          r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?(?![\w,/-]|\.\d)")
_PHONE_CUE_BEFORE = re.compile(r"(?i)(?:\b(?:phone|ph|tel|telephone|mobile|mob|cell|cellphone|fax|desk|office|home|work|"
                               r"call(?:\s+me)?(?:\s+(?:at|on))?|answering\s+at|reach\s+me\s+(?:at|on)|whats\s?app|sms|"
                               r"text\s+me(?:\s+at)?|(?:phone|mobile|contact)\s+number(?:\s+is)?|registered)"
                               r"\s*(?:no\.?|number|#)?\s*[:.]?\s*)$")
_PHONE_CUE_AFTER = re.compile(r"(?i)^[ \t]*[-(]?[ \t]*(?:office|fax|mobile|cell|home|work|phone|tel|desk)\b")


def detect_phone_cues(text: str) -> list[Span]:
    """Phone-shaped digit strings (6-15 digits) right after or before a phone word ("Phone:", "fax", "call me at")."""
    out = []
    for m in _PHONE_SHAPE.finditer(text):
        digits = sum(c.isdigit() for c in m.group())
        if not 6 <= digits <= 15 or "\n" in m.group():
            continue
        before = text[max(0, m.start() - 30):m.start()]
        if _PHONE_CUE_BEFORE.search(before) or _PHONE_CUE_AFTER.match(text[m.end():m.end() + 12]):
            out.append(Span("PHONE_NUMBER", m.start(), m.end(), 0.6, "phone_cue"))
    return out


_COUNTRY_CODE_BEFORE = re.compile(r"(?<![\w+])\+(\d{1,3})[ .-]?$")


def _with_country_code(text: str, start: int, end: int, number: object) -> int:
    """Where the number starts when the matcher left out the ``+1 `` just before it (libphonenumber
    does so for the second of two numbers in a row, "+1 201-200-0000 +1 201-200-0001", or reads the
    rest as a number of another region): the ``+`` and country code are taken in when the whole
    is a valid number."""
    import phonenumbers

    m = _COUNTRY_CODE_BEFORE.search(text, max(0, start - 6), start)
    if not m:
        return start
    if int(m.group(1)) == getattr(number, "country_code", None):
        return m.start()
    try:
        whole = phonenumbers.parse(text[m.start():end], None)
    except phonenumbers.NumberParseException:
        return start
    return m.start() if phonenumbers.is_valid_number(whole) else start


def _balanced(text: str, start: int, end: int) -> tuple[int, int]:
    """The match without edge spaces (libphonenumber can return " (201) 200-0000"), an opening
    bracket that is never closed in it ("(+1 201-200-0000"), or a closing one never opened."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    value = text[start:end]
    if value.startswith("(") and value.count("(") > value.count(")"):
        start += 1
    elif value.endswith(")") and value.count(")") > value.count("("):
        end -= 1
    return start, end


# Empty brackets and runs of brackets ("()", "[)") are no part of a number, but make the matcher
# fail the one after them.
_EMPTY_BRACKETS = re.compile(r"\([ \t]*\)|[()\[\]{}]{2,}")


_EXTENSION = re.compile(r"(?i)[ \t]*(?:#|x|ext\.?|extension)[ \t]*\d{1,6}$")
_NOT_PHONE_BEFORE = re.compile(r"(?i)\b(?:isbn(?:-?1[03])?|issn|doi|order|invoice|tracking|serial|sku|patent)"
                               r"\s*(?:no\.?|number|#)?\s*[:#]?\s*$")
_GROUPS = re.compile(r"\d+")


def _not_a_phone(text: str, start: int, end: int) -> bool:
    """Whether a matched number is something else:

    * part of a longer number or code: right after a letter or digit and a '.', '-' or '/'
      ("INV-2023-000145", "1.0.0.168 001-01-0001"), or right before one of these and a letter
      or digit ("123-456-7890-abc"; not when a phone word follows: "555-0142-Office");
    * labelled as a book, order, invoice, tracking, serial or patent number ("ISBN 0-306-40615-2");
    * written with two or more one-digit groups ("4 8 15 16 23 42"; "+33 1 42 68 53 00" has one).
    """
    if start >= 2 and text[start - 1] in ".-/" and text[start - 2].isalnum():
        return True
    if end + 1 < len(text) and text[end] in ".-/" and text[end + 1].isalnum() \
            and not _PHONE_CUE_AFTER.match(text[end:end + 12]):  # "555-0142-Office" is a phone
        return True
    if _NOT_PHONE_BEFORE.search(text, max(0, start - 24), start):
        return True
    value = text[start:end]
    groups = _GROUPS.findall(value[value.index(" "):] if value.startswith("+") and " " in value else value)
    return sum(len(g) == 1 for g in groups) >= 2


def _blank_brackets(text: str, m: re.Match[str]) -> str:
    """Blanks for an empty or doubled bracket run, keeping a last opening bracket that a digit follows:
    in "((201) 200-0000" the number's own "(" stays, so the matcher still sees "(201) 200-0000"."""
    run = m.group()
    if run[-1] in "([{" and m.end() < len(text) and text[m.end()].isdigit():
        return " " * (len(run) - 1) + run[-1]
    return " " * len(run)


def detect_phones(text: str, regions: Sequence[str] = DEFAULT_REGIONS, leniency: str = "valid",
                  cues: bool = True) -> list[Span]:
    """Phone numbers found by libphonenumber's matcher for any of ``regions``, and (with
    ``cues``) phone-shaped numbers next to a phone word."""
    import phonenumbers
    from phonenumbers import Leniency

    if sum(c.isdigit() for c in text) < 6:
        return []
    level = {"possible": Leniency.POSSIBLE, "valid": Leniency.VALID,
             "strict": Leniency.STRICT_GROUPING}[leniency]
    found: dict[tuple[int, int], Span] = {}
    scan = _EMPTY_BRACKETS.sub(lambda e: _blank_brackets(text, e), text)
    for region in regions:
        for m in phonenumbers.PhoneNumberMatcher(scan, region, leniency=level):
            start, end = _balanced(text, m.start, m.end)
            if _not_a_phone(text, start, end):
                # "+1 201-200-0000#201-200-0000": the matcher took "#201" for an extension
                ext = _EXTENSION.search(text, start, end)
                if ext is None or _not_a_phone(text, start, ext.start()):
                    continue
                end = ext.start()
            start = _with_country_code(text, start, end, m.number)
            found.setdefault((start, end), Span("PHONE_NUMBER", start, end, 0.75, f"phonenumbers:{region}"))
    spans = list(found.values())
    if cues:
        spans += detect_phone_cues(text)
    return spans
