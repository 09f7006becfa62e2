"""``judge.score``: LLM-as-judge scores (1-10 with a rubric), optionally dropping low rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from gristmill.llm.tasks import judge
from gristmill.llm.types import Decoding, Prompt
from gristmill.ops.base import Filter
from gristmill.ops.generate.base import LLMColumns, LLMParams
from gristmill.ops.text.scoring import Rule
from gristmill.records import Reason, column_list


class _JudgeTask:
    def __init__(self, p: JudgeScore.Params) -> None:
        self.p = p

    def format_prompt(self, row: dict[str, Any]) -> Prompt:
        return judge.format_prompt(row, rubric=self.p.rubric or judge.DEFAULT_RUBRIC,
                                   instruction_column=self.p.instruction_column, input_column=self.p.input_column,
                                   response_column=self.p.response_column)

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        return judge.parse(text)


class JudgeScore(LLMColumns, Filter):
    """LLM-as-judge: score each (instruction, input, response) 1-10 with a rubric, keep the best if asked.

    Writes ``judge.score`` (1-10) and ``judge.rationale``, plus ``judge.error`` / ``judge.raw``
    for answers that could not be parsed (score null). With ``min_score`` set, rows
    scoring below it are dropped (``judge_score: 4 < 7``, AlpaGasus-style); rows without a
    score are kept unless ``drop_unscored``. With ``drop: false`` it only annotates.
    """

    name = "judge.score"
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

    def scores(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        return self.llm_columns(batch)

    def empty_columns(self) -> dict[str, pa.DataType]:
        return {c: pa.float64() if c == "judge.score" else pa.string() for c in self.writes()}

    def reasons(self, batch: pa.Table) -> list[Reason | None]:
        """Below ``min_score``: the rule's reason; no score: ``judge_unscored: <error>`` if ``drop_unscored``."""
        p = self.params
        if p.min_score is None:
            return [None] * batch.num_rows
        rule = self.rules()[0]
        return [(Reason("judge_unscored", e or "") if p.drop_unscored else None) if s is None else rule.check(s)
                for s, e in zip(column_list(batch, "judge.score"), column_list(batch, "judge.error"))]
