"""LLM-as-judge with a 1-10 rubric (AlpaGasus-style): prompt and score parsing.

The judge sees the instruction, the optional input and the response, the rubric, and
answers ``Score: <1-10>`` then ``Rationale: <one or two sentences>``. :func:`parse`
accepts that form and the common variants small models produce (``Rating: 7/10``,
``**Score**: 8``, ``7 out of 10``, JSON ``{"score": 7, ...}``); a score outside 1-10 or no
score at all is a :class:`ParseError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from gristmill.llm.types import ParseError

__all__ = ["DEFAULT_RUBRIC", "format_prompt", "parse"]

DEFAULT_RUBRIC = (
    "Rate how good the response is as an answer to the instruction, from 1 to 10:\n"
    "- 1-2: wrong, off-topic, harmful or empty.\n"
    "- 3-4: partly relevant but mostly unhelpful or with clear errors.\n"
    "- 5-6: relevant and roughly correct, but incomplete or poorly written.\n"
    "- 7-8: correct, complete and clear, with minor flaws.\n"
    "- 9-10: excellent: accurate, complete, well organised and helpful."
)

_SCORE_RES = [
    re.compile(r"(?:score|rating|grade)\s*[*_]*\s*[:=]?\s*[*_]*\s*(\d+(?:\.\d+)?)\s*(?:/\s*10|out of 10)?", re.I),
    re.compile(r"(\d+(?:\.\d+)?)\s*(?:/\s*10|out of 10)", re.I),
    re.compile(r"^\s*[*_]*(\d+(?:\.\d+)?)[*_]*\s*(?:$|[.\n])"),
]
_RATIONALE = re.compile(r"(?:rationale|reason|explanation|justification)\s*[*_]*\s*:\s*[*_]*\s*(.+)", re.I | re.S)


def format_prompt(row: Mapping[str, Any], *, rubric: str = DEFAULT_RUBRIC, instruction_column: str = "instruction",
                  input_column: str = "input", response_column: str = "output") -> list[dict[str, str]]:
    """Chat messages asking the judge to score one (instruction, input, response) triple."""
    instruction = row.get(instruction_column)
    response = row.get(response_column)
    if not instruction or not str(instruction).strip():
        raise ParseError(f"missing {instruction_column}")
    if response is None:
        raise ParseError(f"missing {response_column}")
    parts = [f"Instruction:\n{str(instruction).strip()}"]
    if row.get(input_column):
        parts.append(f"Input:\n{str(row[input_column]).strip()}")
    parts.append(f"Response:\n{str(response).strip()}")
    return [
        {"role": "system", "content": "You are a strict, fair grader of answers."},
        {"role": "user", "content": "\n\n".join(parts) + "\n\n" + rubric
         + "\n\nReply in exactly this format:\nScore: <a number from 1 to 10>\nRationale: <one or two sentences>"},
    ]


def parse(text: str) -> dict[str, Any]:
    """``{"judge.score": 1.0-10.0, "judge.rationale": str}`` from a judge's answer."""
    stripped = text.strip()
    score: float | None = None
    rationale = ""
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped[: stripped.rfind("}") + 1])
            score = float(obj.get("score", obj.get("rating")))
            rationale = str(obj.get("rationale") or obj.get("reason") or obj.get("explanation") or "")
        except (ValueError, TypeError, AttributeError):
            score = None
    if score is None:
        for pattern in _SCORE_RES:
            m = pattern.search(stripped)
            if m:
                score = float(m.group(1))
                break
    if score is None:
        raise ParseError(f"no_score: {stripped[:40]!r}")
    if not 1 <= score <= 10:
        raise ParseError(f"score_out_of_range: {score:g}")
    if not rationale:
        m = _RATIONALE.search(stripped)
        rationale = m.group(1).strip() if m else stripped
    return {"judge.score": float(score), "judge.rationale": rationale}
