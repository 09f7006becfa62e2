"""``decontam.ngram``: drop training rows that share word n-grams with benchmark items."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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
from gristmill.ops.text.ngrams import ngram_hashes, tokenize
from gristmill.ops.text.text_sources import TextSource, iter_texts
from gristmill.records import Reason, column_list

__all__ = ["NgramDecontam", "Benchmark", "BENCHMARK", "ITEM", "OVERLAP"]

BENCHMARK = "decontam.benchmark"
ITEM = "decontam.item"
OVERLAP = "decontam.overlap"


class Benchmark(TextSource):
    """A benchmark to decontaminate against; items are named by ``id_field`` or their position."""


@dataclass
class _Index:
    """Sorted n-gram hashes with the item each belongs to (a hash shared by items repeats)."""

    keys: np.ndarray  # uint64, sorted
    items: np.ndarray  # int64 index into labels
    labels: list[tuple[str, str, int]]  # (benchmark, item id, words per n-gram)
    short_lengths: list[int]  # word counts of items shorter than n, each one "n-gram"
    skipped: dict[str, int]  # items per benchmark too short to index
    bits: int = 16  # the filter below has 2**bits entries
    filter: np.ndarray | None = None  # bool by the top `bits` bits of a key: may be in keys

    def __post_init__(self) -> None:
        # A membership filter small enough for the CPU cache (~3% false positives) spares
        # most n-grams a binary search through the keys.
        self.bits = max(16, min(26, int(len(self.keys) * 32).bit_length()))
        self.filter = np.zeros(1 << self.bits, np.bool_)
        self.filter[self.keys >> np.uint64(64 - self.bits)] = True

    def candidates(self, grams: np.ndarray) -> np.ndarray:
        """Mask of the n-gram hashes that are in ``keys``."""
        maybe = np.flatnonzero(self.filter[grams >> np.uint64(64 - self.bits)])
        out = np.zeros(len(grams), np.bool_)
        if len(maybe) and len(self.keys):
            g = grams[maybe]
            pos = np.minimum(np.searchsorted(self.keys, g), len(self.keys) - 1)
            out[maybe[self.keys[pos] == g]] = True
        return out


class NgramDecontam(Filter):
    """Drop rows sharing at least ``min_overlap`` word ``n``-grams with a benchmark item.

    Each benchmark item's text is its ``fields`` joined with newlines; a training row and
    an item are compared as sequences of words (:func:`words`: lower-cased runs of letters
    and digits, so punctuation and spacing do not matter), by their distinct ``n``-grams
    (13 by default, as GPT-3 decontaminated). An item shorter than
    ``n`` words is one n-gram of its own length (GPT-3's rule for short examples) if it
    has at least ``min_words`` words; shorter items would match almost anything and are
    skipped.

    Every row gets ``decontam.benchmark``, ``decontam.item`` (the item sharing most n-grams;
    ties go to the benchmark and item listed first) and ``decontam.overlap`` (how many
    distinct n-grams they share), also when the overlap is below ``min_overlap``; rows
    sharing nothing get nulls and 0. Rows with ``min_overlap`` shared n-grams or more are
    dropped with ``contamination: gsm8k item 1234 (17 shared 13-grams)``; ``drop: false``
    only flags them.

    Item ids are the ``id_field`` value, else the 0-based position in the file (the row
    order of a JSONL file).

    The index (64-bit hashes of every item's n-grams, about 16 bytes each) is built in
    ``setup()``, once per worker; a benchmark file that cannot be read completely is an
    error, not a smaller index.
    """

    name = "decontam.ngram"
    version = "1"
    idempotent = True
    example_params: ClassVar[dict[str, Any]] = {
        "n": 5,
        "benchmarks": [{"name": "canary", "items": ["plain ASCII text with a few words in it, and more",
                                                    "数据 清洗 是 训练 语言 模型 的 第一步"]}],
    }

    class Params(FilterParams):
        benchmarks: list[Benchmark] = Field(min_length=1, description="Benchmarks, each {name, path or items, "
                                                                      "fields, format, id_field}.")
        n: int = Field(13, ge=1, description="Words per n-gram.")
        min_overlap: int = Field(1, ge=1, description="Shared distinct n-grams that make a row contaminated.")
        min_words: int = Field(8, ge=1, description="Items with fewer words are not indexed (too generic).")
        column: str = Field("text", description="String column checked for contamination.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._index: _Index | None = None
        self._sizes: list[int] = []  # words per n-gram of each row's best item, between scores() and reasons()

    def input_files(self) -> list[Path]:
        return [self.resolve_path(b.path) for b in self.params.benchmarks if b.path]

    @classmethod
    def audit_section(cls) -> AuditSection:
        """``contamination.count`` and ``.remaining``, rows by benchmark, and the card's contamination line."""
        return CONTAMINATION_AUDIT

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [BENCHMARK, ITEM, OVERLAP]

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_index": None}

    # ---- index -----------------------------------------------------------------------
    def items(self, bench: Benchmark) -> list[tuple[str, str]]:
        """``(item id, text)`` of every item of ``bench``."""
        path = self.resolve_path(bench.path) if bench.path else None
        return list(iter_texts(bench, path, f"{self.name}: benchmark"))

    def build_index(self) -> _Index:
        n, min_words = self.params.n, self.params.min_words
        keys: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        labels: list[tuple[str, str, int]] = []
        short: set[int] = set()
        skipped: dict[str, int] = {}
        for bench in self.params.benchmarks:
            items = self.items(bench)
            word_hashes, owner = tokenize([text for _, text in items])
            lengths = np.bincount(owner, minlength=len(items))
            bounds = np.r_[0, np.cumsum(lengths)]
            for j, (item, _) in enumerate(items):
                size = min(n, int(lengths[j]))
                if size < min(n, min_words):
                    skipped[bench.name] = skipped.get(bench.name, 0) + 1
                    continue
                if size < n:
                    short.add(size)
                span = slice(bounds[j], bounds[j + 1])
                grams = np.unique(ngram_hashes(word_hashes[span], owner[span], size)[0])
                keys.append(grams)
                codes.append(np.full(len(grams), len(labels), np.int64))
                labels.append((bench.name, item, size))
        all_keys = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
        all_codes = np.concatenate(codes) if codes else np.zeros(0, np.int64)
        order = np.argsort(all_keys, kind="stable")
        return _Index(all_keys[order], all_codes[order], labels, sorted(short), skipped)

    def setup(self, ctx: Context) -> None:
        self._index = self.build_index()

    @property
    def index(self) -> _Index:
        if self._index is None:
            self._index = self.build_index()
        return self._index

    # ---- matching --------------------------------------------------------------------
    def matches(self, texts: Sequence[str | None] | pa.Array) -> list[tuple[int, int]]:
        """For each text, ``(label index, shared n-grams)`` of the item sharing most distinct
        n-grams with it; ``(-1, 0)`` when none shares any."""
        idx = self.index
        out = [(-1, 0)] * len(texts)
        if not len(idx.keys):
            return out
        word_hashes, owner = tokenize(texts)
        grams, docs = zip(*[ngram_hashes(word_hashes, owner, k) for k in [self.params.n, *idx.short_lengths]])
        g, d = np.concatenate(grams), np.concatenate(docs)
        found = idx.candidates(g)
        if not found.any():
            return out
        shared: dict[int, set[int]] = {}
        for doc, gram in zip(d[found].tolist(), g[found].tolist()):
            shared.setdefault(doc, set()).add(gram)
        for doc, doc_grams in shared.items():
            q = np.fromiter(doc_grams, np.uint64, len(doc_grams))
            lo, hi = np.searchsorted(idx.keys, q, "left"), np.searchsorted(idx.keys, q, "right")
            counts = np.bincount(np.concatenate([idx.items[a:b] for a, b in zip(lo, hi)]))
            best = int(counts.argmax())  # the first (lowest) label among the most shared
            out[doc] = (best, int(counts[best]))
        return out

    def match(self, text: str) -> tuple[int, int]:
        """:meth:`matches` for one text."""
        return self.matches([text])[0]

    def scores(self, batch: pa.Table) -> dict[str, pa.Array]:
        labels = self.index.labels
        found = self.matches(batch.column(self.params.column))
        self._sizes = [labels[code][2] if code >= 0 else 0 for code, _ in found]
        return {BENCHMARK: pa.array([labels[c][0] if c >= 0 else None for c, _ in found], pa.string()),
                ITEM: pa.array([labels[c][1] if c >= 0 else None for c, _ in found], pa.string()),
                OVERLAP: pa.array([shared for _, shared in found], pa.int64())}

    def score_columns(self) -> list[str]:
        return []

    def empty_columns(self) -> dict[str, pa.DataType]:
        return {BENCHMARK: pa.string(), ITEM: pa.string(), OVERLAP: pa.int64()}

    def reasons(self, batch: pa.Table) -> list[Reason | None]:
        """``contamination: gsm8k item 1234 (17 shared 13-grams)`` for rows sharing ``min_overlap`` n-grams or more."""
        sizes, self._sizes = self._sizes, []
        need = self.params.min_overlap
        return [Reason("contamination", f"{b} item {i} ({shared} shared {size}-grams)")
                if b is not None and shared >= need else None
                for b, i, shared, size in zip(column_list(batch, BENCHMARK), column_list(batch, ITEM),
                                              column_list(batch, OVERLAP), sizes)]


# ---- audit: contamination.count / .remaining, rows by benchmark, the card's contamination line ----------------

def _measure(run: RunReader, name: str) -> Measure:
    """Rows with ``decontam.overlap >= min_overlap`` of the last decontam.ngram step: in the output and in rejected
    rows (``contamination.count``) or in the output only (``contamination.remaining``)."""
    if run.last_step(NgramDecontam.name) is None:
        return Measure(None, note=f"no {NgramDecontam.name} step ran")
    threshold = int(recorded_param(run, NgramDecontam.name, "min_overlap"))
    if name == "contamination.count":
        table, where = output_and_rejected(run)
    else:
        table = audit_output(run)
        where = [OUTPUT] * table.num_rows
    overlap = floats(table, OVERLAP)
    with np.errstate(invalid="ignore"):
        flagged = overlap >= threshold
    return Measure(int(flagged.sum()), worst_rows(table, flagged, overlap, where, [BENCHMARK, ITEM]),
                   f"{OVERLAP} >= {threshold}")


def _figures(run: RunReader) -> dict[str, Any]:
    bench = Counter(v for v in strings(output_and_rejected(run)[0], BENCHMARK) if v is not None)
    return {"matched_rows_by_benchmark": dict(bench.most_common())}


def _card(summary: dict[str, Any] | None, run: RunReader) -> CardText:
    if not summary:
        return None, ["Not checked for overlap with evaluation benchmarks."]
    by_benchmark = summary.get("matched_rows_by_benchmark")
    return (f"- Benchmark contamination (`{NgramDecontam.name}`): rows matching a benchmark: "
            f"{num(summary.get('contamination.count'))}, of them in the output: "
            f"{num(summary.get('contamination.remaining'))}."
            + (" By benchmark: " + ", ".join(f"{k} {num(v)}" for k, v in by_benchmark.items()) if by_benchmark
               else "")), []


CONTAMINATION_AUDIT = AuditSection(
    "contamination",
    metrics=(AuditMetric("contamination.count", "rows flagged by decontam.ngram (decontam.overlap >= its "
                         "min_overlap), in the output and in rejected rows", _measure),
             AuditMetric("contamination.remaining", "flagged rows still in the output (drop: false)", _measure)),
    figures=_figures, order=40, card_title="Contamination and copyright", card=_card,
    card_empty="No contamination or copyright check ran.")
