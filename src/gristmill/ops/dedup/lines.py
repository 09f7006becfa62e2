"""``dedup.lines``: remove lines that repeat across many documents (boilerplate)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field

from gristmill.ops.base import GlobalOp, Params, StepResult, split_by_mask
from gristmill.records import ID, Reason, column_list, set_column

__all__ = ["LineDedup", "REMOVED_LINES", "REMOVED_CHARS", "line_keys", "frequent_hashes"]

REMOVED_LINES = "dedup.lines.removed_lines"
REMOVED_CHARS = "dedup.lines.removed_chars"

_PUNCT = re.compile(r"[^\w\s]+")
_DIGIT = re.compile(r"\d")
# The same for ASCII characters, as a str.translate table (much faster than the regexes):
# punctuation, symbols and controls deleted, digits made 0.
_ASCII = {c: None for c in range(128) if not (chr(c).isalnum() or chr(c) == "_" or chr(c).isspace())}
_ASCII.update({ord(d): "0" for d in "123456789"})
# Rows of (hash, count) merged at once in fit(): bounds its memory (16 bytes a row).
_MERGE_ROWS = 1 << 23


def line_keys(text: str) -> list[str]:
    """The normalised form of each line of ``text`` (split on ``\\n``), much as CCNet's
    ``normalize_for_dedup`` has it: lower case, punctuation, symbols and control characters
    removed, every digit turned into 0, runs of whitespace collapsed, ends stripped. A line
    of only punctuation (``* * * * *``) normalises to ``""``, a blank line."""
    norm = text.lower().translate(_ASCII)
    if not norm.isascii():
        norm = _DIGIT.sub("0", _PUNCT.sub("", norm))
    return [" ".join(line.split()) for line in norm.split("\n")]


def frequent_hashes(tables: list[np.ndarray], min_docs: int, rows_per_pass: int = _MERGE_ROWS) -> np.ndarray:
    """The sorted hashes whose counts, summed over ``tables``, reach ``min_docs``.

    Each table is an ``(n, 2)`` uint64 array of (hash, count) sorted by hash (possibly
    memory-mapped). The merge walks the hash space in ranges holding about
    ``rows_per_pass`` rows in all, so memory stays bounded however many shards there are.
    """
    total = sum(len(t) for t in tables)
    parts = max(1, -(-total // rows_per_pass))
    bounds = [i * (1 << 64) // parts for i in range(parts)] + [1 << 64]
    keep: list[np.ndarray] = []
    for lo, hi in zip(bounds, bounds[1:]):
        pieces = []
        for t in tables:
            h = t[:, 0]
            a = int(np.searchsorted(h, np.uint64(lo), "left"))
            b = len(h) if hi == 1 << 64 else int(np.searchsorted(h, np.uint64(hi), "left"))
            if b > a:
                pieces.append(np.asarray(t[a:b]))
        if not pieces:
            continue
        merged = np.concatenate(pieces)
        merged = merged[np.argsort(merged[:, 0], kind="stable")]
        starts = np.flatnonzero(np.r_[True, merged[1:, 0] != merged[:-1, 0]])
        sums = np.add.reduceat(merged[:, 1], starts)
        keep.append(merged[starts, 0][sums >= min_docs])
    return np.concatenate(keep) if keep else np.zeros(0, np.uint64)


def _hash(key: str) -> int:
    return xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass"))


class LineDedup(GlobalOp):
    """Remove lines that appear in at least ``min_docs`` documents (headers, footers, licences).

    Lines are compared after normalisation (lower case, no punctuation, digits as 0,
    spaces collapsed; see :func:`line_keys`); blank lines are never counted. A line's
    frequency is the number of *documents* containing it, not its occurrences, so a
    refrain repeated within one document does not count twice.

    A frequent line is removed when its normalised form has at least ``min_chars``
    characters. Short frequent lines (``chapter i``, ``the end``, a play's speaker names)
    are not boilerplate on their own and stay, except where they continue a removed line
    in the same paragraph (no blank line between): hard-wrapped boilerplate ends in short
    fragments such as ``works.`` or ``damage.`` that would otherwise be left behind.
    Every occurrence of a removed line goes, the first included: boilerplate has no
    original worth keeping. Run ``dedup.exact`` / ``dedup.minhash`` first if whole
    documents may repeat ``min_docs`` times or more, or their every line will go.

    Blank lines left next to a removed line collapse into one and the text's ends are
    stripped. Every row gets ``dedup.lines.removed_lines`` and ``dedup.lines.removed_chars``
    (characters by which the text got shorter). A row with nothing but blank lines left
    is dropped: ``empty_after_line_dedup: 57 lines removed``. Null text is left alone.

    State stays bounded: each shard's summary is its sorted (line hash, document count)
    pairs (64-bit xxh3), written to the step's scratch directory in a run; ``fit`` merges
    them range by range of hash values and keeps only the frequent hashes.
    """

    name = "dedup.lines"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"min_docs": 2, "min_chars": 10}

    class Params(Params):
        column: str = Field("text", description="String column whose lines are deduplicated.")
        min_docs: int = Field(5, ge=2, description="A line found in at least this many documents is removed.")
        min_chars: int = Field(20, ge=0, description="Shortest normalised line removed on its own; shorter frequent "
                                                     "lines go only when they continue a removed line.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.frequent_hashes: np.ndarray | None = None  # fit state: sorted uint64
        self._frequent: set[int] | None = None

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [self.params.column, REMOVED_LINES, REMOVED_CHARS]

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_frequent": None}

    def _texts(self, batch: pa.Table) -> list[str | None]:
        return column_list(batch, self.params.column)

    # ---- summarize / fit -------------------------------------------------------------
    def summarize(self, batch: pa.Table) -> dict[str, Any]:
        """Sorted (hash, number of documents) of the shard's non-blank lines; in a run,
        written to ``scratch`` as an ``(n, 2)`` uint64 ``.npy`` whose path is returned."""
        hashes: list[int] = []
        for text in self._texts(batch):
            if text:
                hashes.extend({_hash(k) for k in line_keys(text) if k})
        uniq, counts = np.unique(np.fromiter(hashes, np.uint64, len(hashes)), return_counts=True)
        table = np.stack([uniq, counts.astype(np.uint64)], axis=1) if len(uniq) else np.zeros((0, 2), np.uint64)
        if self.scratch is None:
            return {"table": table}
        ids = "\n".join(map(str, column_list(batch, ID)))
        path = self.scratch / f"lines-{xxhash.xxh3_64_hexdigest(ids.encode('utf-8', 'surrogatepass'))}.npy"
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, table)
        os.replace(tmp, path)
        return {"path": str(path), "rows": len(table)}

    @staticmethod
    def _tables(summaries: list[Any]) -> Iterator[np.ndarray]:
        for s in summaries:
            if s is None:
                continue
            yield s["table"] if "table" in s else np.load(s["path"], mmap_mode="r")

    def fit(self, summaries: list[Any]) -> None:
        """Keep the hashes whose document counts, summed over shards, reach ``min_docs``."""
        self.frequent_hashes = frequent_hashes(list(self._tables(summaries)), self.params.min_docs)
        self._frequent = None

    # ---- apply -----------------------------------------------------------------------
    def _frequent_set(self) -> set[int]:
        if self.frequent_hashes is None:
            raise RuntimeError(f"{self.name}: fit() must run before apply()")
        if self._frequent is None:
            self._frequent = set(self.frequent_hashes.tolist())
        return self._frequent

    def removed(self, text: str) -> list[bool]:
        """Which lines of ``text`` (split on ``\\n``) this fitted operator removes."""
        frequent, min_chars = self._frequent_set(), self.params.min_chars
        keys = line_keys(text)
        hit = [bool(k) and _hash(k) in frequent for k in keys]
        out = [h and len(k) >= min_chars for h, k in zip(hit, keys)]
        n = len(keys)
        # short frequent lines next to a removed line of the same paragraph go with it
        for i in range(1, n):
            if hit[i] and not out[i] and out[i - 1]:
                out[i] = True
        for i in range(n - 2, -1, -1):
            if hit[i] and not out[i] and out[i + 1]:
                out[i] = True
        return out

    def dedup(self, text: str) -> tuple[str, int]:
        """``text`` without its frequent lines, and how many lines were removed."""
        lines = text.split("\n")
        gone = self.removed(text)
        n_removed = sum(gone)
        if not n_removed:
            return text, 0
        kept: list[str] = []
        gap = False  # a line was removed since the last kept line
        for line, rm in zip(lines, gone):
            if rm:
                gap = True
                continue
            blank = not line.strip()
            if blank and gap and (not kept or not kept[-1].strip()):
                continue
            kept.append(line)
            if not blank:
                gap = False
        while kept and not kept[-1].strip():
            kept.pop()
        while kept and not kept[0].strip():
            kept.pop(0)
        return "\n".join(kept), n_removed

    def apply(self, batch: pa.Table) -> StepResult:
        texts = self._texts(batch)
        self._frequent_set()
        new_texts: list[str | None] = []
        lines_out: list[int] = []
        chars_out: list[int] = []
        reasons: list[Reason | None] = []
        for text in texts:
            if text is None:
                new, n = None, 0
            else:
                new, n = self.dedup(text)
            new_texts.append(new)
            lines_out.append(n)
            chars_out.append(0 if text is None else len(text) - len(new))
            empty = n > 0 and not new.strip()
            reasons.append(Reason("empty_after_line_dedup", f"{n} lines removed") if empty else None)
        col = batch.column(self.params.column)
        typ = col.type if not pa.types.is_null(col.type) else pa.string()
        batch = set_column(batch, self.params.column, pa.array(new_texts, typ))
        batch = set_column(batch, REMOVED_LINES, pa.array(lines_out, pa.int64()))
        batch = set_column(batch, REMOVED_CHARS, pa.array(chars_out, pa.int64()))
        return split_by_mask(batch, [r is None for r in reasons], reasons)
