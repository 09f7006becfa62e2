"""``copyright.overlap``: verbatim overlap between records and a protected reference corpus."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from gristmill.audit.columns import OUTPUT, audit_output, floats, output_and_rejected, strings, worst_rows
from gristmill.audit.markdown import num
from gristmill.audit.metric import AuditMetric, AuditSection, CardText, Measure, recorded_param
from gristmill.pipeline.run_reader import RunReader
from gristmill.ops.base import Context, Filter, FilterParams
from gristmill.ops.text.ngrams import positional_ngrams, tokenize
from gristmill.ops.text.scoring import Rule
from gristmill.ops.text.text_sources import TextSource, iter_texts
from gristmill.records import Reason

__all__ = ["CopyrightOverlap", "Reference", "LONGEST_SPAN", "OVERLAP_RATIO", "SOURCE_DOC", "Matches"]

LONGEST_SPAN = "copyright.longest_span"
OVERLAP_RATIO = "copyright.overlap_ratio"
SOURCE_DOC = "copyright.source"
# Reference texts are tokenized this many characters at a time, so a large corpus never sits in memory as text.
_READ_CHARS = 8 << 20


class Reference(TextSource):
    """A protected reference corpus; documents are named by ``id_field`` or the reader's id."""


@dataclass
class _Index:
    """Distinct reference n-gram hashes, sorted, with the first document (in reference order) holding each.

    A sorted ``uint64`` array is a hash set at 12 bytes per n-gram (a Python set of ints
    takes ~70): a membership bitmap on the top bits (small enough for the CPU cache) turns
    most misses away before a binary search.
    """

    keys: np.ndarray  # uint64, sorted, distinct
    docs: np.ndarray  # int32 index into labels
    labels: list[str]
    words: int  # reference words indexed
    bits: int = 16
    filter: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.bits = max(16, min(28, int(len(self.keys) * 16).bit_length()))
        self.filter = np.zeros(1 << self.bits, np.bool_)
        self.filter[self.keys >> np.uint64(64 - self.bits)] = True

    def lookup(self, grams: np.ndarray) -> np.ndarray:
        """For each hash, the index of its reference document, or -1 when no document has it."""
        out = np.full(len(grams), -1, np.int64)
        if not len(self.keys) or not len(grams):
            return out
        maybe = np.flatnonzero(self.filter[grams >> np.uint64(64 - self.bits)])
        if len(maybe):
            # needles in sorted order: each binary search starts where the last ended (10x fewer cache misses)
            maybe = maybe[np.argsort(grams[maybe], kind="stable")]
            g = grams[maybe]
            pos = np.minimum(np.searchsorted(self.keys, g), len(self.keys) - 1)
            found = self.keys[pos] == g
            out[maybe[found]] = self.docs[pos[found]]
        return out


@dataclass
class Matches:
    """Per text: longest common span (words), share of its n-grams in the reference, and the document."""

    longest_span: list[int]
    overlap_ratio: list[float]
    source: list[str | None]


class CopyrightOverlap(Filter):
    """Flag or drop rows that copy text verbatim from a protected reference corpus.

    Records and reference documents are compared as sequences of words (lower-cased runs
    of letters, marks and digits, the tokenization of ``decontam.ngram``: case, punctuation
    and spacing do not matter). The index holds every distinct word ``n``-gram of the
    references (64-bit hashes, 12 bytes each) and is built in ``setup()``, once per worker.
    Three columns are written for every row:

    * ``copyright.longest_span``: the longest run of the row's words whose every ``n``-word
      window is in the reference, in words (``run of k consecutive matching n-grams`` =
      ``k + n - 1`` words); 0 when no n-gram matches. It is the longest verbatim span shared
      with the reference whenever that run's windows come from one passage, which the
      ``n - 1``-word overlap between consecutive windows all but guarantees for ``n >= 8``;
      it can only over-count by stitching passages that share ``n - 1`` words.
    * ``copyright.overlap_ratio``: the share of the row's n-grams (every position, repeats
      included) found in the reference; 0.0 for rows shorter than ``n`` words.
    * ``copyright.source``: ``<reference name>:<doc id>`` of the document holding most
      n-grams of the longest run (a passage in several documents counts for the first
      one listed); null when nothing matches.

    ``n`` defaults to 8, measured on the Gutenberg sample (3 KB pieces of 63 books against 60
    others): a piece shares at least one n-gram with the unrelated books in 95% of pieces
    for n=5, 60% for 6, 18% for 7, 4.6% for 8 and 0.8% for 10. At 8 those chance matches
    are stock phrases (``on the hearthrug with his back to the fire``), 9 words at the 99th
    percentile, far below a 50-word span; larger n would miss quotations of 8-12 words. Rows are
    dropped when the span exceeds ``max_longest_span`` (``copyright_span: 73 > 50
    (gutenberg:1342)``) or the ratio exceeds ``max_overlap_ratio`` (``copyright_ratio:
    0.82 > 0.5 (...)``); ``drop: false`` only writes the columns. A reference file that
    cannot be read completely is an error, not a smaller index.
    """

    name = "copyright.overlap"
    version = "1"
    idempotent: ClassVar[bool] = True
    example_params: ClassVar[dict[str, Any]] = {
        "n": 4, "max_longest_span": 6,
        "references": [{"name": "canary", "items": ["plain ASCII text with a few words in it, and more",
                                                    "数据 清洗 是 训练 语言 模型 的 第一步"]}],
    }

    class Params(FilterParams):
        references: list[Reference] = Field(min_length=1, description="Protected corpora, each {name, path or "
                                                                      "items, fields, format, id_field}.")
        n: int = Field(8, ge=1, le=64, description="Words per n-gram: the shortest verbatim span that is seen.")
        column: str = Field("text", description="String column compared with the references.")
        max_longest_span: int | None = Field(50, ge=0, description="Drop rows sharing a verbatim span of more "
                                                                   "words than this (None: no bound).")
        max_overlap_ratio: float | None = Field(None, ge=0, le=1, description="Drop rows with a larger share of "
                                                "their n-grams in the references (None: no bound).")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._index: _Index | None = None

    def input_files(self) -> list[Path]:
        return [self.resolve_path(r.path) for r in self.params.references if r.path]

    @classmethod
    def audit_section(cls) -> AuditSection:
        """``copyright.count``, ``.remaining`` and ``.max_span``, rows by document, and the card's copyright line."""
        return COPYRIGHT_AUDIT

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [LONGEST_SPAN, OVERLAP_RATIO, SOURCE_DOC]

    def score_columns(self) -> list[str]:
        return [LONGEST_SPAN, OVERLAP_RATIO]

    def rules(self) -> list[Rule]:
        p = self.params
        rules = []
        if p.max_longest_span is not None:
            rules.append(Rule("copyright_span", LONGEST_SPAN, max=p.max_longest_span))
        if p.max_overlap_ratio is not None:
            rules.append(Rule("copyright_ratio", OVERLAP_RATIO, max=p.max_overlap_ratio))
        return rules

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_index": None}

    # ---- index -----------------------------------------------------------------------
    def documents(self, ref: Reference) -> Iterator[tuple[str, str]]:
        """``(doc id, text)`` of every document of ``ref``, streamed."""
        path = self.resolve_path(ref.path) if ref.path else None
        yield from iter_texts(ref, path, f"{self.name}: reference", default_id="reader")

    def build_index(self) -> _Index:
        n = self.params.n
        keys: list[np.ndarray] = []
        docs: list[np.ndarray] = []
        labels: list[str] = []
        words = 0
        texts: list[str] = []
        size = 0

        def flush() -> None:
            nonlocal words, size
            if not texts:
                return
            wh, owner = tokenize(texts)
            words += len(wh)
            grams, pos = positional_ngrams(wh, owner, n)
            keys.append(grams)
            docs.append((owner[pos] + (len(labels) - len(texts))).astype(np.int32))
            texts.clear()
            size = 0

        for ref in self.params.references:
            for doc, text in self.documents(ref):
                labels.append(f"{ref.name}:{doc}")
                texts.append(text)
                size += len(text)
                if size >= _READ_CHARS:
                    flush()
        flush()
        all_keys = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
        all_docs = np.concatenate(docs) if docs else np.zeros(0, np.int32)
        order = np.argsort(all_keys, kind="stable")  # equal keys keep reference order: the first doc wins
        all_keys, all_docs = all_keys[order], all_docs[order]
        first = np.ones(len(all_keys), np.bool_)
        first[1:] = all_keys[1:] != all_keys[:-1]
        return _Index(all_keys[first], all_docs[first], labels, words)

    def setup(self, ctx: Context) -> None:
        self._index = self.build_index()

    @property
    def index(self) -> _Index:
        if self._index is None:
            self._index = self.build_index()
        return self._index

    # ---- matching --------------------------------------------------------------------
    def matches(self, texts: Sequence[str | None] | pa.Array) -> Matches:
        """Longest common span, overlap ratio and source document of each text."""
        idx, n = self.index, self.params.n
        count = len(texts)
        span = np.zeros(count, np.int64)
        ratio = np.zeros(count, np.float64)
        source: list[str | None] = [None] * count
        wh, owner = tokenize(texts)
        grams, pos = positional_ngrams(wh, owner, n)
        if not len(grams):
            return Matches(span.tolist(), ratio.tolist(), source)
        doc = idx.lookup(grams)
        hit = doc >= 0
        total = np.bincount(owner[pos], minlength=count)
        hits = np.bincount(owner[pos[hit]], minlength=count)
        np.divide(hits, total, out=ratio, where=total > 0)
        if not hit.any():
            return Matches(span.tolist(), ratio.tolist(), source)
        # maximal runs of consecutive matching n-grams: positions adjacent within one text
        hp, hd = pos[hit], doc[hit]
        ho = owner[hp]
        starts = np.flatnonzero(np.r_[True, (hp[1:] != hp[:-1] + 1) | (ho[1:] != ho[:-1])])
        lengths = np.diff(np.r_[starts, len(hp)])
        run_owner = ho[starts]
        # the longest run of each text (the first one on ties): sort by text, then length descending
        order = np.lexsort((starts, -lengths, run_owner))
        best = order[np.r_[True, run_owner[order][1:] != run_owner[order][:-1]]]
        labels = idx.labels
        for r in best.tolist():
            row = int(run_owner[r])
            span[row] = int(lengths[r]) + n - 1
            run_docs = hd[starts[r]:starts[r] + lengths[r]]
            values, counts = np.unique(run_docs, return_counts=True)
            source[row] = labels[int(values[counts.argmax()])]
        return Matches(span.tolist(), ratio.tolist(), source)

    def scores(self, batch: pa.Table) -> dict[str, pa.Array]:
        m = self.matches(batch.column(self.params.column))
        return {LONGEST_SPAN: pa.array(m.longest_span, pa.int64()),
                OVERLAP_RATIO: pa.array(m.overlap_ratio, pa.float64()),
                SOURCE_DOC: pa.array(m.source, pa.string())}

    def empty_columns(self) -> dict[str, pa.DataType]:
        return {LONGEST_SPAN: pa.int64(), OVERLAP_RATIO: pa.float64(), SOURCE_DOC: pa.string()}

    def reasons(self, batch: pa.Table) -> list[Reason | None]:
        """The first rule a row fails, with the reference document named in the detail."""
        sources = batch.column(SOURCE_DOC).to_pylist()
        return [Reason(r.rule, f"{r.detail} ({s})") if r is not None and s else r
                for r, s in zip(super().reasons(batch), sources)]


# ---- audit: copyright.count / .remaining / .max_span, rows by document, the card's copyright line -------------

def _bounds(run: RunReader) -> list[dict[str, Any]]:
    """The last copyright.overlap step's thresholds: its rules in stats.json, else (a run that recorded none)
    ``max_longest_span`` and ``max_overlap_ratio`` as recipe.yaml has them, else their defaults."""
    steps = [s for s in run.steps if s.get("op") == CopyrightOverlap.name]
    if steps and isinstance(steps[-1].get("rules"), list):
        return run.step_rules(CopyrightOverlap.name)
    bounds = [{"column": column, "max": recorded_param(run, CopyrightOverlap.name, key)}
              for column, key in ((LONGEST_SPAN, "max_longest_span"), (OVERLAP_RATIO, "max_overlap_ratio"))]
    return [b for b in bounds if b["max"] is not None]


def _over(run: RunReader, table: pa.Table) -> np.ndarray:
    """Rows of ``table`` over any max (or under any min) of the step's thresholds."""
    over = np.zeros(table.num_rows, bool)
    for r in _bounds(run):
        v = floats(table, str(r.get("column")))
        with np.errstate(invalid="ignore"):
            if isinstance(r.get("max"), (int, float)):
                over |= v > r["max"]
            if isinstance(r.get("min"), (int, float)):
                over |= v < r["min"]
    return over


def _measure(run: RunReader, name: str) -> Measure:
    if run.last_step(CopyrightOverlap.name) is None:
        return Measure(None, note=f"no {CopyrightOverlap.name} step ran")
    if name == "copyright.max_span":
        out = audit_output(run)
        span = floats(out, LONGEST_SPAN)
        finite = span[~np.isnan(span)]
        value = int(finite.max()) if finite.size else 0
        return Measure(value, worst_rows(out, span > 0, span, [OUTPUT] * out.num_rows, [SOURCE_DOC]))
    if name == "copyright.count":
        table, where = output_and_rejected(run)
    else:
        table = audit_output(run)
        where = [OUTPUT] * table.num_rows
    over = _over(run, table)
    span = floats(table, LONGEST_SPAN)
    return Measure(int(over.sum()), worst_rows(table, over, span, where, [SOURCE_DOC, OVERLAP_RATIO]))


def _figures(run: RunReader) -> dict[str, Any]:
    docs = Counter(v for v in strings(output_and_rejected(run)[0], SOURCE_DOC) if v is not None)
    return {"matched_rows_by_document": dict(docs.most_common(20))}


def _card(summary: dict[str, Any] | None, run: RunReader) -> CardText:
    if not summary:
        return None, ["Not checked for verbatim copying from protected texts."]
    refs = [r.get("name") for s in summary.get("steps") or [] for r in s["params"].get("references") or []
            if isinstance(r, dict)]
    return (f"- Verbatim overlap with protected references (`{CopyrightOverlap.name}`, references: "
            f"{', '.join(map(str, refs)) or '—'}): rows over the thresholds: "
            f"{num(summary.get('copyright.count'))}, "
            f"of them in the output: {num(summary.get('copyright.remaining'))}; longest verbatim span in the "
            f"output: {num(summary.get('copyright.max_span'))} words."), [
        "Copyright overlap is checked only against the listed references, and only for verbatim word sequences "
        "(paraphrase is not detected)."]


COPYRIGHT_AUDIT = AuditSection(
    "copyright",
    metrics=(AuditMetric("copyright.count", "rows over a copyright.overlap threshold, in the output and in "
                         "rejected rows", _measure),
             AuditMetric("copyright.remaining", "rows over a copyright.overlap threshold still in the output",
                         _measure),
             AuditMetric("copyright.max_span", "the longest verbatim span (words) any output row shares with "
                         "the references", _measure)),
    figures=_figures, order=41, card_title="Contamination and copyright", card=_card,
    card_empty="No contamination or copyright check ran.")
