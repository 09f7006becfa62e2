"""What strategies look at in a row: its instruction and response, a heuristic quality, embeddings, clusters."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["HEURISTIC_QUALITY", "cluster_arms", "embed", "field_text", "heuristic_quality", "kmeans_labels",
           "pair_of"]

HEURISTIC_QUALITY = ("built-in heuristic: log(1 + words in the response) x distinct-word ratio of the response, "
                     "0 when the response has under 3 words (long, non-repetitive answers score high)")
_WORD = re.compile(r"\w+", re.UNICODE)


def field_text(row: dict[str, Any], name: str) -> str:
    """The row's ``name`` value as text ('' when missing; lists are joined with spaces)."""
    v = row.get(name)
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    return str(v)


def pair_of(row: dict[str, Any], instruction_fields: Sequence[str], response_field: str) -> tuple[str, str]:
    """(instruction, response): the non-empty instruction fields joined by a blank line, and the response.

    A row without the response field uses its ``text`` as the response and an empty instruction.
    """
    if response_field not in row:
        return "", field_text(row, "text")
    parts = [t for f in instruction_fields if (t := field_text(row, f).strip())]
    return "\n\n".join(parts), field_text(row, response_field)


def heuristic_quality(response: str) -> float:
    """See :data:`HEURISTIC_QUALITY`."""
    words = [w.lower() for w in _WORD.findall(response)]
    if len(words) < 3:
        return 0.0
    return math.log1p(len(words)) * len(set(words)) / len(words)


def embed(texts: Sequence[str], model_path: str | None = None, batch_size: int = 32) -> np.ndarray:
    """Unit-length sentence embeddings (all-MiniLM-L6-v2 by default, or the encoder in ``model_path``)."""
    from gristmill.models.embed import load_sentence_encoder

    return load_sentence_encoder(model_path).encode(list(texts), batch_size=batch_size)


def kmeans_labels(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means cluster of each row of ``x`` (scikit-learn, k-means++ init, 4 restarts)."""
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(x)))
    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x).astype(int)


def cluster_arms(labels: Sequence[Any], candidates: Sequence[int] | None = None) -> tuple[list[list[int]], list[str]]:
    """Group row indices by label: (arms, arm names), arms ordered by label.

    ``candidates`` limits the rows (default: all).
    """
    idx = range(len(labels)) if candidates is None else candidates
    groups: dict[str, list[int]] = {}
    for i in idx:
        groups.setdefault(str(labels[i]), []).append(int(i))

    def key(s: str) -> tuple[int, Any]:
        return (0, int(s)) if s.lstrip("-").isdigit() else (1, s)

    names = sorted(groups, key=key)
    return [groups[n] for n in names], names
