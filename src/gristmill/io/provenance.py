"""Provenance of web and document records: content hashes, times, and licence hints.

Every row the web and document readers (WARC, WET, HTML, PDF, Markdown) make carries the same
provenance columns, so a dataset built from them can say where each row came from:

``url``            the page's URL (WARC-Target-URI; an HTML file's ``<link rel="canonical">``), else null
``fetch_time``     when it was fetched, ISO 8601 UTC (WARC-Date; a file's modification time)
``content_sha256`` SHA-256 of the document's bytes as served (after HTTP transfer and content
                   decoding; a file's bytes), hex
``http_status``    the HTTP status of a WARC response, else null
``content_type``   the media type, without parameters (``text/html``, ``application/pdf``)
``license``        the licence the page states (see below), else the recipe's ``input.license``
``license_hints``  every licence statement found, ``kind: value`` joined by ``; ``, strongest first,
                   else null

Licence hints, strongest first: ``<link rel="license">`` / ``<a rel="license">`` (``rel`` may hold
other tokens too), ``<meta name="license">`` (also ``dcterms.license``, ``dc.license``), Creative
Commons URLs anywhere in the page (badges, plain links), and Creative Commons marks in the text
(``CC BY-SA 4.0``, ``Creative Commons Attribution 4.0``, ``CC0``). The strongest becomes ``license``,
normalised to an SPDX-style identifier where it is a Creative Commons licence
(``https://creativecommons.org/licenses/by-sa/4.0/`` -> ``CC-BY-SA-4.0``, ``.../publicdomain/zero/1.0/``
-> ``CC0-1.0``, the Public Domain Mark -> ``CC-PDM-1.0``) or a well-known URL (opensource.org,
gnu.org); any other statement is kept as written (a URL, or meta text cut to 200 characters).
A hint is evidence, not a verdict: a page quoting a licence it is not under is read as under it.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import re
from datetime import UTC, datetime
from typing import Any

__all__ = ["PROVENANCE_COLUMNS", "LicenseHints", "find_license_hints", "iso_time", "normalise_license",
           "provenance", "sha256", "text_license_hints"]

PROVENANCE_COLUMNS = ("url", "fetch_time", "content_sha256", "http_status", "content_type", "license",
                      "license_hints")

_CC_URL = re.compile(r"(?:https?:)?//(?:[a-z]+\.)?creativecommons\.org/(licenses|publicdomain|l|p)/([a-z0-9.+/-]*)",
                     re.I)
_CC_MARK = re.compile(r"\bCC[ -]?(0|BY(?:[ -](?:NC|SA|ND))*)\b(?:[ -]?v?(\d\.\d))?")
_CC_WORDS = re.compile(r"\bCreative Commons "
                       r"(Zero|Attribution(?:[ -](?:Non-?Commercial|Share-?Alike|No-?Deriv(?:ative)?s))*)"
                       r"(?: License)?(?:,? (?:version )?(\d\.\d))?", re.I)
_PDM = re.compile(r"\bPublic Domain Mark\b")
_TAG = re.compile(r"<(a|link|meta)\b", re.I)
_ATTR = re.compile(r"""([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")
_META_NAMES = {"license", "dcterms.license", "dc.license", "dc:license", "dcterms:license"}


def _gnu(m: re.Match[str]) -> str:
    name = "GFDL" if m.group(1).lower() == "fdl" else m.group(1).upper()
    return name + (f"-{m.group(2)}" if m.group(2) else "")


_WELL_KNOWN = [
    (re.compile(r"opensource\.org/licen[cs]es/([A-Za-z0-9.+-]+?)(?:\.php|\.html)?/?$", re.I), lambda m: m.group(1)),
    (re.compile(r"gnu\.org/licenses/(fdl|gpl|lgpl|agpl)(?:-(\d\.\d))?", re.I), _gnu),
    (re.compile(r"apache\.org/licenses/LICENSE-(\d\.\d)", re.I), lambda m: f"Apache-{m.group(1)}"),
]
MAX_META = 200


def sha256(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def iso_time(value: float | datetime | str | None) -> str | None:
    """An ISO 8601 UTC time (``2026-01-02T03:04:05Z``) from a POSIX time, a datetime or a WARC-Date."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, datetime):
        value = value.timestamp()
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cc_from_url(kind: str, path: str) -> str | None:
    parts = [p for p in path.lower().split("/") if p]
    if kind.lower() in ("publicdomain", "p"):
        if not parts:
            return None
        name = {"zero": "CC0", "mark": "CC-PDM"}.get(parts[0])
        if name is None:
            return None
        return f"{name}-{parts[1]}" if len(parts) > 1 and re.fullmatch(r"\d\.\d", parts[1]) else name
    if not parts or not re.fullmatch(r"by(?:-(?:nc|sa|nd))*", parts[0]):
        return None
    out = "CC-" + parts[0].upper()
    if len(parts) > 1 and re.fullmatch(r"\d\.\d", parts[1]):
        out += f"-{parts[1]}"
        if len(parts) > 2 and re.fullmatch(r"[a-z]{2}", parts[2]):
            out += f"-{parts[2].upper()}"
    return out


def normalise_license(value: str) -> str:
    """An SPDX-style identifier for a licence URL or mark where one is known, else ``value`` trimmed.

    ``https://creativecommons.org/licenses/by/4.0/`` -> ``CC-BY-4.0``; ``CC BY-SA 4.0`` -> ``CC-BY-SA-4.0``;
    ``https://opensource.org/licenses/MIT`` -> ``MIT``; ``/terms.html`` -> ``/terms.html``.
    """
    value = " ".join(value.split())[:MAX_META]
    m = _CC_URL.search(value)
    if m and (cc := _cc_from_url(m.group(1), m.group(2))):
        return cc
    for pattern, name in _WELL_KNOWN:
        if (w := pattern.search(value)) is not None:
            return str(name(w))
    if (mark := _mark(value)) is not None:
        return mark
    return value


def _mark(text: str) -> str | None:
    m = _CC_MARK.fullmatch(text.strip()) or _CC_MARK.match(text.strip())
    if m:
        code = "CC0" if m.group(1) == "0" else "CC-" + re.sub(r"[ -]", "-", m.group(1)).upper()
        return code + (f"-{m.group(2)}" if m.group(2) else "")
    w = _CC_WORDS.match(text.strip())
    if w:
        if w.group(1).lower() == "zero":
            return "CC0" + (f"-{w.group(2)}" if w.group(2) else "")
        flat = re.sub(r"[\s-]", "", w.group(1).lower())
        codes = [c for key, c in (("noncommercial", "NC"), ("sharealike", "SA"), ("noderiv", "ND")) if key in flat]
        return "CC-BY" + "".join(f"-{c}" for c in codes) + (f"-{w.group(2)}" if w.group(2) else "")
    if _PDM.fullmatch(text.strip()):
        return "CC-PDM-1.0"
    return None


class LicenseHints:
    """The licence statements found in one document; one per licence (the first found of each)."""

    RANKS = {"rel=license": 0, "meta license": 1, "cc url": 2, "cc mark": 3}

    def __init__(self) -> None:
        self.found: list[tuple[int, int, str, str]] = []  # (rank, order, kind, value)
        self._seen: dict[str, int] = {}  # normalised licence -> its index in found

    def add(self, kind: str, value: str) -> None:
        value = " ".join(value.split())[:MAX_META]
        if not value:
            return
        key, rank = normalise_license(value), self.RANKS[kind]
        at = self._seen.get(key)
        if at is None:
            self._seen[key] = len(self.found)
            self.found.append((rank, len(self.found), kind, value))
        elif rank < self.found[at][0]:  # the same licence stated more strongly (its link after its badge)
            self.found[at] = (rank, at, kind, value)

    def __bool__(self) -> bool:
        return bool(self.found)

    def license(self) -> str | None:
        """The strongest statement, normalised (:func:`normalise_license`), or None."""
        if not self.found:
            return None
        return normalise_license(min(self.found)[3])

    def text(self) -> str | None:
        """Every statement as ``kind: value`` joined by ``; ``, strongest first (the first is the
        licence), then in the order found; None without any."""
        return "; ".join(f"{kind}: {value}" for _, _, kind, value in sorted(self.found)) or None


def _attrs(tag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(tag):
        name = m.group(1).lower()
        if name not in out:
            out[name] = htmllib.unescape(m.group(2) or m.group(3) or m.group(4) or "")
    return out


def _positions(low: str, needle: str) -> list[int]:
    """Every index of ``needle`` in ``low`` (``str.find``: far cheaper than a case-insensitive regex)."""
    out, i = [], low.find(needle)
    while i >= 0:
        out.append(i)
        i = low.find(needle, i + 1)
    return out


def find_license_hints(html: str, hints: LicenseHints | None = None) -> LicenseHints:
    """The licence hints of an HTML page (see the module docstring). The page is searched with
    ``str.find`` for ``licen``, ``creativecommons.org`` and the marks' first letters, and looked at
    closer only there, so a page without them costs a few passes of ``find``."""
    hints = hints if hints is not None else LicenseHints()
    low = html.lower()
    done: set[int] = set()
    for at in sorted(_positions(low, "licen") + _positions(low, "creativecommons.org")):
        start = html.rfind("<", 0, at)
        if start >= 0 and start > html.rfind(">", 0, at) and start not in done:  # inside a tag
            done.add(start)
            end = html.find(">", at)
            end = len(html) if end < 0 else end
            tm = _TAG.match(html, start)
            if tm is not None:
                attrs = _attrs(html[tm.end():end])
                tag = tm.group(1).lower()
                if tag in ("a", "link") and "license" in attrs.get("rel", "").lower().split() and attrs.get("href"):
                    hints.add("rel=license", attrs["href"])
                    continue
                if tag == "meta" and attrs.get("name", "").lower() in _META_NAMES and attrs.get("content"):
                    hints.add("meta license", attrs["content"])
                    continue
        if low.startswith("creativecommons.org", at):
            u = _CC_URL.search(html, max(0, at - 16), at + 140)
            if u is not None and _cc_from_url(u.group(1), u.group(2)):
                hints.add("cc url", u.group(0))
    return _marks(html, low, hints)


def text_license_hints(text: str, hints: LicenseHints | None = None) -> LicenseHints:
    """The Creative Commons marks and URLs of plain text (a WET record, a PDF page, Markdown):
    ``CC BY-SA 4.0``, ``Creative Commons Attribution 4.0``, ``CC0``, the Public Domain Mark, and
    ``creativecommons.org`` licence URLs."""
    hints = hints if hints is not None else LicenseHints()
    low = text.lower()
    for at in _positions(low, "creativecommons.org"):
        u = _CC_URL.search(text, max(0, at - 16), at + 140)
        if u is not None and _cc_from_url(u.group(1), u.group(2)):
            hints.add("cc url", u.group(0))
    return _marks(text, low, hints)


def _marks(text: str, low: str, hints: LicenseHints) -> LicenseHints:
    """Add the Creative Commons marks of ``text`` (``low`` is its lower case) to ``hints``."""
    for at in _positions(text, "CC"):
        if at and (text[at - 1].isalnum() or text[at - 1] == "_"):
            continue
        if (m := _CC_MARK.match(text, at)) is not None:
            hints.add("cc mark", m.group(0))
    for at in _positions(low, "creative commons "):
        if (w := _CC_WORDS.match(text, at)) is not None:
            hints.add("cc mark", w.group(0))
    for at in _positions(text, "Public Domain Mark"):
        if (p := _PDM.match(text, at)) is not None:
            hints.add("cc mark", p.group(0))
    return hints


def provenance(*, url: str | None, fetch_time: str | None, data: bytes | None, http_status: int | None,
               content_type: str | None, hints: LicenseHints | None, digest: str | None = None) -> dict[str, Any]:
    """The provenance columns of one row (``license`` only when a hint was found, so the
    recipe's ``input.license`` fills the others)."""
    row: dict[str, Any] = {
        "url": url,
        "fetch_time": fetch_time,
        "content_sha256": digest if digest is not None else (sha256(data) if data is not None else None),
        "http_status": http_status,
        "content_type": content_type,
        "license_hints": hints.text() if hints else None,
    }
    lic = hints.license() if hints else None
    if lic is not None:
        row["license"] = lic
    return row
