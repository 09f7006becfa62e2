"""Generation operators: parameters + a task from :mod:`gristmill.generate.tasks` + a base class.

``generate.template`` and ``generate.random_walk`` need no model; the others talk to the
backend named in their ``backend`` parameter (see :mod:`gristmill.generate.operator`),
through the run's response cache. Every generated row has an ``id`` derived from its
parent (or the run's seed rows), ``source``, ``gen.parent`` and the ``gen.*`` token
columns; every reject has a ``_reason`` in the ``rule: detail`` form and, when a
completion was involved, its raw text in ``gen.raw``. Rows shaped as instruction /
input / output also get ``text`` = the whole example (:func:`example_text`), so text
operators downstream see all of it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Union

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from gristmill.generate.operator import RAW, LLMAnnotator, LLMGenerator, LLMParams
from gristmill.generate.tasks import evol_instruct, grounded_qa, judge, paraphrase, random_walk, self_instruct
from gristmill.generate.tasks import template as template_task
from gristmill.generate.types import Decoding, ParseError, Prompt, TaskOutput
from gristmill.ops.base import Generator, Params, StepResult, split_by_mask
from gristmill.ops.scoring import Rule
from gristmill.records import ID, LICENSE, REASON, SOURCE, set_column

__all__ = ["EvolInstruct", "JudgeScore", "Paraphrase", "QAFromDocuments", "RandomWalkQA", "SelfInstruct",
           "TemplateGenerate", "example_text"]

_REPO = Path(__file__).resolve().parents[3]
_EXAMPLE_KG = _REPO / "recipes" / "data" / "kg_triples.csv"


def example_text(instruction: str | None, input: str | None = "", output: str | None = None) -> str:
    """The ``text`` of an instruction/input/output row: its parts separated by blank lines.

    Text operators (clean, quality, dedup, decontamination) then see the whole example;
    chat writers use the instruction/input/output columns.
    """
    return "\n\n".join(p.strip() for p in (instruction, input, output) if p and p.strip())


def _parent_id(row: dict[str, Any], n: int) -> str:
    return str(row[ID]) if row.get(ID) is not None else f"row{n}"


def _inherit(new: dict[str, Any], row: dict[str, Any], parent: str, name: str) -> dict[str, Any]:
    new.setdefault(SOURCE, row.get(SOURCE) or name)
    if row.get(LICENSE) is not None:
        new.setdefault(LICENSE, row.get(LICENSE))
    new.setdefault("gen.parent", parent)
    return new


# ---- generate.template -------------------------------------------------------------
class TemplateGenerate(Generator):
    """Rule-based generation: fill templates from value lists and row columns (no model).

    Each input row is expanded with every template: slots come from the row's columns or
    from ``values`` (a list of strings fills one slot; a list of mappings fills linked
    slots together, e.g. country with its capital). ``mode: product`` makes every
    combination (up to ``max_per_row`` per template), ``mode: sample`` makes ``n``
    seeded random ones. A string template fills ``text``; a mapping template fills the
    columns it names (and ``text`` = the whole example when it has an instruction but no
    text, see :func:`example_text`). Identical fills are made once. Rejected: ``missing_slot: 'x' is null`` (or not
    provided) per row and template.
    """

    name = "generate.template"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {
        "templates": ["Summarize in one sentence: {text}", {"instruction": "Translate into {lang}: {text}",
                                                             "output": ""}],
        "values": {"lang": ["French", "German"]}}

    class Params(Params):
        templates: list[Union[str, dict[str, str]]] = Field(
            ..., min_length=1, description="str.format templates with named slots; a mapping makes several columns.")
        values: dict[str, list[Union[str, int, float, dict[str, Any]]]] = Field(
            default_factory=dict, description="Value lists per slot; mapping items fill linked slots together.")
        mode: Literal["product", "sample"] = Field("product", description="All combinations, or n sampled.")
        n: int = Field(1, ge=1, description="sample mode: fills per row and template.")
        max_per_row: int = Field(1000, ge=1, description="Most fills per row and template (product mode).")
        seed: int = Field(0, description="Sampling seed (with the row id, so shards do not matter).")
        keep_columns: list[str] = Field(default_factory=list, description="Input columns copied to each new row.")

        @field_validator("templates")
        @classmethod
        def _slots_named(cls, v: list[Any]) -> list[Any]:
            for t in v:
                template_task.template_slots(t)
            return v

    def _columns(self, t: str | dict[str, str]) -> list[str]:
        if isinstance(t, str):
            return ["text"]
        cols = list(t)
        return cols + ["text"] if "instruction" in t and "text" not in t else cols

    def reads(self) -> list[str]:
        cols: dict[str, None] = {}
        for t in self.params.templates:
            needed, missing = template_task.slot_sources(template_task.template_slots(t), {}, self.params.values)
            cols.update(dict.fromkeys(missing))
        return [*cols, *self.params.keep_columns]

    def writes(self) -> list[str]:
        cols: dict[str, None] = {}
        for t in self.params.templates:
            cols.update(dict.fromkeys(self._columns(t)))
        return [*cols, "gen.parent", "gen.template"]

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        p = self.params
        rows, failures = [], []
        for n, row in enumerate(batch.to_pylist()):
            parent = _parent_id(row, n)
            for ti, t in enumerate(p.templates):
                rng = random.Random(f"{p.seed}:{parent}:{ti}")
                try:
                    fills = template_task.expand(t, row, p.values, mode=p.mode, n=p.n, rng=rng, limit=p.max_per_row)
                except ParseError as exc:
                    failures.append({**row, ID: f"{parent}-t{ti}", REASON: str(exc)})
                    continue
                for k, filled in enumerate(fills):
                    new = {"text": filled} if isinstance(filled, str) else dict(filled)
                    if "instruction" in new and "text" not in new:
                        new["text"] = example_text(new["instruction"], new.get("input"), new.get("output"))
                    new.update({c: row.get(c) for c in p.keep_columns})
                    new[ID] = f"{parent}-t{ti}-{k}"
                    new["gen.template"] = ti
                    rows.append(_inherit(new, row, parent, self.name))
        return rows, failures


# ---- generate.self_instruct ------------------------------------------------------
def _bootstrap_decoding() -> Decoding:
    return Decoding(temperature=0.7, top_p=0.5, max_tokens=1024, repetition_penalty=1.1)


class SelfInstruct(LLMGenerator):
    """Self-Instruct: new instructions from seed tasks, classified, then given instances.

    Faithful to the reference code (yizhongw/self-instruct); the details and every filter
    are in :mod:`gristmill.generate.tasks.self_instruct`. The input rows are the seed
    tasks (``instruction`` column; with ``classification_only``, only rows whose
    ``is_classification`` is true). One call of the operator -- one shard -- runs the
    whole iterative loop: rounds of ``request_batch_size`` bootstrap prompts (8
    in-context instructions: 2 from the growing machine pool when it has them, 6 seeds)
    until ``num_instructions`` instructions passed the filters and the ROUGE-L gate
    (F1 <= 0.7 against every seed and every kept instruction), or ``max_rounds`` ran.
    Seed files are small, so they are one shard; with several shards each grows its own
    pool (``num_instructions`` each, gate per shard: follow with a dedup step).

    Rows: one per instance: ``instruction``, ``input``, ``output``, ``text`` (the whole
    example, :func:`example_text`), ``is_classification``, ``self_instruct.max_rouge`` /
    ``.most_similar`` / ``.avg_rouge`` / ``.round`` / ``.task`` / ``.instance``. Rejected: ``min_words``, ``max_words``, ``blacklist``,
    ``write_a_program``, ``leading_punctuation``, ``non_ascii_start``, ``rouge_l: 0.83 >
    0.7``, ``truncated``, ``instance_invalid``, ``instance_conflict``,
    ``instance_duplicate``, ``no_instances``, ``backend``.
    """

    name = "generate.self_instruct"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {
        "instruction_column": "text", "num_instructions": 4, "request_batch_size": 2, "max_rounds": 3,
        "backend": {"type": "mock", "responses": {
            "Is it classification?": "No",
            "Come up with examples": "Example 1\nInput: a short note about rain\nOutput: Rain fell all day.",
            "Come up with a series of tasks": " Describe a rainy afternoon in a small town.\n10. List three uses "
                                              "for an old wooden chair.\n11. Draw a plot of the weather map.",
        }}}

    class Params(LLMParams):
        decoding: Decoding = Field(default_factory=_bootstrap_decoding,
                                   description="Bootstrap decoding (the reference: temperature 0.7, top_p 0.5, "
                                               "1024 tokens); classification and instances are greedy.")
        instruction_column: str = Field("instruction", description="Column holding the seed instructions.")
        num_instructions: int = Field(100, ge=1, description="New instructions to generate (per shard).")
        num_prompt_instructions: int = Field(8, ge=1, description="In-context instructions per bootstrap prompt.")
        num_machine_in_prompt: int = Field(2, ge=0, description="Of those, taken from the machine pool.")
        request_batch_size: int = Field(8, ge=1, description="Bootstrap prompts per round (one backend call).")
        max_rounds: int = Field(50, ge=1, description="Most bootstrap rounds, whatever the yield.")
        rouge_threshold: float = Field(0.7, gt=0, le=1, description="Keep an instruction iff max ROUGE-L F1 <= this.")
        classification_only: bool = Field(False, description="Seed with classification tasks only and ask for "
                                                             "classification tasks (--use_clf_seed_tasks_only).")
        generate_instances: bool = Field(True, description="Generate input/output instances for each instruction.")
        max_instances: int = Field(5, ge=1, description="Most instances kept per instruction.")
        include_seeds: bool = Field(False, description="Also output the seed tasks' own instances.")
        seed: int = Field(0, description="Seed of the in-context sampling and the instance sampling.")
        workers: int = Field(1, description="rapidfuzz threads for the ROUGE-L gate (-1: all cores).")

        @model_validator(mode="after")
        def _machine_fits(self) -> SelfInstruct.Params:
            if self.num_machine_in_prompt > self.num_prompt_instructions:
                raise ValueError("num_machine_in_prompt must not exceed num_prompt_instructions")
            return self

    def make_task(self) -> None:
        return None

    def reads(self) -> list[str]:
        return [self.params.instruction_column]

    def writes(self) -> list[str]:
        return ["instruction", "input", "output", "text", "is_classification", "self_instruct.max_rouge",
                "self_instruct.most_similar", "self_instruct.avg_rouge", "self_instruct.round",
                "self_instruct.task", "self_instruct.instance", *super().writes()]

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        p = self.params
        rows = batch.to_pylist()
        if p.classification_only:
            rows = [r for r in rows if r.get("is_classification")]
        seeds = [r.get(p.instruction_column) for r in rows]
        seeds = [s for s in seeds if isinstance(s, str) and s.strip()]
        if not seeds:
            return [], []
        config = self_instruct.SelfInstructConfig(
            num_instructions=p.num_instructions, num_prompt_instructions=p.num_prompt_instructions,
            num_machine_in_prompt=p.num_machine_in_prompt, request_batch_size=p.request_batch_size,
            max_rounds=p.max_rounds, rouge_threshold=p.rouge_threshold, classification_only=p.classification_only,
            generate_instances=p.generate_instances, max_instances=p.max_instances, seed=p.seed, workers=p.workers)
        out, rejects = self_instruct.run_self_instruct(seeds, self.complete, p.decoding, config)
        prefix = f"{_parent_id(rows[0], 0)}-si"
        source = rows[0].get(SOURCE) or self.name
        model = self.backend.model
        for r in out:
            r.update({ID: f"{prefix}{r['self_instruct.task']}-{r['self_instruct.instance']}",
                      "text": example_text(r["instruction"], r.get("input"), r.get("output")), SOURCE: source,
                      "gen.model": model, "gen.parent": None})
        for k, r in enumerate(rejects):
            r.update({ID: f"{prefix}-rejected{k}", SOURCE: source, "gen.model": model})
            r.setdefault(RAW, None)
        if p.include_seeds:
            out = self._seed_rows(rows, p.instruction_column) + out
        return out, rejects

    @staticmethod
    def _seed_rows(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
        out = []
        for n, row in enumerate(rows):
            instances = row.get("instances") or [{"input": row.get("input") or "", "output": row.get("output")}]
            for k, inst in enumerate(instances):
                out.append({ID: f"{_parent_id(row, n)}-seed{k}", "instruction": row[column],
                            "text": example_text(row[column], inst.get("input"), inst.get("output")),
                            "input": inst.get("input") or "", "output": inst.get("output"),
                            "is_classification": bool(row.get("is_classification")),
                            SOURCE: row.get(SOURCE), "gen.parent": _parent_id(row, n)})
        return out


# ---- generate.evol_instruct ------------------------------------------------------
def _evol_decoding() -> Decoding:
    return Decoding(temperature=0.7, top_p=0.95, max_tokens=256)


def _response_decoding() -> Decoding:
    return Decoding(temperature=0.0, max_tokens=512)


class EvolInstruct(LLMGenerator):
    """Evol-Instruct: evolve instructions in depth and in breadth, eliminating failed evolutions.

    Methods (WizardLM's prompts, :mod:`gristmill.generate.tasks.evol_instruct`):
    ``constraints``, ``deepen``, ``concretize``, ``reasoning``, ``complicate_input`` (in
    depth) and ``breadth``. Each input row's instruction is evolved ``rounds`` times with
    ``evolutions_per_row`` methods per round (seeded choice); the model then answers each
    evolved instruction (the ``output``). Rejected by the paper's elimination rules:
    ``no_information_gain`` (proxy: fewer than ``min_new_words`` new words or ROUGE-L >=
    ``max_rouge``; or the paper's LLM equality prompt with ``equality_check: llm``),
    ``sorry_response``, ``empty_response``, ``copied_prompt_words``; and ``backend``.
    """

    name = "generate.evol_instruct"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {
        "instruction_column": "text", "methods": ["constraints", "breadth"],
        "backend": {"type": "mock", "responses": {
            "Prompt Rewriter": "Describe the plain ASCII text in exactly three sentences, naming two of its words.",
            "Prompt Creator": "Write a riddle whose answer is a word from an old dictionary.",
            "": "Here is an answer with enough content words to pass every rule."}}}

    class Params(LLMParams):
        decoding: Decoding = Field(default_factory=_evol_decoding, description="Decoding of the evolution step.")
        response_decoding: Decoding = Field(default_factory=_response_decoding,
                                            description="Decoding of the answers to evolved instructions.")
        instruction_column: str = Field("instruction", description="Column holding the instructions to evolve.")
        methods: list[str] = Field(list(evol_instruct.METHODS), min_length=1,
                                   description="Evolution methods to choose from: " + ", ".join(evol_instruct.METHODS))
        evolutions_per_row: int = Field(1, ge=1, description="Methods applied to each instruction per round.")
        rounds: int = Field(1, ge=1, le=10, description="Evolution rounds (round r evolves round r-1's survivors).")
        equality_check: Literal["rouge", "llm", "none"] = Field(
            "rouge", description="No-information-gain rule: cheap proxy, the paper's LLM prompt, or off.")
        min_new_words: int = Field(3, ge=0, description="Proxy: fewest new content words an evolution adds.")
        max_rouge: float = Field(0.9, gt=0, le=1, description="Proxy: ROUGE-L F1 with the original at or above "
                                                              "which nothing was gained.")
        generate_response: bool = Field(True, description="Answer each evolved instruction (output column).")
        seed: int = Field(0, description="Seed of the method choice.")

        @field_validator("methods")
        @classmethod
        def _known(cls, v: list[str]) -> list[str]:
            unknown = [m for m in v if m not in evol_instruct.METHODS]
            if unknown:
                raise ValueError(f"unknown methods {unknown}; expected some of {', '.join(evol_instruct.METHODS)}")
            return v

    def make_task(self) -> None:
        return None

    def reads(self) -> list[str]:
        return [self.params.instruction_column]

    def writes(self) -> list[str]:
        return ["instruction", "input", "output", "text", "evol.method", "evol.round", "evol.original",
                "evol.lineage", *super().writes()]

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        p = self.params
        rows = batch.to_pylist()
        config = evol_instruct.EvolConfig(
            methods=tuple(p.methods), evolutions_per_row=p.evolutions_per_row, rounds=p.rounds,
            equality_check=p.equality_check, min_new_words=p.min_new_words, max_rouge=p.max_rouge,
            generate_response=p.generate_response, seed=p.seed)
        out, rejects = evol_instruct.run_evolution(rows, [r.get(p.instruction_column) for r in rows], self.complete,
                                                   p.decoding, p.response_decoding, config)
        for r in out + rejects:
            r["gen.model"] = self.backend.model
            r[SOURCE] = r.get(SOURCE) or self.name
        for r in rejects:
            r.setdefault(RAW, None)
        return out, rejects


# ---- generate.qa_from_documents ----------------------------------------------------
class _QATask:
    def __init__(self, p: QAFromDocuments.Params) -> None:
        self.p = p

    def format_prompt(self, row: dict[str, Any]) -> Prompt:
        return grounded_qa.format_prompt(row.get(self.p.text_column) or "")

    def parse(self, text: str, row: dict[str, Any]) -> TaskOutput | list[dict[str, Any]]:
        passage = row[self.p.text_column]
        try:
            qa = grounded_qa.parse(text, passage, min_span_match=self.p.min_span_match,
                                   min_answer_overlap=self.p.min_answer_overlap)
        except ParseError as exc:  # the task's own rule names ('unsupported', 'format') become the reason
            return TaskOutput(reason=str(exc))
        new = {"instruction": qa["question"], "input": passage if self.p.include_passage else "",
               "output": qa["answer"], **qa}
        new["text"] = example_text(new["instruction"], new["input"], new["output"])
        new.update({c: row.get(c) for c in self.p.keep_columns})
        return [new]


class QAFromDocuments(LLMGenerator):
    """Grounded question/answer pairs from passages, each with the span of the passage that supports it.

    One question per input row (``text_column``). The model returns the question, the
    answer and the supporting sentence; the span must be found in the passage (rapidfuzz
    partial_ratio >= ``min_span_match``) and must contain the answer's content words
    (share >= ``min_answer_overlap``). Rows: ``instruction`` (the question), ``input``
    (the passage, unless ``include_passage`` is off), ``output`` (the answer),
    ``question``, ``answer``, ``qa.evidence`` (the passage's own text at the match) with
    ``qa.evidence_start`` / ``qa.evidence_end``, ``qa.span_match``, ``qa.answer_overlap``.
    Rejected: ``unsupported: answer not in passage (span match 62 < 90)``, ``unsupported:
    answer not in span (overlap 0.33 < 0.6)``, ``format: no evidence in the completion``,
    ``prompt: empty passage``, ``backend: ...``.
    """

    name = "generate.qa_from_documents"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"backend": {"type": "mock", "responses": [
        "Question: How many words are in it?\nAnswer: a few words\nEvidence: plain ASCII text with a few words in it"]}}

    class Params(LLMParams):
        decoding: Decoding = Field(default_factory=lambda: Decoding(max_tokens=200),
                                   description="Decoding settings (greedy, 200 tokens by default).")
        text_column: str = Field("text", description="Column holding the passages.")
        min_span_match: float = Field(90.0, ge=0, le=100,
                                      description="Least rapidfuzz partial_ratio of the quoted span in the passage.")
        min_answer_overlap: float = Field(0.6, ge=0, le=1,
                                          description="Least share of the answer's content words found in the span.")
        include_passage: bool = Field(True, description="Put the passage in the input column (reading "
                                                        "comprehension); off: closed-book QA.")
        keep_columns: list[str] = Field(default_factory=list, description="Input columns copied to each new row.")

    def make_task(self) -> _QATask:
        return _QATask(self.params)

    def reads(self) -> list[str]:
        return [self.params.text_column, *self.params.keep_columns]

    def writes(self) -> list[str]:
        return ["instruction", "input", "output", "text", "question", "answer", "qa.evidence", "qa.evidence_start",
                "qa.evidence_end", "qa.span_match", "qa.answer_overlap", *super().writes()]


# ---- generate.random_walk --------------------------------------------------------
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

    def setup(self) -> None:
        path = self.resolve_path(self.params.graph)
        if not path.is_file():
            raise FileNotFoundError(f"{self.name}: graph file not found: {path}")
        self.graph = random_walk.Graph.from_triples(random_walk.load_triples(path))
        self._starts = sorted(h for h, edges in self.graph.edges.items() if edges)
        self.task = None
        self.backend = self.make_backend() if self.params.rephrase else None

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
                    failures.append({**row, ID: wid, REASON: f"dead_end: no {hops}-hop walk from {start!r}"})
                    continue
                try:
                    random_walk.check_answer(self.graph, walk.start, walk.relations, walk.end)
                except ParseError as exc:
                    failures.append({**row, ID: wid, "walk.path": json.dumps(walk.triples), REASON: str(exc)})
                    continue
                if p.dedupe and walk.triples in seen:
                    failures.append({**row, ID: wid, "walk.path": json.dumps(walk.triples),
                                     REASON: f"duplicate_walk: {walk.start!r} over {len(walk.triples)} hops"})
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
                failures.append({**r, **gen, RAW: None, REASON: f"backend: {c.error}"})
                continue
            try:
                q = random_walk.parse_rephrase(c.text, walk)
            except ParseError as exc:
                failures.append({**r, **gen, RAW: c.text, REASON: str(exc)})
                continue
            kept.append({**r, **gen, "instruction": q, "text": example_text(q, "", r["output"]), "question": q})
        return kept, failures


# ---- generate.paraphrase ---------------------------------------------------------
class _ParaphraseTask:
    def __init__(self, p: Paraphrase.Params) -> None:
        self.p = p

    def format_prompt(self, row: dict[str, Any]) -> Prompt:
        return paraphrase.format_prompt(row.get(self.p.text_column) or "", self.p.style)

    def parse(self, text: str, row: dict[str, Any]) -> TaskOutput | list[dict[str, Any]]:
        original = row[self.p.text_column]
        try:
            rewrite = paraphrase.parse(text, original)
        except ParseError as exc:
            return TaskOutput(reason=str(exc))
        new = {k: v for k, v in row.items() if k not in (ID, "gen.parent") and not k.startswith("_")}
        new.update({self.p.text_column: rewrite, "paraphrase.original": original})
        return [new]


def _load_embedder() -> Any:
    """A callable ``texts -> unit vectors (n, 384)`` with all-MiniLM-L6-v2.

    Uses :mod:`gristmill.models.embed` when it offers ``encode(texts)`` or a loader of an
    object with ``.encode``; otherwise loads the packaged model directory itself
    (mean pooling + L2 normalisation, as sentence-transformers does for this model).
    """
    try:
        from gristmill.models import embed  # type: ignore[attr-defined]
    except ImportError:
        embed = None
    if embed is not None:
        if callable(getattr(embed, "encode", None)):
            return embed.encode
        for loader in ("load_embedder", "load_minilm", "load"):
            fn = getattr(embed, loader, None)
            if callable(fn):
                model = fn()
                if callable(getattr(model, "encode", None)):
                    return model.encode
    import torch
    from transformers import AutoModel, AutoTokenizer

    from gristmill.models.locate import minilm_dir, offline

    offline()
    path = str(minilm_dir())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def encode(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = tok(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=256,
                          return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)

    return encode


class Paraphrase(LLMGenerator):
    """Paraphrase rows for augmentation, rejecting copies and rewrites that drift in meaning.

    Each row's ``text_column`` is rewritten in ``style`` (plain, simple, formal, casual);
    the new row is the input row with the rewrite in that column and the original in
    ``paraphrase.original``. The rewrite and its original are embedded with
    all-MiniLM-L6-v2 and a cosine below ``min_cos`` is rejected (``drift: cos 0.61 <
    0.8``; ``min_cos: null`` skips the check and the model load); ``max_cos`` rejects
    near-copies; an identical rewrite is ``copy: identical to input``. With
    ``keep_original`` the input rows are output too.
    """

    name = "generate.paraphrase"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {
        "min_cos": None, "backend": {"type": "mock", "responses": ["Rewritten: A fresh wording of the same idea."]}}

    class Params(LLMParams):
        decoding: Decoding = Field(default_factory=lambda: Decoding(temperature=0.7, top_p=0.9, max_tokens=256),
                                   description="Decoding settings.")
        text_column: str = Field("text", description="Column to rewrite.")
        style: Literal["plain", "simple", "formal", "casual"] = Field("plain", description="Rewrite style.")
        min_cos: float | None = Field(0.8, ge=-1, le=1, description="Least MiniLM cosine to the original "
                                                                    "(null: no semantic check).")
        max_cos: float | None = Field(None, ge=-1, le=1, description="Most cosine (rejects near-copies); null: off.")
        keep_original: bool = Field(False, description="Also output the input rows unchanged.")

    _embed: Any = None

    def make_task(self) -> _ParaphraseTask:
        return _ParaphraseTask(self.params)

    def setup(self) -> None:
        super().setup()
        needs = self.params.min_cos is not None or self.params.max_cos is not None
        self._embed = _load_embedder() if needs else None

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {**super()._drop_on_pickle(), "_embed": None}

    def reads(self) -> list[str]:
        return [self.params.text_column]

    def writes(self) -> list[str]:
        return [self.params.text_column, "paraphrase.original", "paraphrase.cos", *super().writes()]

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows, failures = super().generate(batch)
        p = self.params
        for r in rows:
            r["paraphrase.cos"] = None
        if self._embed is not None and rows:
            vecs = np.asarray(self._embed([r["paraphrase.original"] for r in rows] + [r[p.text_column] for r in rows]),
                              dtype=np.float64)
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            cos = np.sum(vecs[: len(rows)] * vecs[len(rows):], axis=1)
            kept = []
            for r, c in zip(rows, cos.tolist()):
                r["paraphrase.cos"] = round(float(c), 4)
                reason = paraphrase.similarity_reason(c, p.min_cos if p.min_cos is not None else -1.0, p.max_cos)
                if reason:
                    failures.append({**r, REASON: reason})
                else:
                    kept.append(r)
            rows = kept
        if p.keep_original:
            rows = batch.to_pylist() + rows
        return rows, failures


# ---- judge.score -----------------------------------------------------------------
class _JudgeTask:
    def __init__(self, p: JudgeScore.Params) -> None:
        self.p = p

    def format_prompt(self, row: dict[str, Any]) -> Prompt:
        return judge.format_prompt(row, rubric=self.p.rubric or judge.DEFAULT_RUBRIC,
                                   instruction_column=self.p.instruction_column, input_column=self.p.input_column,
                                   response_column=self.p.response_column)

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        return judge.parse(text)


class JudgeScore(LLMAnnotator):
    """LLM-as-judge: score each (instruction, input, response) 1-10 with a rubric, keep the best if asked.

    Writes ``judge.score`` (1-10) and ``judge.rationale``, plus ``judge.error`` / ``judge.raw``
    for answers that could not be parsed (score null). With ``min_score`` set, rows
    scoring below it are dropped (``judge_score: 4 < 7``, AlpaGasus-style); rows without a
    score are kept unless ``drop_unscored``. With ``drop: false`` it only annotates.
    """

    name = "judge.score"
    kind = "filter"
    version = "1"
    columns = ("judge.score", "judge.rationale")
    namespace = "judge"
    example_params: ClassVar[dict[str, Any]] = {
        "response_column": "text", "instruction_column": "id", "min_score": 5,
        "backend": {"type": "mock", "responses": ["Score: 7\nRationale: clear enough.", "Rating: 3/10 (vague)",
                                                  "no idea"]}}

    class Params(LLMParams):
        decoding: Decoding = Field(default_factory=lambda: Decoding(max_tokens=96),
                                   description="Decoding settings (greedy, 96 tokens).")
        rubric: str | None = Field(None, description="Rubric text (default: a 1-10 helpfulness/accuracy rubric).")
        instruction_column: str = Field("instruction", description="Column with the instruction.")
        input_column: str = Field("input", description="Column with the optional input.")
        response_column: str = Field("output", description="Column with the response to judge.")
        min_score: float | None = Field(None, ge=1, le=10, description="Drop rows scoring below this (null: keep all).")
        drop: bool = Field(True, description="With min_score, drop low rows; false only writes the scores.")
        drop_unscored: bool = Field(False, description="With min_score, also drop rows the judge did not score.")

    def make_task(self) -> _JudgeTask:
        return _JudgeTask(self.params)

    def reads(self) -> list[str]:
        return [self.params.instruction_column, self.params.response_column]

    def score_columns(self) -> list[str]:
        return ["judge.score"]

    def rules(self) -> list[Rule]:
        return [Rule("judge_score", "judge.score", min=self.params.min_score)] if self.params.min_score else []

    def process(self, batch: pa.Table) -> StepResult:
        if batch.num_rows == 0:
            for col in self.writes():
                if col not in batch.column_names:
                    batch = set_column(batch, col, pa.array([], pa.float64() if col == "judge.score" else pa.string()))
            return StepResult(batch)
        result = super().process(batch)
        p = self.params
        if p.min_score is None or not p.drop:
            return result
        scored = result.kept
        scores = scored.column("judge.score").to_pylist()
        errors = scored.column("judge.error").to_pylist()
        rule = self.rules()[0]
        reasons = []
        for s, e in zip(scores, errors):
            if s is None:
                reasons.append(f"judge_unscored: {e}" if p.drop_unscored else None)
            else:
                reasons.append(rule.check(s))
        return split_by_mask(scored, [r is None for r in reasons], reasons)
