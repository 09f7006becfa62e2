"""``filter.length``: keep rows whose text length lies within character and word bounds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.ops.base import Filter, Params
from gristmill.records import column_list

__all__ = ["LengthFilter"]


class LengthFilter(Filter):
    """Drop rows whose text is too short or too long, in characters or in words.

    Characters are Unicode code points; words are the pieces of a split on whitespace
    (``str.split()``). A bound left at ``None`` is not checked. The first failed check,
    in the order min_chars, max_chars, min_words, max_words, gives the reason:

    * ``min_chars: 3 < 20`` / ``max_chars: 120000 > 100000``
    * ``min_words: 12 < 50`` / ``max_words: 2100 > 2000``
    * ``missing_text: null`` when the column is null.
    """

    name = "filter.length"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"min_chars": 2, "max_chars": 10_000, "min_words": 1,
                                                "max_words": 1_000}

    class Params(Params):
        column: str = Field("text", description="String column whose length is checked.")
        min_chars: int | None = Field(None, ge=0, description="Fewest characters a kept row has (None: no bound).")
        max_chars: int | None = Field(None, ge=0, description="Most characters a kept row has (None: no bound).")
        min_words: int | None = Field(None, ge=0, description="Fewest whitespace-separated words (None: no bound).")
        max_words: int | None = Field(None, ge=0, description="Most whitespace-separated words (None: no bound).")

        @model_validator(mode="after")
        def _bounds_ordered(self) -> LengthFilter.Params:
            for unit in ("chars", "words"):
                lo, hi = getattr(self, f"min_{unit}"), getattr(self, f"max_{unit}")
                if lo is not None and hi is not None and lo > hi:
                    raise ValueError(f"min_{unit} ({lo}) must not exceed max_{unit} ({hi})")
            return self

    def reads(self) -> list[str]:
        return [self.params.column]

    def keep(self, batch: pa.Table) -> tuple[Sequence[bool], Sequence[str | None]]:
        p = self.params
        if p.column not in batch.column_names:
            raise KeyError(f"{self.name}: column {p.column!r} not in batch (has {', '.join(batch.column_names)})")
        texts = column_list(batch, p.column)
        count_words = p.min_words is not None or p.max_words is not None
        mask: list[bool] = []
        reasons: list[str | None] = []
        for text in texts:
            reason = None
            n_chars = 0 if text is None else len(text)
            if text is None:
                reason = "missing_text: null"
            elif p.min_chars is not None and n_chars < p.min_chars:
                reason = f"min_chars: {n_chars} < {p.min_chars}"
            elif p.max_chars is not None and n_chars > p.max_chars:
                reason = f"max_chars: {n_chars} > {p.max_chars}"
            elif count_words:
                n_words = len(text.split())
                if p.min_words is not None and n_words < p.min_words:
                    reason = f"min_words: {n_words} < {p.min_words}"
                elif p.max_words is not None and n_words > p.max_words:
                    reason = f"max_words: {n_words} > {p.max_words}"
            mask.append(reason is None)
            reasons.append(reason)
        return mask, reasons
