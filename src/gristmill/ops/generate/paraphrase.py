"""``generate.paraphrase``: rewrites for augmentation, with a drift check."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from gristmill.llm.tasks import paraphrase
from gristmill.llm.types import Decoding, ParseError, Prompt, TaskOutput
from gristmill.ops.base import Context
from gristmill.ops.generate.base import LLMGenerator, LLMParams
from gristmill.records import ID, REASON


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

    def required_modules(self) -> list[str]:
        """The backend's modules, and torch + transformers for the MiniLM cosine checks when on."""
        checks = self.params.min_cos is not None or self.params.max_cos is not None
        return super().required_modules() + (["torch", "transformers"] if checks else [])

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
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
