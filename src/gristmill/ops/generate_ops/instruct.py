"""``generate.self_instruct`` and ``generate.evol_instruct``: instruction data grown from seeds."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from gristmill.generate.operator import RAW, LLMGenerator, LLMParams
from gristmill.generate.tasks import evol_instruct, self_instruct
from gristmill.generate.types import Decoding
from gristmill.records import ID, LICENSE, SOURCE
from gristmill.ops.generate_ops.common import _parent_id, example_text


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
        licenses = {row.get(LICENSE) for row in rows} - {None}
        license_ = licenses.pop() if len(licenses) == 1 else None  # the seeds' license, when they share one
        model = self.backend.model
        for r in out:
            r.update({ID: f"{prefix}{r['self_instruct.task']}-{r['self_instruct.instance']}",
                      "text": example_text(r["instruction"], r.get("input"), r.get("output")), SOURCE: source,
                      LICENSE: license_, "gen.model": model, "gen.parent": None})
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
                            SOURCE: row.get(SOURCE), LICENSE: row.get(LICENSE), "gen.parent": _parent_id(row, n)})
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
