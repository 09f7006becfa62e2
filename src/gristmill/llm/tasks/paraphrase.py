"""Paraphrase for augmentation (the back-translation role): rewrite, then check meaning and novelty.

:func:`format_prompt` asks for a rewrite in different words with the same meaning;
:func:`parse` strips labels and quotes the model adds and rejects a copy of the input
(``copy: identical to input``, compared case- and whitespace-insensitively). The
semantic check needs embeddings of the whole batch, so the operator computes cosine
similarities (MiniLM) and asks :func:`similarity_reason`, which rejects a drifted rewrite
(``drift: cos 0.61 < 0.8``) and, when ``max_cos`` is set, a near-copy
(``copy: cos 0.99 > 0.98``).
"""

from __future__ import annotations

import re

from gristmill.llm.types import ParseError
from gristmill.records import reason as reason_text

__all__ = ["STYLES", "format_prompt", "parse", "similarity_reason"]

STYLES = {
    "plain": "Rewrite the following text in different words. Keep its meaning and all of its facts.",
    "simple": "Rewrite the following text in simpler words for a young reader. Keep its meaning and facts.",
    "formal": "Rewrite the following text in a formal register. Keep its meaning and all of its facts.",
    "casual": "Rewrite the following text in a casual, conversational tone. Keep its meaning and facts.",
}
_LABEL = re.compile(r"^\s*(rewritten text|rewrite|rewritten|paraphrase|paraphrased text|here is[^:\n]*)\s*:\s*",
                    re.IGNORECASE)
_WS = re.compile(r"\s+")


def format_prompt(text: str, style: str = "plain") -> list[dict[str, str]]:
    """Chat messages asking for one rewrite of ``text`` in ``style``."""
    if not text or not text.strip():
        raise ParseError("empty text")
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    return [{"role": "user", "content": f"{STYLES[style]} Reply with the rewritten text only.\n\nText: {text.strip()}"}]


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


def parse(text: str, original: str) -> str:
    """The rewrite in a completion; :class:`ParseError` for an empty answer or a copy of the input."""
    out = _LABEL.sub("", text.strip()).strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'":
        out = out[1:-1].strip()
    if not out:
        raise ParseError("empty: no rewrite in the completion")
    if _norm(out) == _norm(original):
        raise ParseError("copy: identical to input")
    return out


def similarity_reason(cos: float, min_cos: float = 0.8, max_cos: float | None = None) -> str | None:
    """Why a rewrite with cosine ``cos`` to its input is rejected, or ``None``."""
    if cos < min_cos:
        return reason_text("drift", f"cos {cos:.2f} < {min_cos:g}")
    if max_cos is not None and cos > max_cos:
        return reason_text("copy", f"cos {cos:.3f} > {max_cos:g}")
    return None
