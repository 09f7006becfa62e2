"""``generate.paraphrase`` and ``judge.score``: rewrites with a drift check, and LLM-as-judge scores."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from gristmill.generate.operator import LLMAnnotator, LLMGenerator, LLMParams
from gristmill.generate.tasks import judge, paraphrase
from gristmill.generate.types import Decoding, ParseError, Prompt, TaskOutput
from gristmill.ops.base import StepResult, split_by_mask
from gristmill.ops.scoring import Rule
from gristmill.records import ID, REASON, set_column


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
    """A callable ``texts -> unit vectors (n, 384)``: all-MiniLM-L6-v2 from the packaged model."""
    from gristmill.models.embed import load_sentence_encoder

    return load_sentence_encoder().encode


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
