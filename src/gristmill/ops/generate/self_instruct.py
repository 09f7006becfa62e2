"""``generate.self_instruct``: instruction data grown from seed tasks (Self-Instruct)."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.llm.tasks import self_instruct
from gristmill.llm.types import Decoding
from gristmill.ops.generate.base import RAW, LLMGenerator, LLMParams
from gristmill.ops.generate.common import _parent_id, example_text
from gristmill.records import ID, LICENSE, SOURCE


def _bootstrap_decoding() -> Decoding:
    return Decoding(temperature=0.7, top_p=0.5, max_tokens=1024, repetition_penalty=1.1)


class SelfInstruct(LLMGenerator):
    """Self-Instruct: new instructions from seed tasks, classified, then given instances.

    Faithful to the reference code (yizhongw/self-instruct); the details and every filter
    are in :mod:`gristmill.llm.tasks.self_instruct`. The input rows are the seed
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
