from __future__ import annotations

import gzip
import json
import pickle
import time
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gristmill.ops.copyright import LONGEST_SPAN, OVERLAP_RATIO, SOURCE_DOC, CopyrightOverlap
from gristmill.ops.text.ngrams import words

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

PASSAGE = ("It is a truth universally acknowledged that a single man in possession of a good fortune must be in "
           "want of a wife However little known the feelings or views of such a man may be on his first entering "
           "a neighbourhood this truth is so well fixed in the minds of the surrounding families")
OTHER = ("The rain had stopped by the time the coach reached the inn and the landlord came out with a lantern to "
         "see who could be travelling so late on such a night")
FILLER = "my own words about a quiet afternoon spent reading old novels by the window while it snowed"


def batch(*texts: str | None) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())})


def op_with(*docs: str, **params) -> CopyrightOverlap:
    op = CopyrightOverlap(references=[{"name": "ref", "items": list(docs)}], **params)
    op.ensure_setup()
    return op


def test_planted_excerpt_gives_its_exact_length_ratio_and_document() -> None:
    op = op_with(OTHER, PASSAGE, drop=False)
    excerpt = " ".join(words(PASSAGE)[5:35])  # 30 words from inside the passage
    text = f"{FILLER}. {excerpt.upper()}!! {FILLER}"
    result = op.process(batch(text, FILLER, None, "too short"))
    rows = result.kept.to_pylist()
    assert result.rejected is None and len(rows) == 4
    total = len(words(text))
    assert rows[0][LONGEST_SPAN] == 30  # case and punctuation do not matter
    assert rows[0][OVERLAP_RATIO] == pytest.approx((30 - 8 + 1) / (total - 8 + 1))
    assert rows[0][SOURCE_DOC] == "ref:1"
    for row in rows[1:]:
        assert (row[LONGEST_SPAN], row[OVERLAP_RATIO], row[SOURCE_DOC]) == (0, 0.0, None)


def test_rows_over_a_threshold_are_dropped_naming_the_rule_value_and_document() -> None:
    op = op_with(PASSAGE, max_longest_span=20, max_overlap_ratio=0.9)
    whole = PASSAGE  # every n-gram found: ratio 1.0, span = all words
    part = " ".join(words(PASSAGE)[:25]) + " " + FILLER
    quote = " ".join(words(PASSAGE)[:12]) + " " + FILLER  # a short quotation is allowed
    result = op.process(batch(whole, part, quote))
    n_words = len(words(PASSAGE))
    reasons = dict(zip(result.rejected.column("id").to_pylist(), result.rejected.column("_reason").to_pylist()))
    assert reasons == {"r0": f"copyright_span: {n_words} > 20 (ref:0)", "r1": "copyright_span: 25 > 20 (ref:0)"}
    assert result.kept.column("id").to_pylist() == ["r2"]
    ratio_only = op_with(PASSAGE, max_longest_span=None, max_overlap_ratio=0.6)
    result = ratio_only.process(batch(whole, part, quote))  # part: 18 of its 35 8-grams are found
    assert result.rejected.column("_reason").to_pylist() == ["copyright_ratio: 1 > 0.6 (ref:0)"]


def test_runs_never_join_across_rows_or_gaps() -> None:
    w = words(PASSAGE)
    op = op_with(PASSAGE, n=4, drop=False)
    # row 0 ends with the passage's first 10 words, row 1 starts with the next 10: two spans of 10, not 20
    # row 2 has two 10-word pieces separated by one foreign word: the longest span is 10
    rows = [FILLER + " " + " ".join(w[:10]), " ".join(w[10:20]) + " " + FILLER,
            " ".join(w[:10]) + " zebra " + " ".join(w[10:20])]
    spans = op.process(batch(*rows)).kept.column(LONGEST_SPAN).to_pylist()
    assert spans == [10, 10, 10]


def test_a_passage_in_two_documents_is_attributed_to_the_first_listed() -> None:
    op = CopyrightOverlap(drop=False, references=[{"name": "a", "items": [OTHER]},
                                                  {"name": "b", "items": [FILLER, PASSAGE]},
                                                  {"name": "c", "items": [PASSAGE]}])
    assert op.process(batch(PASSAGE)).kept.column(SOURCE_DOC).to_pylist() == ["b:1"]
    assert op.index.labels == ["a:0", "b:0", "b:1", "c:0"]


def brute_force(text: str, refs: list[str], n: int) -> tuple[int, float, int]:
    """(longest run with every n-window in the references, ratio, longest common substring) by definition."""
    w = words(text)
    grams = {tuple(r[i:i + n]) for r in map(words, refs) for i in range(len(r) - n + 1)}
    hits = [tuple(w[i:i + n]) in grams for i in range(len(w) - n + 1)]
    best = run = 0
    for h in hits:
        run = run + 1 if h else 0
        best = max(best, run)
    lcs = 0
    for r in map(words, refs):
        prev = [0] * (len(r) + 1)
        for a in w:
            cur = [0] * (len(r) + 1)
            for j, b in enumerate(r, 1):
                if a == b:
                    cur[j] = prev[j - 1] + 1
                    lcs = max(lcs, cur[j])
            prev = cur
    return (best + n - 1 if best else 0), (sum(hits) / len(hits) if hits else 0.0), lcs


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(st.lists(st.sampled_from("a b c d e".split()), max_size=30), min_size=1, max_size=4),
       refs=st.lists(st.lists(st.sampled_from("a b c d e".split()), min_size=1, max_size=40), min_size=1, max_size=3),
       n=st.integers(1, 5))
def test_matches_agree_with_the_definition(texts: list[list[str]], refs: list[list[str]], n: int) -> None:
    texts_s, refs_s = [" ".join(t) for t in texts], [" ".join(r) for r in refs]
    op = CopyrightOverlap(n=n, references=[{"name": "r", "items": refs_s}])
    m = op.matches(texts_s)
    for i, t in enumerate(texts_s):
        span, ratio, lcs = brute_force(t, refs_s, n)
        assert m.longest_span[i] == span
        assert m.overlap_ratio[i] == pytest.approx(ratio)
        # the span covers every verbatim common span of n words or more, and is 0 exactly when there is none
        assert (span == 0) == (lcs < n)
        assert span >= lcs or lcs < n
        assert (m.source[i] is None) == (span == 0)


def test_reference_files_in_any_reader_format_with_fields_and_ids(tmp_path: Path) -> None:
    ref = tmp_path / "books.jsonl.gz"
    with gzip.open(ref, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"book": "emma", "title": "Emma", "body": OTHER}) + "\n")
        f.write(json.dumps({"book": "pp", "title": "Pride and Prejudice", "body": PASSAGE}) + "\n")
    op = CopyrightOverlap(drop=False, references=[{"name": "novels", "path": "books.jsonl.gz",
                                                   "fields": ["body", "title"], "id_field": "book"}])
    op.bind(base_dir=tmp_path)
    assert op.input_files() == [ref]
    row = op.process(batch(PASSAGE + " Pride and Prejudice")).kept.to_pylist()[0]
    assert row[SOURCE_DOC] == "novels:pp" and row[LONGEST_SPAN] == len(words(PASSAGE)) + 3
    default_ids = CopyrightOverlap(drop=False, references=[{"name": "n", "path": str(ref), "fields": ["body"]}])
    assert default_ids.process(batch(PASSAGE)).kept.column(SOURCE_DOC).to_pylist() == ["n:books.jsonl.gz:2"]


def test_unreadable_or_empty_reference_is_an_error_not_a_smaller_index(tmp_path: Path) -> None:
    bad = tmp_path / "ref.jsonl"
    bad.write_text(json.dumps({"text": PASSAGE}) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"reference 'r': .*ref.jsonl:2: unreadable record"):
        CopyrightOverlap(references=[{"name": "r", "path": str(bad)}]).ensure_setup()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        CopyrightOverlap(references=[{"name": "r", "path": str(empty)}]).ensure_setup()


def test_params_are_checked() -> None:
    with pytest.raises(ValidationError, match="exactly one of path and items"):
        CopyrightOverlap(references=[{"name": "r"}])
    with pytest.raises(ValidationError):
        CopyrightOverlap(references=[])
    with pytest.raises(ValidationError):
        CopyrightOverlap(references=[{"name": "r", "items": ["x"]}], max_overlap_ratio=1.5)


def test_the_index_is_not_pickled_and_is_rebuilt() -> None:
    op = CopyrightOverlap(references=[{"name": "ref", "items": [PASSAGE]}])
    before = pickle.dumps(op)
    op.ensure_setup()
    assert len(op.index.keys) > 0
    blob = pickle.dumps(op)
    assert blob == before
    clone = pickle.loads(blob)
    assert clone.process(batch(PASSAGE)).rejected.num_rows == 1


def test_missing_column_is_named() -> None:
    with pytest.raises(KeyError, match="column 'body' not in batch"):
        op_with(PASSAGE, column="body").process(batch("x"))


@pytest.mark.slow
def test_gutenberg_books_flag_planted_excerpts_and_not_unrelated_books() -> None:
    with gzip.open(SHARED / "gutenberg_sample.jsonl.gz", "rt", encoding="utf-8") as f:
        books = [json.loads(line) for line in f]
    ref, rest = books[:40], books[40:]
    titles = {b["title"] for b in ref}
    rest = [b for b in rest if b["title"] not in titles and len(b["text"]) > 200_000]
    op = CopyrightOverlap(drop=False, references=[{"name": "gutenberg", "items": [b["text"] for b in ref]}])
    t0 = time.perf_counter()
    op.ensure_setup()
    assert time.perf_counter() - t0 < 60
    # from the middle of each book: every book's Project Gutenberg header and license footer is verbatim shared
    chunks = [b["text"][len(b["text"]) // 4 + k * 3000:][:3000] for b in rest[:30] for k in range(10)]
    book = words(ref[7]["text"])
    planted_text = " ".join(book[len(book) // 2:len(book) // 2 + 120])
    planted = f"{FILLER}. {planted_text} {FILLER}"
    m = op.matches([*chunks, planted])
    assert m.longest_span[-1] >= 120 and m.source[-1] == "gutenberg:7"
    unrelated = m.longest_span[:-1]
    assert len(unrelated) >= 200
    # stock phrases of 8-12 words occur, copied passages of 50 do not (quotations aside)
    assert sum(s > 50 for s in unrelated) <= 0.02 * len(unrelated)
    assert sorted(unrelated)[len(unrelated) // 2] == 0
