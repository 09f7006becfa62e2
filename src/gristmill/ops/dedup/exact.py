"""``dedup.exact``: drop rows whose normalised text equals an earlier row's."""

from __future__ import annotations

import sys
import unicodedata
from functools import cache
from typing import Any

import pyarrow as pa
import xxhash
from pydantic import Field

from gristmill.ops.base import GlobalOp, Params, StepResult, split_by_mask
from gristmill.records import ID, Reason, column_list, set_column

__all__ = ["ExactDedup", "CLUSTER", "DUPLICATE_OF"]

CLUSTER = "dedup.cluster"
DUPLICATE_OF = "_duplicate_of"


@cache
def _punctuation_table() -> dict[int, None]:
    """str.translate table deleting every Unicode punctuation character (categories P*)."""
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp))[0] == "P"}


class ExactDedup(GlobalOp):
    """Drop rows whose normalised text repeats an earlier row's; the first occurrence stays.

    The key of a row is the xxh3-128 hash of its text after optional case folding
    (``lowercase``, with ``str.casefold``), whitespace collapsing and punctuation removal.
    "Earlier" means earlier in input order: shards in order, rows in order. Every row gets
    ``dedup.cluster``, the id of the row kept for its text (itself when kept). Dropped rows
    carry ``_duplicate_of`` (that id) and the reason ``duplicate: of <kept id>``. Rows with
    null text are never duplicates.
    """

    name = "dedup.exact"
    version = "1"

    class Params(Params):
        column: str = Field("text", description="String column compared between rows.")
        lowercase: bool = Field(True, description="Compare case-folded text.")
        collapse_whitespace: bool = Field(True, description="Treat any run of whitespace as one space; ignore leading/trailing whitespace.")
        strip_punctuation: bool = Field(False, description="Ignore Unicode punctuation characters.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # Fit state: hash -> id of its first row, only for hashes that occur more than once.
        self.kept_for: dict[str, Any] | None = None

    def reads(self) -> list[str]:
        return [ID, self.params.column]

    def writes(self) -> list[str]:
        return [CLUSTER]

    def key(self, text: str) -> str:
        """The hex xxh3-128 hash identifying ``text`` under this operator's normalisation."""
        p = self.params
        if p.lowercase:
            text = text.casefold()
        if p.strip_punctuation:
            text = text.translate(_punctuation_table())
        if p.collapse_whitespace:
            text = " ".join(text.split())
        return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))

    def _keys(self, batch: pa.Table) -> list[str | None]:
        return [None if t is None else self.key(t) for t in column_list(batch, self.params.column)]

    def summarize(self, batch: pa.Table) -> list[tuple[str, Any]]:
        """``(hash, id)`` for every row with text, in row order."""
        return [(h, rid) for h, rid in zip(self._keys(batch), column_list(batch, ID)) if h is not None]

    def fit(self, summaries: list[Any]) -> None:
        first: dict[str, Any] = {}
        kept_for: dict[str, Any] = {}
        for summary in summaries:
            for h, rid in summary or ():
                kept = first.setdefault(h, rid)
                if kept != rid:
                    kept_for[h] = kept
        self.kept_for = kept_for

    def apply(self, batch: pa.Table) -> StepResult:
        if self.kept_for is None:
            raise RuntimeError(f"{self.name}: fit() must run before apply()")
        keys = self._keys(batch)
        ids = column_list(batch, ID)
        cluster: list[Any] = []
        mask: list[bool] = []
        reasons: list[Reason | None] = []
        duplicate_of: list[Any] = []
        for rid, h in zip(ids, keys):
            kept = self.kept_for.get(h, rid) if h is not None else rid
            cluster.append(kept)
            is_first = kept == rid
            mask.append(is_first)
            reasons.append(None if is_first else Reason("duplicate", f"of {kept}"))
            duplicate_of.append(None if is_first else kept)
        batch = set_column(batch, CLUSTER, pa.array(cluster, batch.schema.field(ID).type))
        return split_by_mask(batch, mask, reasons, extra={DUPLICATE_OF: duplicate_of})
