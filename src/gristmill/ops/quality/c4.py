"""``quality.c4``: the C4 cleaning rules (Raffel et al. 2020), as datatrove's ``C4QualityFilter`` has them.

All lines of a batch are scored at once with Arrow string kernels (RE2), and only the
lines that survive the cheap checks reach the costlier ones (lower-casing, sentence
counting, the bad-word search), so no Python code runs per line.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.ops.base import Context, Filter, FilterParams
from gristmill.ops.quality.fineweb import WHITESPACE_CLASS, string_array, text_slices
from gristmill.ops.text.bad_words import bad_words
from gristmill.ops.text.scoring import Rule

__all__ = ["C4Quality", "POLICY_SUBSTRINGS", "count_sentences"]

NS = "quality.c4."
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                     "use cookies")

_PY_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + \
    "\u2028\u2029\u202f\u205f\u3000"
# str.splitlines() boundaries.
_LINE_BREAK = r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"
_RARE_LINE_BREAK = r"\r[^\n]|[\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"
_CITATION = r"\[\pN*\]|\[edit\]|\[citation needed\]"
_END = "[.?!\"']$"


class C4Quality(Filter):
    """C4 rules: terminal punctuation, words per line, sentences, javascript, policies, lorem ipsum, braces, bad words.

    C4 works line by line (``str.splitlines``, each line stripped). As in datatrove's
    ``C4QualityFilter`` (0.10.1) and the TensorFlow Datasets C4 code, a line is *removed*
    when it has a word over ``max_word_length`` characters, does not end in ``. ? ! " '``
    (or ends in ``...``), has fewer than ``min_words_per_line`` words, mentions
    "javascript", or contains a cookie/terms phrase (:data:`POLICY_SUBSTRINGS`), checked in
    that order after wiki citations (``[1]``, ``[edit]``, ``[citation needed]``) are cut out.
    A whole document is *dropped* when one of its surviving lines says "lorem ipsum" or
    (not being a javascript line) holds a ``{``, when the surviving lines have fewer than
    ``min_num_sentences`` sentences, or, as C4's separate bad-words step, when a surviving
    line contains a word or phrase of the bad-word list (default: the LDNOOBW English list
    C4 used, shipped in ``gristmill/data/ldnoobw_en.txt``, CC BY 4.0), matched
    case-insensitively as whole words.

    Scores (``quality.c4.*``), computed for every row:

    * ``lorem_ipsum``: surviving lines with "lorem ipsum"; drops ``lorem_ipsum: 1 > 0``.
    * ``curly_bracket``: surviving lines with ``{``; drops ``curly_bracket: 2 > 0``.
    * ``sentences``: sentences in the surviving lines; drops ``too_few_sentences: 3 < 5``.
    * ``bad_words``: bad-word matches in the surviving lines; drops ``bad_words: 1 > 0``.
    * ``kept_line_frac``: surviving lines over non-blank lines (null without any);
      checked only when ``min_kept_line_frac`` is set.

    Removing lines: datatrove rewrites the text to the surviving lines (joined with
    ``"\\n"``, citations cut). Here that is ``filter_lines: true``; by default the text is
    left as it is and the line rules act through the scores only, so the operator stays a
    pure filter (the keep/drop decisions are the same either way). Rejected rows always
    keep their original text.

    Sentences are counted as spaCy's English tokenizer plus sentencizer (datatrove's
    ``split_into_sentences``) count them, reproduced with regular expressions: a new
    sentence starts at the first word after a token ``.`` ``!`` ``?`` (and other
    sentence-final marks), where a ``.`` is a token of its own after a lower-case letter,
    a digit, two capitals or a closing quote or bracket, but not in spaCy's abbreviations
    (``Mr.``, ``e.g.``, ``St.``, single letters, ...). On the Gutenberg sample this gives
    spaCy's count for 99.99% of lines.
    """

    name = "quality.c4"
    _rewritten: pa.Array | None = None  # the rewritten text of the batch being processed
    version = "1"
    idempotent: ClassVar[bool] = True

    class Params(FilterParams):
        column: str = Field("text", description="String column to score.")
        remove_citations: bool = Field(True, description="Cut wiki citations ([1], [edit], [citation needed]) "
                                       "out of lines before the checks.")
        filter_no_terminal_punct: bool = Field(True, description="Remove lines that do not end in . ? ! \" ' "
                                               "or that end in '...'.")
        min_num_sentences: int | None = Field(5, ge=0, description="Fewest sentences in the surviving lines "
                                              "(None: no bound; datatrove: -1).")
        min_words_per_line: int | None = Field(3, ge=0, le=1000, description="Remove lines with fewer "
                                               "whitespace-separated words (None: keep all).")
        max_word_length: int | None = Field(1000, ge=1, description="Remove lines with a longer word, in "
                                            "characters (None: no bound).")
        filter_lorem_ipsum: bool = Field(True, description="Drop documents with 'lorem ipsum' in a surviving line.")
        filter_javascript: bool = Field(True, description="Remove lines mentioning 'javascript'.")
        filter_curly_bracket: bool = Field(True, description="Drop documents with '{' in a surviving line.")
        filter_policy: bool = Field(True, description="Remove lines with a cookie or terms-of-use phrase.")
        filter_bad_words: bool = Field(True, description="Drop documents whose surviving lines contain a "
                                       "word of the bad-word list.")
        bad_words_path: str | None = Field(None, description="Bad-word list, one word or phrase per line, '#' "
                                           "comments (None: the shipped LDNOOBW English list).")
        min_kept_line_frac: float | None = Field(None, ge=0, le=1, description="Smallest share of non-blank "
                                                 "lines that survive the line rules (None: no bound).")
        filter_lines: bool = Field(False, description="Rewrite kept texts to their surviving lines, as "
                                   "datatrove and C4 do.")

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        cols = [NS + c for c in ("lorem_ipsum", "curly_bracket", "sentences", "bad_words", "kept_line_frac")]
        return cols + [self.params.column] if self.params.filter_lines else cols

    def score_columns(self) -> list[str]:
        return [c for c in self.writes() if c.startswith(NS)]

    def rules(self) -> list[Rule]:
        p = self.params
        rules = []
        if p.filter_lorem_ipsum:
            rules.append(Rule("lorem_ipsum", NS + "lorem_ipsum", max=0))
        if p.filter_curly_bracket:
            rules.append(Rule("curly_bracket", NS + "curly_bracket", max=0))
        if p.min_num_sentences is not None:
            rules.append(Rule("too_few_sentences", NS + "sentences", min=p.min_num_sentences))
        if p.filter_bad_words:
            rules.append(Rule("bad_words", NS + "bad_words", max=0))
        if p.min_kept_line_frac is not None:
            rules.append(Rule("kept_line_frac", NS + "kept_line_frac", min=p.min_kept_line_frac))
        return rules

    def setup(self, ctx: Context) -> None:
        self._bad_words_regex()

    def _bad_words_regex(self) -> str | None:
        if not self.params.filter_bad_words:
            return None
        path = self.params.bad_words_path
        return bad_words_regex(str(self.resolve_path(path)) if path else None)

    def input_files(self) -> list[Path]:
        return [self.resolve_path(self.params.bad_words_path)] if self.params.bad_words_path else []

    def scores(self, batch: pa.Table) -> dict[str, pa.Array]:
        texts = string_array(batch, self.params.column)
        bad = self._bad_words_regex()
        parts = [_score_slice(s, self.params, bad) for s in text_slices(texts)]
        lorem, curly, sentences, n_bad, kept, nonblank = (np.concatenate([p[k] for p in parts]) for k in range(6))
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = kept / nonblank
        cols = self.score_columns()
        out = {
            cols[0]: pa.array(lorem, pa.int64()),
            cols[1]: pa.array(curly, pa.int64()),
            cols[2]: pa.array(sentences, pa.int64()),
            cols[3]: pa.array(n_bad, pa.int64()),
            cols[4]: pa.array(frac, pa.float64(), mask=nonblank == 0),
        }
        if self.params.filter_lines:
            self._rewritten = pa.concat_arrays([p[6] for p in parts]) if parts else pa.array([], pa.string())
        return out

    def kept_values(self, batch: pa.Table) -> dict[str, pa.Array]:
        """With ``filter_lines``, the kept rows' text without the lines the line rules removed."""
        if not self.params.filter_lines or self._rewritten is None:
            return {}
        rewritten, self._rewritten = self._rewritten, None
        return {self.params.column: rewritten}


def _score_slice(texts: pa.Array, p: C4Quality.Params, bad: str | None) -> tuple[Any, ...]:
    """Per text: lorem-ipsum lines, brace lines, sentences, bad words, surviving lines,
    non-blank lines, and the surviving lines joined (when ``p.filter_lines``)."""
    n = len(texts)
    rare = pc.match_substring_regex(texts, _RARE_LINE_BREAK)
    if pc.any(rare).as_py():  # split those texts' other line breaks too
        texts = pc.replace_with_mask(texts, rare, pc.replace_substring_regex(texts.filter(rare), _LINE_BREAK, "\n"))
    split = pc.split_pattern(texts, "\n")  # a "\r" left by "\r\n" is stripped below
    parent = pc.list_parent_indices(split).to_numpy()
    lines = pc.utf8_trim(pc.list_flatten(split), _PY_WHITESPACE)
    nonblank = pc.greater(pc.binary_length(lines), 0)
    lines, parent = lines.filter(nonblank), parent[_np(nonblank)]
    n_nonblank = np.bincount(parent, minlength=n)

    ok = np.ones(len(lines), bool)
    if p.max_word_length is not None:
        ok &= ~_has_long_word(lines, p.max_word_length)
    words_source = lines
    if p.remove_citations:
        bracket = pc.match_substring(lines, "[")
        if pc.any(bracket).as_py():
            cut = pc.replace_substring_regex(lines.filter(bracket), _CITATION, "")
            lines = pc.replace_with_mask(lines, bracket, cut)
    if p.filter_no_terminal_punct:
        ok &= _np(pc.match_substring_regex(lines, _END)) & ~_np(pc.ends_with(lines, "..."))
    if p.min_words_per_line and p.min_words_per_line > 1:
        k = p.min_words_per_line - 1
        ok &= _np(pc.match_substring_regex(words_source, f"(?:[^{WHITESPACE_CLASS}]+[{WHITESPACE_CLASS}]+){{{k}}}"
                                                         f"[^{WHITESPACE_CLASS}]"))
    lines, parent = lines.filter(pa.array(ok)), parent[ok]

    lower = pc.utf8_lower(lines)
    none = np.zeros(len(lines), bool)
    lorem = _np(pc.match_substring(lower, "lorem ipsum")) if p.filter_lorem_ipsum else none
    js = _np(pc.match_substring(lower, "javascript")) if p.filter_javascript else none
    curly = _np(pc.match_substring(lines, "{")) & ~lorem & ~js if p.filter_curly_bracket else none
    policy = _np(pc.match_substring_regex(lower, "|".join(POLICY_SUBSTRINGS))) if p.filter_policy else none
    n_lorem = np.bincount(parent, weights=lorem, minlength=n)
    n_curly = np.bincount(parent, weights=curly, minlength=n)
    survive = ~(lorem | js | curly | policy)
    keep = pa.array(survive)
    lines, lower, parent = lines.filter(keep), lower.filter(keep), parent[survive]

    n_kept = np.bincount(parent, minlength=n)
    sentences = np.bincount(parent, weights=count_sentences(lines), minlength=n)
    n_bad = (np.bincount(parent, weights=_np(pc.count_substring_regex(lower, bad)), minlength=n)
             if bad is not None else np.zeros(n))
    rewritten = None
    if p.filter_lines:
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(n_kept, out=offsets[1:])
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), lines), "\n")
        rewritten = pc.utf8_trim(joined, _PY_WHITESPACE)
    return n_lorem, n_curly, sentences, n_bad, n_kept, n_nonblank, rewritten


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def _has_long_word(lines: pa.Array, limit: int) -> np.ndarray:
    """Lines with a whitespace-separated word longer than ``limit`` characters (checked only
    on lines that long)."""
    out = np.zeros(len(lines), bool)
    for i in np.flatnonzero(_np(pc.greater(pc.utf8_length(lines), limit))):
        out[i] = any(len(w) > limit for w in lines[int(i)].as_py().split())
    return out


# ---- sentences -------------------------------------------------------------------------
# spaCy 3.8 English tokenizer exceptions that end in "." (one token, so not a sentence end).
_ABBREVIATIONS = (
    r"Adm|Ak|Ala|Apr|Ariz|Ark|Aug|Bros|Calif|Co|Colo|Conn|Corp|D\.C|Dec|Del|Dr|E\.G|E\.g|Feb|Fla|Ga|Gen|Gov|"
    r"I\.E|I\.e|Ia|Id|Ill|Inc|Ind|Jan|Jr|Jul|Jun|Kan|Kans|Ky|La|Ltd|Mar|Mass|Md|Messrs|Mich|Minn|Miss|Mo|"
    r"Mont|Mr|Mrs|Ms|Mt|N\.C|N\.D|N\.H|N\.J|N\.M|N\.Y|Neb|Nebr|Nev|Nov|Oct|Okla|Ore|Pa|Ph\.D|Prof|Rep|"
    r"Rev|S\.C|Sen|Sep|Sept|St|Tenn|Va|Wash|Wis|a\.m|co|e\.g|i\.e|p\.m|v\.s|vs|1[012][ap]\.m|[1-9][ap]\.m|"
    r"°[CFKcfk]|[a-z]|[äöü]"
)
_QUOTES = "'\"”“`‘´’‚„»«"
_ABBR_MARK, _END_MARK = "\ue001", "\ue000"  # private-use stand-ins for "." that is / is not a sentence end
_WS = f"[{WHITESPACE_CLASS}]"
# "Mr." (after whitespace or a hyphen, and leading punctuation) keeps its ".".
_ABBR_RE = rf"(^|[{WHITESPACE_CLASS}\-–—])([^{WHITESPACE_CLASS}\pL\pN]*)({_ABBREVIATIONS})\."
# "end.Next": spaCy splits a "." between a lower-case letter (or quote) and a capital (or quote).
_INFIX_RE = rf"([\p{{Ll}}{_QUOTES}])\.([\p{{Lu}}{_QUOTES}])"
# A "." that spaCy splits off a word: after a lower-case letter, digit, quote, bracket, two
# capitals, or standing alone; not part of "..".
_DOT_RE = rf"([\p{{Ll}}\pN%²+\-{_QUOTES})\]}}_*]|\p{{Lu}}\p{{Lu}}|^|{_WS})\.([^.\pL\pN]|$)"
_SENT_END = "!?。？！।۔؟" + _END_MARK
_PUNCT_TOKEN = rf"[\pP{_END_MARK}{_ABBR_MARK}]"
# A sentence end, then any punctuation tokens, then the first character of a word; or a
# sentence end followed by the suffix "'s" ("Henry VIII.'s" is "VIII . 's" in spaCy).
_BOUNDARY_RE = (rf"[{_SENT_END}][^{WHITESPACE_CLASS}\pL\pN\-]*(?:{_WS}+{_PUNCT_TOKEN}+)*{_WS}+{_PUNCT_TOKEN}*"
                rf"[^{WHITESPACE_CLASS}\pP{_END_MARK}{_ABBR_MARK}]|[{_SENT_END}]['’][sS](?:[^\pL\pN]|$)")
# Lines that may hold more than one sentence (the rest count 1 without the costlier passes).
_MAYBE_SEVERAL = (rf"[{_SENT_END[:-1]}.][^{WHITESPACE_CLASS}\pL\pN]*{_WS}|[\p{{Ll}}{_QUOTES}]\.[\p{{Lu}}{_QUOTES}]"
                  rf"|[{_SENT_END[:-1]}.]['’][sS]")


def count_sentences(lines: pa.Array) -> np.ndarray:
    """Sentences in each line, as spaCy's English sentencizer counts them (1 for a line
    without an inner sentence end; 0 for an empty line)."""
    counts = (_np(pc.binary_length(lines)) > 0).astype(np.int64)
    several = np.flatnonzero(_np(pc.match_substring_regex(lines, _MAYBE_SEVERAL)))
    if several.size:
        sub = lines.take(pa.array(several))
        sub = pc.replace_substring_regex(sub, _ABBR_RE, r"\1\2\3" + _ABBR_MARK)
        sub = pc.replace_substring_regex(sub, _INFIX_RE, r"\1" + _END_MARK + r" \2")
        sub = pc.replace_substring_regex(sub, _DOT_RE, r"\1" + _END_MARK + r"\2")
        counts[several] += _np(pc.count_substring_regex(sub, _BOUNDARY_RE))
    return counts




@cache
def bad_words_regex(path: str | None = None) -> str | None:
    """An RE2 pattern matching any listed word or phrase flanked by non-word characters
    (C4's ``(?:\\W|^)(words)(?:\\W|$)`` on lower-cased text); ``None`` for an empty list."""
    words = bad_words(path)
    if not words:
        return None
    alternatives = "|".join("".join("\\" + c if c.isascii() and not c.isalnum() and c != " " else c for c in w)
                            for w in sorted(words, key=len, reverse=True))
    return rf"(?:^|[^\pL\pN_])(?:{alternatives})(?:[^\pL\pN_]|$)"
