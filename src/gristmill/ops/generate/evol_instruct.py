"""``generate.evol_instruct``: instructions evolved in depth and in breadth (Evol-Instruct)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from gristmill.llm.tasks import evol_instruct
from gristmill.llm.types import Decoding
from gristmill.ops.generate.base import RAW, LLMGenerator, LLMParams
from gristmill.records import SOURCE


def _evol_decoding() -> Decoding:
    return Decoding(temperature=0.7, top_p=0.95, max_tokens=256)


def _response_decoding() -> Decoding:
    return Decoding(temperature=0.0, max_tokens=512)


class EvolInstruct(LLMGenerator):
    """Evol-Instruct: evolve instructions in depth and in breadth, eliminating failed evolutions.

    Methods (WizardLM's prompts, :mod:`gristmill.llm.tasks.evol_instruct`):
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
