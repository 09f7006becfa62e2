"""PII spans: the typed, scored character ranges every PII detector returns, and how
overlapping spans are resolved into one non-overlapping list.

Offsets are Python string indices (code points) into the text, ``end`` exclusive, so
``text[span.start:span.end]`` is the detected value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MODEL_DETECTORS", "PRIORITY", "TYPES", "Span", "resolve_overlaps"]

# Every entity type pii.detect can output, in the order tables list them.
TYPES = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN",
    "DATE_OF_BIRTH", "DATE_TIME", "STREET_ADDRESS", "URL_CREDENTIALS", "URL", "SECRET",
    "PERSON", "ORGANIZATION", "LOCATION", "NRP",
)

# Which type wins when two spans overlap and neither is clearly longer: checksummed and
# structured values first, model guesses last.
PRIORITY = {
    "SECRET": 100, "URL_CREDENTIALS": 95, "CREDIT_CARD": 90, "IBAN_CODE": 90, "US_SSN": 85,
    "EMAIL_ADDRESS": 85, "IP_ADDRESS": 80, "URL": 75, "PHONE_NUMBER": 70, "DATE_OF_BIRTH": 65,
    "STREET_ADDRESS": 60, "DATE_TIME": 40, "PERSON": 30, "ORGANIZATION": 25, "LOCATION": 20, "NRP": 15,
}


@dataclass(frozen=True, slots=True)
class Span:
    """One detected value: ``type`` at ``text[start:end]``, with a confidence and the detector's name."""

    type: str
    start: int
    end: int
    score: float
    detector: str

    def __len__(self) -> int:
        return self.end - self.start

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def as_dict(self, text: str | None = None) -> dict[str, object]:
        """The span as a plain dict (``text`` included when the source text is given)."""
        out: dict[str, object] = {"type": self.type, "start": self.start, "end": self.end}
        if text is not None:
            out["text"] = text[self.start:self.end]
        out["score"] = round(float(self.score), 4)
        out["detector"] = self.detector
        return out


# Detectors whose spans are statistical guesses; every other detector is a rule with evidence.
MODEL_DETECTORS = frozenset({"spacy"})


def _rank(span: Span) -> tuple[int, int, float, int]:
    # Rule detectors beat the NER model even when shorter: a phone number inside a span the
    # model called ORGANIZATION is a phone number, a name after "Mr." is a person.
    structured = span.detector not in MODEL_DETECTORS
    return (int(structured), len(span), span.score, PRIORITY.get(span.type, 0))


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """A non-overlapping subset of ``spans``, sorted by start.

    Spans are taken greedily, best first: a rule detector's span beats an NER model's
    span; among the same class the longer span wins, then the higher score, then the
    type's :data:`PRIORITY`. A span that overlaps one already taken is dropped.
    Identical ranges of the same type are merged (the higher score is kept).
    """
    taken: list[Span] = []
    for span in sorted(spans, key=lambda s: (_rank(s), -s.start), reverse=True):
        if span.end <= span.start:
            continue
        if not any(span.overlaps(t) for t in taken):
            taken.append(span)
    return sorted(taken, key=lambda s: s.start)
