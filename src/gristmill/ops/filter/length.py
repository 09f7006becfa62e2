"""``filter.length``: keep rows whose text length lies within character and word bounds."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.ops.base import Filter, FilterParams
from gristmill.records import Reason, column_list

__all__ = ["LengthFilter"]


class LengthFilter(Filter):
    """Drop rows whose text is too short or too long, in characters or in words.

    Characters are Unicode code points; words are the pieces of a split on whitespace
    (``str.split()``). A bound left at ``None`` is not checked. The first failed check,
    in the order min_chars, max_chars, min_words, max_words, gives the reason:

    * ``min_chars: 3 < 20`` / ``max_chars: 120000 > 100000``
    * ``min_words: 12 < 50`` / ``max_words: 2100 > 2000``
    * ``missing_text: null`` when the column is null.

    ``drop: false`` keeps every row (the filter writes no columns).
    """

    name = "filter.length"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"min_chars": 2, "max_chars": 10_000, "min_words": 1,
                                                "max_words": 1_000}

    class Params(FilterParams):
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

    def reasons(self, batch: pa.Table) -> list[Reason | None]:
        p = self.params
        count_words = p.min_words is not None or p.max_words is not None
        out: list[Reason | None] = []
        for text in column_list(batch, p.column):
            why = None
            if text is None:
                why = Reason("missing_text", "null")
            elif p.min_chars is not None and len(text) < p.min_chars:
                why = Reason("min_chars", f"{len(text)} < {p.min_chars}")
            elif p.max_chars is not None and len(text) > p.max_chars:
                why = Reason("max_chars", f"{len(text)} > {p.max_chars}")
            elif count_words:
                n_words = len(text.split())
                if p.min_words is not None and n_words < p.min_words:
                    why = Reason("min_words", f"{n_words} < {p.min_words}")
                elif p.max_words is not None and n_words > p.max_words:
                    why = Reason("max_words", f"{n_words} > {p.max_words}")
            out.append(why)
        return out
