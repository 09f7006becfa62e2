"""``quality.fineweb``: FineWeb's line heuristics, as datatrove's ``FineWebQualityFilter`` has them.

Everything is vectorised: Arrow string kernels score all lines of a batch at once, and
numpy counts words over the UTF-8 bytes a megabyte at a time (so the arrays stay in
cache), so no Python code runs per line or per word.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.ops.base import Filter, FilterParams
from gristmill.ops.text.scoring import Rule
from gristmill.records import Reason

__all__ = ["FineWebQuality", "TERMINAL_PUNCTUATION", "count_words", "string_array", "text_slices"]

NS = "quality.fineweb."

# datatrove.utils.text.TERMINAL_PUNCTUATION (0.10.1): sentence-ending marks of many scripts.
TERMINAL_PUNCTUATION = frozenset(
    "!.?\u0589\u061d\u061e\u061f\u06d4\u0700\u0701\u0702\u07f9\u0837\u0839\u083d\u083e\u0964\u0965"
    "\u104a\u104b\u1362\u1367\u1368\u166e\u1735\u1736\u17d4\u17d5\u17d6\u17d9\u17da\u1803\u1809\u1944\u1945"
    "\u1aa8\u1aa9\u1aaa\u1aab\u1b5a\u1b5b\u1b5e\u1b5f\u1b7d\u1b7e\u1c3b\u1c3c\u1c7e\u1c7f\u203c\u203d"
    "\u2047\u2048\u2049\u2e2e\u2e3c\u2e53\u2e54\u3002\ua4ff\ua60e\ua60f\ua6f3\ua6f7\ua876\ua877\ua8ce"
    "\ua8cf\ua92f\ua9c8\ua9c9\uaa5d\uaa5e\uaa5f\uaaf0\uaaf1\uabeb\ufe52\ufe56\ufe57\uff01\uff0e\uff1f"
    "\uff61\U00010a56\U00010a57\U00010f55\U00010f56\U00010f57\U00010f58\U00010f59\U00010f86\U00010f87"
    "\U00010f88\U00010f89\U00011047\U00011048\U000110be\U000110bf\U000110c0\U000110c1\U00011141"
    "\U00011142\U00011143\U000111c5\U000111c6\U000111cd\U000111de\U000111df\U00011238\U00011239"
    "\U0001123b\U0001123c\U000112a9\U0001144b\U0001144c\U000115c2\U000115c3\U000115c9\U000115ca"
    "\U000115cb\U000115cc\U000115cd\U000115ce\U000115cf\U000115d0\U000115d1\U000115d2\U000115d3"
    "\U000115d4\U000115d5\U000115d6\U000115d7\U00011641\U00011642\U0001173c\U0001173d\U0001173e"
    "\U00011944\U00011946\U00011a42\U00011a43\U00011a9b\U00011a9c\U00011c41\U00011c42\U00011ef7"
    "\U00011ef8\U00011f43\U00011f44\U00016a6e\U00016a6f\U00016af5\U00016b37\U00016b38\U00016b44"
    "\U00016e98\U0001bc9f\U0001da88"
)

# Python's str.isspace() characters, as an RE2 character-class body.
WHITESPACE_CLASS = (r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
                    r"\x{202f}\x{205f}\x{3000}")
# Arrow's regex kernels compile their pattern (and build its automaton) on every call, so
# they get large slices; numpy byte passes get small ones.
SLICE_BYTES = 64 << 20
WORD_SLICE_BYTES = 1 << 20


class FineWebQuality(Filter):
    """FineWeb quality rules: line punctuation, short lines, duplicated lines, newlines per word.

    The rules of the FineWeb dataset (Penedo et al. 2024) with the definitions and
    defaults of datatrove's ``FineWebQualityFilter`` (0.10.1). *Lines* are the pieces of
    the text split on ``"\\n"`` that are not blank (``line.strip() != ""``), taken as they
    are (not stripped: run ``clean.normalize`` first on CRLF text, or no line ends with a
    full stop). Scores, one column each (``quality.fineweb.*``), computed for every row:

    * ``lines``: non-blank lines. Drops ``empty: 0 < 1`` (datatrove: "empty").
    * ``line_punct_ratio``: share of lines ending with one of ``stop_chars`` (default:
      datatrove's terminal punctuation of all scripts). Drops ``line_punct_ratio: 0.05 < 0.12``.
    * ``short_line_ratio``: share of lines of at most ``short_line_length`` (30)
      characters; at most 0.67.
    * ``char_dup_ratio``: characters of lines that repeat an earlier line of the document
      (every repeat counts), over the characters of the text without newlines; at most 0.01.
    * ``newline_ratio``: newlines over words; at most 0.3 (datatrove: "list_ratio").

    Words approximate the spaCy English tokens that datatrove counts (punctuation marks
    are words): runs of letters and digits, each punctuation mark (a run of ``.`` or
    ``-`` is one), with ``.`` and ``,`` inside a number or abbreviation (``3.5``, ``e.g``)
    joined and ``'``/``’`` inside a word splitting it in two (``do n't``). On the
    Gutenberg sample the median difference from spaCy's count is 0.4%.

    Rules are checked in datatrove's order; the first failure is the reason. The ratios
    of a text without lines are null; a null text counts as empty.
    """

    name = "quality.fineweb"
    version = "1"
    idempotent: ClassVar[bool] = True

    class Params(FilterParams):
        column: str = Field("text", description="String column to score.")
        line_punct_thr: float | None = Field(0.12, ge=0, le=1, description="Smallest share of lines ending with "
                                             "a stop character (None: no bound).")
        line_punct_exclude_zero: bool = Field(False, description="Let texts with no line ending in a stop "
                                              "character pass the line_punct_ratio rule.")
        stop_chars: list[str] | None = Field(None, description="Line endings that count as punctuation "
                                             "(None: datatrove's TERMINAL_PUNCTUATION).")
        short_line_thr: float | None = Field(0.67, ge=0, le=1, description="Largest share of short lines "
                                             "(None: no bound).")
        short_line_length: int = Field(30, ge=0, description="A line of at most this many characters is short.")
        char_duplicates_ratio: float | None = Field(0.01, ge=0, description="Largest share of characters in "
                                                    "repeated lines (None: no bound).")
        new_line_ratio: float | None = Field(0.3, ge=0, description="Most newlines per word (None: no bound).")

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [NS + c for c in ("lines", "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "newline_ratio")]

    def rules(self) -> list[Rule]:
        p = self.params
        punct = (ZeroPassesRule if p.line_punct_exclude_zero else Rule)(
            "line_punct_ratio", NS + "line_punct_ratio", min=p.line_punct_thr)
        rules = [
            Rule("empty", NS + "lines", min=1),
            punct,
            Rule("short_line_ratio", NS + "short_line_ratio", max=p.short_line_thr),
            Rule("char_dup_ratio", NS + "char_dup_ratio", max=p.char_duplicates_ratio),
            Rule("newline_ratio", NS + "newline_ratio", max=p.new_line_ratio),
        ]
        return [r for r in rules if r.min is not None or r.max is not None]

    def scores(self, batch: pa.Table) -> dict[str, pa.Array]:
        texts = string_array(batch, self.params.column)
        ending = _ending_regex(self.params.stop_chars)
        parts = [_score_slice(s, ending, self.params.short_line_length) for s in text_slices(texts)]
        lines, punct, short, dup, chars, newlines, words = (np.concatenate(c) for c in zip(*parts))
        has = lines > 0
        cols = self.writes()
        return {
            cols[0]: pa.array(lines, pa.int64()),
            cols[1]: _ratio(punct, lines, has),
            cols[2]: _ratio(short, lines, has),
            cols[3]: _ratio(dup, np.maximum(chars - newlines, 1), has),
            cols[4]: _ratio(newlines, np.maximum(words, 1), has),
        }


class ZeroPassesRule(Rule):
    """A rule whose score passes when it is exactly 0 (datatrove's ``line_punct_exclude_zero``)."""

    def check(self, value: Any) -> Reason | None:
        return None if value == 0 else super().check(value)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "zero_passes": True}


def string_array(batch: pa.Table, column: str) -> pa.Array:
    """The column as one string array with nulls as empty strings."""
    col = batch.column(column)
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_large_string(col.type):
        col = col.cast(pa.string())
    return pc.fill_null(col, "")


def text_slices(texts: pa.Array, max_bytes: int = SLICE_BYTES) -> Iterator[pa.Array]:
    """Consecutive slices of a string array holding about ``max_bytes`` of text each (at least one row)."""
    n = len(texts)
    if n == 0:
        yield texts
        return
    offsets = np.frombuffer(texts.buffers()[1], np.int32)[texts.offset:texts.offset + n + 1]
    start = 0
    while start < n:
        stop = int(np.searchsorted(offsets, offsets[start] + max_bytes, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        yield texts.slice(start, stop - start)
        start = stop


def _ending_regex(stop_chars: list[str] | None) -> str:
    if stop_chars is None:
        return "[" + "".join(_class_char(c) for c in sorted(TERMINAL_PUNCTUATION)) + "]$"
    if not stop_chars:
        return "[^\\x{0}-\\x{10ffff}]"  # matches nothing
    return "(?:" + "|".join(_re2_literal(s) for s in stop_chars) + ")$"


def _class_char(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c


def _re2_literal(s: str) -> str:
    return "".join("\\" + c if c.isascii() and not c.isalnum() else c for c in s)


def _score_slice(texts: pa.Array, ending: str, short_length: int) -> tuple[np.ndarray, ...]:
    """Per-text counts: lines, punctuated lines, short lines, repeated-line characters,
    characters, newlines, words."""
    n = len(texts)
    split = pc.split_pattern(texts, "\n")
    flat = pc.list_flatten(split)
    parent = pc.list_parent_indices(split).to_numpy()
    nonblank = pc.match_substring_regex(flat, f"[^{WHITESPACE_CLASS}]")
    lines = flat.filter(nonblank)
    parent = parent[nonblank.to_numpy(zero_copy_only=False)]
    length = pc.utf8_length(lines).to_numpy()
    n_lines = np.bincount(parent, minlength=n)
    punct = np.bincount(parent, weights=pc.match_substring_regex(lines, ending).to_numpy(zero_copy_only=False),
                        minlength=n)
    short = np.bincount(parent, weights=length <= short_length, minlength=n)
    dup = np.bincount(parent, weights=length * _repeats(lines, parent), minlength=n)
    counts = [count_words(s) for s in text_slices(texts, WORD_SLICE_BYTES)]
    chars, newlines, words = (np.concatenate(c) for c in zip(*counts))
    return n_lines, punct, short, dup, chars, newlines, words


def _repeats(lines: pa.Array, parent: np.ndarray) -> np.ndarray:
    """True for each line equal to an earlier line of the same text."""
    if len(lines) == 0:
        return np.zeros(0, bool)
    codes = lines.dictionary_encode().indices.to_numpy().astype(np.int64)
    key = parent.astype(np.int64) * (int(codes.max()) + 1) + codes
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    repeat = np.zeros(len(key), bool)
    repeat[order[1:]] = ordered[1:] == ordered[:-1]
    return repeat


def _ratio(num: np.ndarray, den: np.ndarray, valid: np.ndarray) -> pa.Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.asarray(num, np.float64) / np.asarray(den, np.float64)
    return pa.array(values, pa.float64(), mask=~valid)


# ---- word counts over UTF-8 bytes ----------------------------------------------------
_SPACE, _ALNUM, _PUNCT, _CONT = 0, 1, 2, 3


def _byte_classes() -> np.ndarray:
    """Class of a character by its first byte: ASCII exactly, other characters as letters."""
    table = np.full(256, _ALNUM, np.uint8)
    for b in range(128):
        c = chr(b)
        if c.isspace():
            table[b] = _SPACE
        elif not c.isalnum():
            table[b] = _PUNCT
    table[0x80:0xC0] = _CONT
    return table


def _general_punctuation() -> np.ndarray:
    """Class of U+2000..U+207F (spaces, dashes, quotes, bullets, ellipsis)."""
    table = np.full(128, _ALNUM, np.uint8)
    for cp in range(0x2000, 0x2080):
        if chr(cp).isspace():
            table[cp - 0x2000] = _SPACE
        elif 0x2010 <= cp <= 0x2027 or 0x2030 <= cp <= 0x205E:
            table[cp - 0x2000] = _PUNCT
    return table


_BYTE_CLASS = _byte_classes()
_U2000 = _general_punctuation()


def count_words(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Characters, newlines and words (approximate spaCy English tokens) of each string.

    Words are runs of letters/digits plus punctuation marks; see :class:`FineWebQuality`.
    Besides ASCII, U+00A0..U+00BF, U+2000..U+207F and U+3000..U+303F are classified
    (spaces or punctuation); every other non-ASCII character counts as a letter.
    """
    n = len(texts)
    if n == 0:
        return (np.zeros(0, np.int64),) * 3
    offsets = np.frombuffer(texts.buffers()[1], np.int32)[texts.offset:texts.offset + n + 1].astype(np.int64)
    data = texts.buffers()[2]
    b = (np.frombuffer(data, np.uint8)[offsets[0]:offsets[-1]] if data is not None else np.zeros(0, np.uint8))
    starts = offsets[:-1] - offsets[0]
    size = b.size
    if size == 0:
        return (np.zeros(n, np.int64),) * 3
    doc_start = np.zeros(size + 4, bool)
    doc_start[starts] = True
    doc_start[size:] = True
    nxt = np.zeros(size + 3, np.uint8)
    nxt[:size - 1] = b[1:]
    cls = _BYTE_CLASS[b]
    # U+00A0..U+00BF: no-break space, then Latin-1 punctuation and symbols.
    latin = (b == 0xC2) & (nxt[:size] >= 0xA0)
    cls[latin] = np.where(nxt[:size][latin] == 0xA0, _SPACE, _PUNCT)
    # U+2000..U+207F and U+3000..U+303F (three-byte characters).
    lead = np.flatnonzero(((b == 0xE2) & ((nxt[:size] == 0x80) | (nxt[:size] == 0x81)))
                          | ((b == 0xE3) & (nxt[:size] == 0x80)))
    if lead.size:
        third = nxt[lead + 1]
        general = b[lead] == 0xE2
        cp = ((nxt[lead].astype(np.int32) & 1) << 6) | (third & 0x3F)
        cls[lead] = np.where(general, _U2000[cp], np.where(third == 0x80, _SPACE, _PUNCT))
    is_start = cls != _CONT
    for _ in range(3):  # continuation bytes take the class of their character
        cont = np.flatnonzero(cls == _CONT)
        if cont.size == 0:
            break
        cls[cont] = cls[cont - 1]
    prev = np.empty_like(cls)
    prev[0] = _SPACE
    prev[1:] = cls[:-1]
    prev[doc_start[:size]] = _SPACE
    after = np.empty_like(cls)
    after[:-1] = cls[1:]
    after[-1] = _SPACE
    after[doc_start[1:size + 1]] = _SPACE
    alnum = cls == _ALNUM
    words = (alnum & (prev != _ALNUM) & is_start).astype(np.int8)
    words += (cls == _PUNCT) & is_start
    between = (prev == _ALNUM) & (after == _ALNUM)
    dot = b == 0x2E
    words -= 2 * ((dot | (b == 0x2C)) & between)  # 3.5, 1,000, e.g
    words -= (b == 0x27) & between  # don't -> do n't
    quote = np.flatnonzero((b == 0xE2) & (nxt[:size] == 0x80) & (nxt[1:size + 1] == 0x99))  # ’
    quote = quote[(prev[quote] == _ALNUM) & ~doc_start[quote + 3]]
    quote = quote[quote + 3 < size]
    words[quote[cls[quote + 3] == _ALNUM]] -= 1
    same = np.zeros(size, bool)
    same[1:] = b[1:] == b[:-1]
    words -= (dot | (b == 0x2D)) & same & ~doc_start[:size]  # ... and -- are one word
    filled = offsets[1:] > offsets[:-1]
    totals = np.zeros(n, np.int64)
    totals[filled] = np.add.reduceat(words, starts[filled], dtype=np.int64)  # starts of non-empty texts increase
    chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    newlines = pc.count_substring(texts, "\n").to_numpy(zero_copy_only=False).astype(np.int64)
    return chars, newlines, totals
