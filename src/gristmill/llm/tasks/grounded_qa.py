"""Grounded question answering from passages: the model quotes the span that supports its answer.

The model is asked for one question per passage, its answer and the supporting span
copied from the passage, as three labelled lines (``Question:``, ``Answer:``,
``Evidence:``) or a JSON object with those keys. :func:`parse` then checks the grounding:

* the span must be found in the passage: rapidfuzz ``partial_ratio`` (the best-matching
  passage substring, case-insensitive, whitespace collapsed) >= ``min_span_match``
  (default 90), else ``unsupported: answer not in passage (span match 62 < 90)``;
* the answer must be supported by that span: at least ``min_answer_overlap`` (default
  0.6) of the answer's content words (not stop words) occur in the matched span, else
  ``unsupported: answer not in span (overlap 0.33 < 0.6)``; an answer with no content
  words (``Yes``, ``False``) cannot be checked and is rejected
  (``unsupported: answer has no content words to check``).

The kept row's ``qa.evidence`` is the passage's own text at the matched place (not the
model's possibly misquoted copy), with its character offsets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

from gristmill.llm.tasks.evol_instruct import STOP_WORDS
from gristmill.llm.types import ParseError

__all__ = ["Grounding", "QAPair", "format_prompt", "ground", "parse", "parse_qa"]

SYSTEM = ("You write reading-comprehension questions. Every answer must come from the passage, and you copy "
          "the exact sentence of the passage that contains the answer.")
_FIELDS = {"question": "question", "q": "question", "answer": "answer", "a": "answer", "evidence": "evidence",
           "span": "evidence", "supporting span": "evidence", "quote": "evidence", "support": "evidence"}
_LINE_RE = re.compile(
    r"^\s*[*#\-]*\s*(question|answer|evidence|supporting span|span|quote|support|q|a)\s*[*]*\s*:\s*(.*)$",
    re.IGNORECASE)
_WS = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+")


def format_prompt(passage: str) -> list[dict[str, str]]:
    """Chat messages asking for one grounded question/answer/evidence triple about ``passage``."""
    if not passage or not passage.strip():
        raise ParseError("empty passage")
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": (
            f"Passage:\n{passage.strip()}\n\n"
            "Write one question that this passage answers. Reply in exactly this format:\n"
            "Question: <the question>\n"
            "Answer: <a short answer>\n"
            "Evidence: <the sentence from the passage that contains the answer, copied exactly>")},
    ]


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    evidence: str


def _clean(value: Any) -> str:
    return str(value or "").strip().strip('"').strip("\u201c\u201d").strip()


def parse_qa(text: str) -> QAPair:
    """The question, answer and evidence in a completion (labelled lines or JSON)."""
    found: dict[str, str] = {}
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped[: stripped.rfind("}") + 1])
        except (json.JSONDecodeError, ValueError):
            obj = None
        if isinstance(obj, dict):
            for k, v in obj.items():
                key = _FIELDS.get(str(k).strip().lower())
                if key and key not in found:
                    found[key] = _clean(v)
    if not found:
        current = None
        for line in text.splitlines():
            m = _LINE_RE.match(line)
            if m:
                current = _FIELDS[m.group(1).lower()]
                if current in found:  # a second triple: keep the first
                    break
                found[current] = m.group(2)
            elif current and line.strip():
                found[current] += " " + line.strip()
        found = {k: _clean(v) for k, v in found.items()}
    for key in ("question", "answer", "evidence"):
        if not found.get(key):
            raise ParseError(f"format: no {key} in the completion")
    return QAPair(found["question"], found["answer"], found["evidence"])


@dataclass(frozen=True)
class Grounding:
    """Where the evidence sits in the passage and how well the span and the answer match."""

    start: int
    end: int
    span_match: float
    answer_overlap: float


_UNCHECKABLE = frozenset({"yes", "no", "true", "false", "correct", "incorrect"})


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS and w not in _UNCHECKABLE]


def ground(passage: str, pair: QAPair, *, min_span_match: float = 90.0,
           min_answer_overlap: float = 0.6) -> Grounding:
    """Locate the evidence in the passage and check the answer against it; :class:`ParseError` if unsupported."""
    span = _WS.sub(" ", pair.evidence).strip().lower()
    # lowercase char by char, keeping characters whose lowercase is longer, so offsets map back
    hay = "".join(c.lower() if len(c.lower()) == 1 else c for c in passage)
    hay_ws = _WS.sub(" ", hay)
    aln = fuzz.partial_ratio_alignment(span, hay_ws)
    score = aln.score if aln is not None else 0.0
    if score < min_span_match:
        raise ParseError(f"unsupported: answer not in passage (span match {score:.0f} < {min_span_match:g})")
    start, end = _map_offsets(hay, aln.dest_start, aln.dest_end)
    evidence = passage[start:end]
    words = _content_words(pair.answer)
    if not words:
        raise ParseError("unsupported: answer has no content words to check")
    ev = set(_content_words(evidence))
    overlap = sum(w in ev for w in words) / len(words)
    if overlap < min_answer_overlap:
        raise ParseError(f"unsupported: answer not in span (overlap {overlap:.2f} < {min_answer_overlap:g})")
    return Grounding(start, end, score, overlap)


def _map_offsets(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets in ``_WS.sub(' ', text)`` → offsets in ``text``."""
    mapping: list[int] = []
    i = 0
    for m in _WS.finditer(text):
        mapping.extend(range(i, m.start()))
        mapping.append(m.start())
        i = m.end()
    mapping.extend(range(i, len(text)))
    mapping.append(len(text))
    return mapping[start], mapping[min(end, len(mapping) - 1)]


def parse(text: str, passage: str, *, min_span_match: float = 90.0,
          min_answer_overlap: float = 0.6) -> dict[str, Any]:
    """A grounded QA row from a completion, or :class:`ParseError` with the reject reason."""
    pair = parse_qa(text)
    g = ground(passage, pair, min_span_match=min_span_match, min_answer_overlap=min_answer_overlap)
    return {"question": pair.question, "answer": pair.answer, "qa.evidence": passage[g.start:g.end],
            "qa.evidence_start": g.start, "qa.evidence_end": g.end, "qa.span_match": g.span_match,
            "qa.answer_overlap": g.answer_overlap}
