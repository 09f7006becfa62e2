"""``generate.random_walk``: multi-hop questions from random walks over a knowledge graph."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.llm.tasks import random_walk
from gristmill.llm.types import ParseError
from gristmill.ops.base import Context
from gristmill.ops.generate.base import RAW, LLMGenerator, LLMParams
from gristmill.ops.generate.common import _EXAMPLE_KG, _inherit, _parent_id, example_text
from gristmill.records import ID, REASON, Reason


class RandomWalkQA(LLMGenerator):
    """Multi-hop questions from random walks over a knowledge graph of triples (no model by default).

    The graph is a CSV (``head,relation,tail`` header) or JSONL file (``graph``; a relative
    path is taken from the recipe's folder). Each input row starts ``walks_per_row``
    walks of ``min_hops``-``max_hops`` hops (seeded by ``seed`` and the row id), from the
    entity in ``start_column`` or from a random entity. Each walk becomes a question
    nesting its relations ("What is the birthplace of the author of Hamlet?") with the
    walk's end as the answer, checked by following the relations through the whole graph
    again. With ``rephrase``, the model rewrites the question to read naturally (the
    rewrite must keep the start entity and not name the answer). Rows: ``instruction``
    (the question), ``input`` (empty), ``output`` (the answer, or the evidence chain then
    the answer with ``answer_style: chain``), ``text``, ``question``, ``answer``,
    ``walk.start``, ``walk.hops``, ``walk.path`` (JSON triples), ``walk.evidence``.
    Rejected: ``dead_end: no 3-hop walk from 'X'``, ``ambiguous: ...``,
    ``answer_mismatch: ...``, ``duplicate_walk: ...``, ``rephrase_*: ...``.
    """

    name = "generate.random_walk"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"graph": str(_EXAMPLE_KG)}

    class Params(LLMParams):
        graph: str = Field(..., description="Triples file: CSV with a head,relation,tail header, or JSONL.")
        walks_per_row: int = Field(1, ge=1, description="Walks started per input row.")
        min_hops: int = Field(2, ge=1, description="Fewest hops in a walk.")
        max_hops: int = Field(3, ge=1, description="Most hops in a walk.")
        start_column: str | None = Field(None, description="Column naming the start entity (default: random).")
        seed: int = Field(0, description="Walk seed (combined with the row id, so shards do not matter).")
        answer_style: Literal["short", "chain"] = Field("short", description="Output the answer alone, or the "
                                                                             "evidence sentences then the answer.")
        rephrase: bool = Field(False, description="Let the model rephrase each template question.")
        dedupe: bool = Field(True, description="Reject a walk already made from an earlier row of the shard.")

        @model_validator(mode="after")
        def _hops_ordered(self) -> RandomWalkQA.Params:
            if self.min_hops > self.max_hops:
                raise ValueError(f"min_hops ({self.min_hops}) must not exceed max_hops ({self.max_hops})")
            return self

    graph: random_walk.Graph | None = None
    _starts: list[str] = []

    def input_files(self) -> list[Path]:
        return [self.resolve_path(self.params.graph)]

    def make_task(self) -> None:
        return None

    def required_modules(self) -> list[str]:
        """The backend's modules only with ``rephrase`` (the walks themselves need no model)."""
        return super().required_modules() if self.params.rephrase else []

    def setup(self, ctx: Context) -> None:
        path = self.resolve_path(self.params.graph)
        if not path.is_file():
            raise FileNotFoundError(f"{self.name}: graph file not found: {path}")
        self.graph = random_walk.Graph.from_triples(random_walk.load_triples(path))
        self._starts = sorted(h for h, edges in self.graph.edges.items() if edges)
        self.task = None
        self.backend = self.make_backend(ctx) if self.params.rephrase else None

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"backend": None, "task": None, "graph": None, "_starts": []}

    def reads(self) -> list[str]:
        return [self.params.start_column] if self.params.start_column else []

    def writes(self) -> list[str]:
        return ["instruction", "input", "output", "text", "question", "answer", "walk.start", "walk.hops",
                "walk.path", "walk.evidence", "gen.parent"]

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        p = self.params
        assert self.graph is not None
        out: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        seen: set[tuple[tuple[str, str, str], ...]] = set()
        for n, row in enumerate(batch.to_pylist()):
            parent = _parent_id(row, n)
            for j in range(p.walks_per_row):
                rng = random.Random(f"{p.seed}:{parent}:{j}")
                hops = rng.randint(p.min_hops, p.max_hops)
                start = row.get(p.start_column) if p.start_column else (rng.choice(self._starts) if self._starts
                                                                         else None)
                wid = f"{parent}-w{j}"
                walk = random_walk.random_walk(self.graph, start, hops, rng) if start else None
                if walk is None:
                    failures.append({**row, ID: wid, REASON: Reason("dead_end", f"no {hops}-hop walk from {start!r}")})
                    continue
                try:
                    random_walk.check_answer(self.graph, walk.start, walk.relations, walk.end)
                except ParseError as exc:
                    failures.append({**row, ID: wid, "walk.path": json.dumps(walk.triples), REASON: str(exc)})
                    continue
                if p.dedupe and walk.triples in seen:
                    failures.append({**row, ID: wid, "walk.path": json.dumps(walk.triples),
                                     REASON: Reason("duplicate_walk", f"{walk.start!r} over {len(walk.triples)} hops")})
                    continue
                seen.add(walk.triples)
                question = random_walk.question_for(walk)
                evidence = random_walk.evidence_for(walk)
                output = walk.end if p.answer_style == "short" else f"{evidence} So the answer is {walk.end}."
                new = {ID: wid, "instruction": question, "input": "", "output": output,
                       "text": example_text(question, "", output),
                       "question": question, "answer": walk.end, "walk.start": walk.start, "walk.hops": walk.hops,
                       "walk.path": json.dumps(walk.triples), "walk.evidence": evidence}
                out.append(_inherit(new, row, parent, self.name))
        if p.rephrase and out:
            out, more = self._rephrase(out)
            failures += more
        return out, failures

    def _rephrase(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        completions = self.complete([random_walk.rephrase_prompt(r["question"]) for r in rows])
        kept, failures = [], []
        for r, c in zip(rows, completions):
            gen = self._gen_columns(c)
            walk = random_walk.Walk(tuple(tuple(t) for t in json.loads(r["walk.path"])))
            if c.finish_reason == "error":
                failures.append({**r, **gen, RAW: None, REASON: Reason("backend", c.error or "")})
                continue
            try:
                q = random_walk.parse_rephrase(c.text, walk)
            except ParseError as exc:
                failures.append({**r, **gen, RAW: c.text, REASON: str(exc)})
                continue
            kept.append({**r, **gen, "instruction": q, "text": example_text(q, "", r["output"]), "question": q})
        return kept, failures


# ---- generate.paraphrase ---------------------------------------------------------
