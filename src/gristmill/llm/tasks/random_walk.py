"""Multi-hop questions from random walks over a knowledge graph of (head, relation, tail) triples.

Relations are read as nouns describing the tail relative to the head: ``(Hamlet, author,
William Shakespeare)`` reads "the author of Hamlet is William Shakespeare". A walk of k
hops from a start entity follows k outgoing edges without revisiting an entity; the
question nests the relations (:func:`question_for`): "What is the birthplace of the
author of Hamlet?", and the answer is the walk's last entity.

:func:`check_answer` re-follows the question's relations from the start entity through
the whole graph, independently of the walk, and accepts only when that leads to exactly
the walk's end: a relation with several tails on the way (``official language`` of a
country with two) makes the question ambiguous and the walk is rejected
(``ambiguous: ...``); a different end is ``answer_mismatch: ...``.

Graph files: CSV with a header naming ``head,relation,tail`` (or ``subject,predicate,
object``), or JSONL objects with those keys.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gristmill.llm.types import ParseError

__all__ = ["Graph", "Walk", "check_answer", "evidence_for", "load_triples", "question_for", "random_walk",
           "rephrase_prompt", "parse_rephrase"]

_ALIASES = {"subject": "head", "predicate": "relation", "object": "tail", "h": "head", "r": "relation", "t": "tail"}


@dataclass(frozen=True)
class Walk:
    """A path ``start -r1-> e1 -r2-> ... -> end`` as its triples."""

    triples: tuple[tuple[str, str, str], ...]

    @property
    def start(self) -> str:
        return self.triples[0][0]

    @property
    def end(self) -> str:
        return self.triples[-1][2]

    @property
    def relations(self) -> list[str]:
        return [r for _, r, _ in self.triples]

    @property
    def hops(self) -> int:
        return len(self.triples)


@dataclass
class Graph:
    """Outgoing edges per entity: ``edges[head] = [(relation, tail), ...]`` in file order."""

    edges: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def from_triples(cls, triples: Iterable[tuple[str, str, str]]) -> Graph:
        g = cls()
        seen: set[tuple[str, str, str]] = set()
        for h, r, t in triples:
            if (h, r, t) not in seen:
                seen.add((h, r, t))
                g.edges[h].append((r, t))
        return g

    def follow(self, heads: Iterable[str], relation: str) -> set[str]:
        """Every tail reached from ``heads`` by ``relation``."""
        return {t for h in heads for r, t in self.edges.get(h, ()) if r == relation}

    def __len__(self) -> int:
        return sum(len(v) for v in self.edges.values())


def load_triples(path: str | Path) -> list[tuple[str, str, str]]:
    """Triples from a CSV (header row) or JSONL file; blank fields are errors naming the line."""
    path = Path(path)
    rows: list[dict[str, str]]
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    out = []
    for n, row in enumerate(rows, 2 if path.suffix.lower() not in (".jsonl", ".json") else 1):
        norm = {_ALIASES.get(k.strip().lower(), k.strip().lower()): (v or "").strip() for k, v in row.items() if k}
        h, r, t = norm.get("head"), norm.get("relation"), norm.get("tail")
        if not (h and r and t):
            raise ValueError(f"{path}:{n}: a triple needs non-empty head, relation and tail, got {row!r}")
        out.append((h, r, t))
    return out


def random_walk(graph: Graph, start: str, hops: int, rng: random.Random, attempts: int = 20) -> Walk | None:
    """A walk of exactly ``hops`` edges from ``start`` that revisits no entity, or ``None``."""
    for _ in range(attempts):
        node, visited, path = start, {start}, []
        for _ in range(hops):
            options = [(r, t) for r, t in graph.edges.get(node, ()) if t not in visited]
            if not options:
                break
            r, t = rng.choice(options)
            path.append((node, r, t))
            visited.add(t)
            node = t
        if len(path) == hops:
            return Walk(tuple(path))
    return None


def _phrase(relation: str) -> str:
    return relation.replace("_", " ").strip()


def question_for(walk: Walk) -> str:
    """The nested question: relations from the last hop outward, then the start entity."""
    nested = " of the ".join(_phrase(r) for r in reversed(walk.relations))
    return f"What is the {nested} of {walk.start}?"


def evidence_for(walk: Walk) -> str:
    """The walk as sentences, one per hop ("The author of Hamlet is William Shakespeare.")."""
    return " ".join(f"The {_phrase(r)} of {h} is {t}." for h, r, t in walk.triples)


def check_answer(graph: Graph, start: str, relations: Sequence[str], answer: str) -> None:
    """Raise :class:`ParseError` unless following ``relations`` from ``start`` leads to exactly ``answer``."""
    frontier = {start}
    for i, r in enumerate(relations):
        nxt = graph.follow(frontier, r)
        if len(nxt) > 1:
            where = ", ".join(sorted(frontier))
            raise ParseError(f"ambiguous: hop {i + 1} ({_phrase(r)!r} of {where}) has {len(nxt)} answers")
        if not nxt:
            raise ParseError(f"answer_mismatch: hop {i + 1} ({_phrase(r)!r}) leads nowhere")
        frontier = nxt
    (end,) = frontier
    if end != answer:
        raise ParseError(f"answer_mismatch: the path ends at {end!r}, not {answer!r}")


# ---- optional LLM rephrasing -------------------------------------------------------
def rephrase_prompt(question: str) -> list[dict[str, str]]:
    """Ask a model to make a nested template question read naturally, keeping its meaning."""
    return [
        {"role": "system", "content": "You rewrite questions so they read naturally. Keep every name exactly "
                                      "as written and do not change what is asked. Reply with the question only."},
        {"role": "user", "content": f"Rewrite this question: {question}"},
    ]


def parse_rephrase(text: str, walk: Walk) -> str:
    """The rephrased question; it must still name the start entity and not give away the answer."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    q = lines[0].strip('"\u201c\u201d').strip() if lines else ""
    if not q:
        raise ParseError("empty: no question in the answer")
    if walk.start.lower() not in q.lower():
        raise ParseError(f"rephrase_drift: start entity {walk.start!r} missing")
    if walk.end.lower() in q.lower():
        raise ParseError(f"rephrase_leak: the answer {walk.end!r} appears in the question")
    if not q.endswith("?"):
        raise ParseError("rephrase_not_question: no question mark")
    return q
