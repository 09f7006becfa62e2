"""Rule-based PII detectors: regular expressions confirmed by checksums and parsers.

Each detector is a function ``text -> list[Span]``; none needs a model.

* ``EMAIL_ADDRESS`` — ``local@domain.tld``; the address ends at the top-level domain's last letter,
  so a number glued to it is not taken in.
* ``PHONE_NUMBER`` (:mod:`gristmill.ops.pii.phones`) — the ``phonenumbers`` library (Google's libphonenumber metadata):
  :class:`phonenumbers.PhoneNumberMatcher` run once per region of ``regions`` with the
  given leniency (``valid``: the number must be a valid number of its region); numbers
  written with ``+`` and a country code are found whatever the region. Matches that are
  part of a longer number or code, labelled as ISBN / order / invoice / serial numbers, or
  grouped in single digits are dropped (:func:`_not_a_phone`).
* ``CREDIT_CARD`` — 13–19 digits, ungrouped or grouped as cards are printed (fours, or
  4-6-5 / 4-6-4) by one kind of separator, spaces or dashes, with a card network's leading
  digit and a valid Luhn check digit (12–19 digits in any grouping and with any leading
  digit right after a card word such as "card", "cc", "visa").
* ``IBAN_CODE`` — country code, two check digits and the BBAN (optionally grouped by
  spaces), with the country's registered length and a valid ISO 7064 mod-97 checksum.
* ``IP_ADDRESS`` — IPv4 dotted quads and IPv6 addresses that :mod:`ipaddress` parses; a dotted
  quad right after a version word ("version", "firmware", "build", "v", ...) is a version.
* ``US_SSN`` — ``AAA-GG-SSSS`` (or spaces); area 000, 666 and 900–999, group 00 and
  serial 0000 are never issued and are not matched. Nine bare digits count only right
  after an "SSN" / "social security" cue.
* ``DATE_OF_BIRTH`` / ``DATE_TIME`` — numeric (``10/23/1951``, ``1951-10-23``) and
  month-name dates (``March 3, 1990``, ``3rd of March 1990``) that are real calendar
  dates; a date within a few words after a birth cue ("born", "DOB", "date of birth",
  "birthday") is a date of birth, any other date is ``DATE_TIME``.
* ``URL_CREDENTIALS`` — the ``user:password`` part of ``scheme://user:password@host``.
* ``URL`` — ``http(s)://...`` and ``www.`` addresses.
* ``SECRET`` — API keys and tokens with a known shape (AWS ``AKIA...``, GitHub ``ghp_``
  and ``github_pat_``, Slack ``xox.-`` and webhooks, Google ``AIza``, Stripe, OpenAI
  ``sk-``, JWTs), ``-----BEGIN ... PRIVATE KEY-----`` blocks, and the value of a
  ``key = value`` pair whose key names a secret (api_key, token, secret, password, ...)
  when the value is long and random enough (Shannon entropy).
"""

from __future__ import annotations

import calendar
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable

from gristmill.ops.pii.spans import Span

__all__ = ["PATTERN_DETECTORS", "detect_credit_cards", "detect_dates", "detect_emails",
           "detect_ibans", "detect_ips", "detect_secrets", "detect_ssns", "detect_url_credentials",
           "detect_urls", "iban_valid", "luhn_valid", "shannon_entropy", "ssn_valid"]

# ---- email ------------------------------------------------------------------------------

# The top-level domain is letters only, so a digit, '-' or '_' right after it starts something
# else ("jouni@corp.fi123-45-6789" is an address glued to a number); a longer domain
# ("corp.fi123.com") is still taken whole, the labels before the last being greedy.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+%-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![^\W\d_])")


def detect_emails(text: str) -> list[Span]:
    """E-mail addresses."""
    if "@" not in text:
        return []
    out = []
    for m in _EMAIL.finditer(text):
        # a local part never starts with '.' (and in practice not with '-' or '+': "a@b.com-c@d.com")
        start = m.start() + len(m.group()) - len(m.group().lstrip(".-+"))
        if text[start] != "@":
            out.append(Span("EMAIL_ADDRESS", start, m.end(), 1.0, "email"))
    return out


# ---- credit cards -----------------------------------------------------------------------

# A number does not start right after a letter or digit, or a '.' or '-' that follows one
# ("3.14159...", "1-800-..."); after an underscore or ", -" it may. It does not end right before a
# letter or digit, or a '-' and one.
_NUM_START = r"(?<![^\W_])(?<![^\W_][.-])"
_NUM_END = r"(?![^\W_])(?!-[^\W_])"
_DIGIT_GROUPS = re.compile(_NUM_START + r"\d+(?:[ -]\d+)*" + _NUM_END)
_GROUP = re.compile(r"\d+")


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix_ok(digits: str) -> bool:
    first = digits[0]
    if first in "23456":
        return True
    # 15-digit JCB (1800, 2131) and UATP (1...) numbers
    return first == "1" and len(digits) == 15


_CARD_GROUPS = re.compile(r"\d{13,19}|\d{4}([ -])\d{4}(?:\1\d{4}){1,2}(?:\1\d{1,4})?|\d{4}([ -])\d{6}\2\d{4,5}")


def _card_grouping_ok(value: str) -> bool:
    """Whether digits are written as cards are: ungrouped, in fours (the last group 1-4 digits), or
    4-6-5 / 4-6-4 (American Express, Diners), with one separator throughout."""
    return _CARD_GROUPS.fullmatch(value) is not None


_CARD_CUE = re.compile(r"(?i)\b(?:card|cc|credit|debit|visa|master\s?card|maestro|amex|american\s+express|discover|"
                       r"jcb|diners)\b[^\n]{0,20}$")


def detect_credit_cards(text: str) -> list[Span]:
    """Card numbers: 13–19 digits in groups with a network's leading digit and a valid Luhn
    digit; 12–19 digits with any leading digit when a card word ("card", "cc", "visa") precedes."""
    out: list[Span] = []
    for run in _DIGIT_GROUPS.finditer(text):
        groups = [(g.start(), g.end()) for g in _GROUP.finditer(run.group())]
        i = 0
        while i < len(groups):
            best = None
            for j in range(len(groups) - 1, i - 1, -1):
                s, e = run.start() + groups[i][0], run.start() + groups[j][1]
                digits = re.sub(r"\D", "", text[s:e])
                if not 12 <= len(digits) <= 19 or not luhn_valid(digits):
                    continue
                # a short last group that more digits follow belongs to the next number, and so does
                # an edge group of a card grouped by spaces that a '-' binds to its outer neighbour
                # ("5100 0000 0000 9249 130-01-0001", "001-01-5400 5100 0000 0045 0005": an SSN and a
                # card; "200-0000 5100-0000-0000-0008", "4000 5000 0239 4949 512.200.0000": a card and
                # a phone number)
                goes_on = j < len(groups) - 1 or (e + 1 < len(text) and text[e] in "./" and text[e + 1].isdigit())
                short_cut = goes_on and groups[j][1] - groups[j][0] < 4 and j > i
                inner = run.group()[groups[i][1]:groups[i + 1][0]] if j > i else None
                mixed = inner == " " and (
                    (i > 0 and run.group()[groups[i - 1][1]:groups[i][0]] == "-")
                    or (j < len(groups) - 1 and run.group()[groups[j][1]:groups[j + 1][0]] == "-"))
                if len(digits) >= 13 and _card_prefix_ok(digits) and _card_grouping_ok(text[s:e]) \
                        and not short_cut and not mixed:
                    best = (j, s, e, 0.95)
                    break
                if _CARD_CUE.search(text[max(0, s - 40):s]):
                    best = (j, s, e, 0.8)
                    break
            if best is None:
                i += 1
                continue
            out.append(Span("CREDIT_CARD", best[1], best[2], best[3], "luhn"))
            i = best[0] + 1
    return out


# ---- IBAN -------------------------------------------------------------------------------

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
# A digit may come right before the country code (a number glued to the IBAN): the checksum
# keeps out chance matches.
_IBAN_START = re.compile(r"(?<![A-Za-z])([A-Z]{2})(\d{2}) ?[A-Z0-9]")


def iban_valid(iban: str) -> bool:
    """Whether an IBAN (spaces allowed) has its country's length and a valid mod-97 checksum."""
    s = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    if IBAN_LENGTHS.get(s[:2], len(s)) != len(s):
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def detect_ibans(text: str) -> list[Span]:
    """IBANs with a valid checksum, written compact or in groups of four."""
    out: list[Span] = []
    pos = 0
    while True:
        m = _IBAN_START.search(text, pos)
        if m is None:
            return out
        # Walk the alphanumerics after the country code, single spaces allowed between them.
        chars, ends, k = 0, [], m.start()
        while k < len(text) and chars < 34:
            ch = text[k]
            if ch.isascii() and ch.isalnum():
                chars += 1
                ends.append(k + 1)
            elif not (ch == " " and k + 1 < len(text) and text[k + 1].isascii() and text[k + 1].isalnum()
                      and k > m.start()):
                break
            k += 1
        known = m.group(1) in IBAN_LENGTHS
        lengths = [IBAN_LENGTHS[m.group(1)]] if known else range(min(chars, 34), 14, -1)
        hit = None
        for n in lengths:
            if n <= chars:
                end = ends[n - 1]
                after = text[end:end + 1]
                # With the country's fixed length, a letter may follow a last digit (or a digit a
                # last letter): another value glued on ("...3000DE13 2000 ...").
                glued = known and after.isascii() and after.isalnum() and after.isdigit() != text[end - 1].isdigit()
                if (not after or not (after.isascii() and after.isalnum()) or glued) \
                        and iban_valid(text[m.start():end]):
                    hit = end
                    break
        if hit:
            out.append(Span("IBAN_CODE", m.start(), hit, 1.0, "iban"))
            pos = hit
        else:
            pos = m.start() + 1


# ---- IP addresses -----------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![^\W_])(?<![\w.]\.)(?:\d{1,3}\.){3}\d{1,3}(?![^\W_]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")


# A dotted quad right after a version word is a version number ("firmware 5.12.0.7", "v1.2.3.4").
_VERSION_BEFORE = re.compile(r"(?i)(?:\b(?:version|ver\.?|release|build|firmware|fw|update|patch|python|"
                             r"node|java|windows|ios|android|macos)|\bv)\s*[:=]?\s*$")


def detect_ips(text: str) -> list[Span]:
    """IPv4 and IPv6 addresses that :mod:`ipaddress` accepts."""
    out: list[Span] = []
    if "." in text:
        for m in _IPV4.finditer(text):
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            if _VERSION_BEFORE.search(text, max(0, m.start() - 20), m.start()):
                continue
            out.append(Span("IP_ADDRESS", m.start(), m.end(), 0.9, "ipv4"))
    if text.count(":") >= 2:
        for m in _IPV6.finditer(text):
            value = m.group()
            if value.count(":") < 2 or not any(c.isalnum() for c in value):
                continue
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                continue
            out.append(Span("IP_ADDRESS", m.start(), m.end(), 0.9, "ipv6"))
    return out


# ---- US social security numbers --------------------------------------------------------

_SSN = re.compile(r"(?<![^\W_])(?<![^\W_]-)(\d{3})([- ])(\d{2})\2(\d{4})" + _NUM_END)
_SSN_BARE = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?)\W{0,6}(?:is\W{1,3})?(\d{9})\b")


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """Whether an SSN's parts could have been issued (not area 000/666/9xx, group 00, serial 0000)."""
    return not (area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000")


def detect_ssns(text: str) -> list[Span]:
    """US social security numbers."""
    out = [Span("US_SSN", m.start(), m.end(), 0.85, "ssn") for m in _SSN.finditer(text)
           if ssn_valid(m.group(1), m.group(3), m.group(4))]
    for m in _SSN_BARE.finditer(text):
        d = m.group(1)
        if ssn_valid(d[:3], d[3:5], d[5:]):
            out.append(Span("US_SSN", m.start(1), m.end(1), 0.8, "ssn"))
    return out


# ---- dates ------------------------------------------------------------------------------

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH_RE = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ORD = r"(?:st|nd|rd|th)?"
_DATE_PATTERNS = [
    # 10/23/1951, 23.10.1951, 23-10-51
    re.compile(r"(?<![\w/.-])(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})(?![\w/-]|\.\d)"),
    # 1951-10-23, 1951/10/23
    re.compile(r"(?<![\w/.-])(?P<y>\d{4})(?P<sep>[/-])(?P<a>\d{1,2})(?P=sep)(?P<b>\d{1,2})(?![\w/-]|\.\d)"),
    # March 3, 1990 / Mar 3rd 1990 / March 1990
    re.compile(rf"(?i)\b(?P<m>{_MONTH_RE})\s+(?:(?P<d>\d{{1,2}}){_ORD},?\s+)?(?P<y>\d{{4}})\b"),
    # 3 March 1990 / 3rd of March, 1990
    re.compile(rf"(?i)\b(?P<d>\d{{1,2}}){_ORD}\s+(?:of\s+)?(?P<m>{_MONTH_RE}),?\s+(?P<y>\d{{4}})\b"),
]
_BIRTH_CUE = re.compile(r"(?i)\b(?:born|birth\s*date|date\s+of\s+birth|birthday|d\.?o\.?b\.?|b-day|birth)\b")
_BIRTH_WINDOW = 40
_CLAUSE_END = re.compile(r"[.;!?]\s|\n\s*\n")


def _valid_date(y: int, m: int, d: int) -> bool:
    if not 1 <= m <= 12:
        return False
    return 1 <= d <= calendar.monthrange(y if y > 0 else 2000, m)[1]


def _date_ok(match: re.Match[str]) -> bool:
    g = match.groupdict()
    y = int(g["y"]) if g.get("y") else 2000
    if len(g.get("y") or "") == 4 and not 1000 <= y <= 2199:
        return False
    if g.get("m"):
        m = _MONTHS[g["m"].lower().rstrip(".")]
        return _valid_date(y, m, int(g["d"])) if g.get("d") else True
    a, b = int(g["a"]), int(g["b"])
    if match.re is _DATE_PATTERNS[1]:
        return _valid_date(y, a, b)
    return _valid_date(y, a, b) or _valid_date(y, b, a)


def detect_dates(text: str) -> list[Span]:
    """Calendar dates: ``DATE_OF_BIRTH`` after a birth cue, ``DATE_TIME`` otherwise."""
    spans: list[Span] = []
    cues = [m.end() for m in _BIRTH_CUE.finditer(text)]
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if not _date_ok(m):
                continue
            birth = any(0 <= m.start() - c <= _BIRTH_WINDOW and not _CLAUSE_END.search(text[c:m.start()])
                        for c in cues)
            spans.append(Span("DATE_OF_BIRTH", m.start(), m.end(), 0.9, "date+birth_cue") if birth
                         else Span("DATE_TIME", m.start(), m.end(), 0.6, "date"))
    return spans


# ---- URLs and credentials in URLs -------------------------------------------------------

_URL_CREDS = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://(?P<cred>[^\s:/@?#]+:[^\s/@?#]+)@[\w.-]+")
_URL = re.compile(r"(?i)(?<![^\W\d_])(?:https?://|ftp://|www\.)[^\s<>\"'`]+")  # a digit may come before
_URL_TRAIL = ".,;:!?)]}'\""


def detect_url_credentials(text: str) -> list[Span]:
    """The ``user:password`` of URLs that carry credentials."""
    if "://" not in text:
        return []
    return [Span("URL_CREDENTIALS", m.start("cred"), m.end("cred"), 0.95, "url_credentials")
            for m in _URL_CREDS.finditer(text)]


def detect_urls(text: str) -> list[Span]:
    """Web addresses (``http(s)://``, ``ftp://``, ``www.``), trailing punctuation excluded."""
    out = []
    for m in _URL.finditer(text):
        end = m.end()
        while end > m.start() and text[end - 1] in _URL_TRAIL:
            if text[end - 1] == ")" and text[m.start():end].count("(") >= text[m.start():end].count(")"):
                break
            end -= 1
        if end - m.start() > 8:
            out.append(Span("URL", m.start(), end, 0.6, "url"))
    return out


# ---- secrets ----------------------------------------------------------------------------

_KNOWN_SECRETS = [
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}\b")),
    ("github_token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b")),
    ("github_pat", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b")),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("slack_webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("stripe_key", re.compile(r"\b[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}\b")),
    ("openai_key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("private_key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                               r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
]
_SECRET_ASSIGN = re.compile(
    r"(?i)(?P<key>[\w.-]*(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|pwd|credential|auth|private[_-]?key)"
    r"[\w.-]*)[\"']?\s*(?::|=|=>|:=)\s*[\"']?(?P<value>[^\s\"',;]{8,})")


def shannon_entropy(s: str) -> float:
    """Bits per character of ``s``'s character distribution."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _random_enough(value: str, key: str) -> bool:
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value),
                   any(c.isdigit() for c in value), any(not c.isalnum() for c in value)))
    if "pass" in key.lower() or "pwd" in key.lower():
        return classes >= 2 and len(value) >= 8
    return len(value) >= 16 and classes >= 2 and shannon_entropy(value) >= 3.0


def detect_secrets(text: str) -> list[Span]:
    """API keys, tokens, private key blocks and secret-looking ``key = value`` values."""
    out = []
    for name, pattern in _KNOWN_SECRETS:
        out.extend(Span("SECRET", m.start(), m.end(), 0.99, name) for m in pattern.finditer(text))
    for m in _SECRET_ASSIGN.finditer(text):
        value = m.group("value")
        if _random_enough(value, m.group("key")) and "://" not in value:
            out.append(Span("SECRET", m.start("value"), m.end("value"), 0.7, "secret_assignment"))
    return out


# Rule detectors that take no options, by the types they produce.
PATTERN_DETECTORS: dict[tuple[str, ...], Callable[[str], list[Span]]] = {
    ("EMAIL_ADDRESS",): detect_emails, ("CREDIT_CARD",): detect_credit_cards, ("IBAN_CODE",): detect_ibans,
    ("IP_ADDRESS",): detect_ips, ("US_SSN",): detect_ssns, ("DATE_OF_BIRTH", "DATE_TIME"): detect_dates,
    ("URL_CREDENTIALS",): detect_url_credentials, ("URL",): detect_urls, ("SECRET",): detect_secrets,
}
