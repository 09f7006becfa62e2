"""``pii.redact`` (mapper): replace detected PII by type tags, salted hashes or consistent
pseudonyms; detection is :mod:`gristmill.ops.pii.detect`'s."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.audit.metric import AuditSection
from gristmill.ops.base import Context, Mapper
from gristmill.ops.pii.address import CONTINUATION
from gristmill.ops.pii.detect import (DEFAULT_REDACT_TYPES, DetectParams, Detector, PII_COUNT, PII_INVISIBLE,
                                      PII_REDACTED, PII_REMAINING, PII_SPANS, PiiType, SALT_ENV, SPAN_TYPE,
                                      _span_rows)
from gristmill.ops.pii.detect import PII_AUDIT
from gristmill.ops.pii.fake import hash_tag, protected_ranges, pseudonym, tag
from gristmill.ops.pii.normalise import INVISIBLE, count_invisible
from gristmill.ops.pii.spans import TYPES, Span, resolve_overlaps
from gristmill.records import column_list, set_column

__all__ = ["PiiRedact", "redact_text"]


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
    record, shard and worker (see :mod:`gristmill.ops.pii.fake`; dates become tags). Text
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

    @classmethod
    def audit_section(cls) -> AuditSection:
        """The same section as ``pii.detect``'s: its ``types`` decide which remaining spans count."""
        return PII_AUDIT

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [self.params.column, PII_REDACTED, PII_REMAINING]

    def required_modules(self) -> list[str]:
        """spaCy when ``ner`` is on (the rule-based types need nothing beyond the base install)."""
        return ["spacy"] if self.params.ner else []

    def _salt(self) -> str:
        if self.params.mode == "tag":
            return ""
        salt = self.params.salt if self.params.salt is not None else os.environ.get(self.params.salt_env)
        if not salt:
            raise ValueError(f"pii.redact mode={self.params.mode} needs a salt: set the {self.params.salt_env} "
                             "environment variable (or the salt parameter)")
        return salt

    def setup(self, ctx: Context) -> None:
        self._salt()
        if self.params.ner:
            from gristmill.ops.pii.ner import load_nlp

            load_nlp()

    def map(self, batch: pa.Table) -> pa.Table:
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
