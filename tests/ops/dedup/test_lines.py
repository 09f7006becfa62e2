from __future__ import annotations

import json
import pickle
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.io import BadRecord, ReaderOptions, open_reader
from gristmill.ops.clean import Normalize
from gristmill.ops.dedup.lines import REMOVED_CHARS, REMOVED_LINES, LineDedup, frequent_hashes, line_keys
from gristmill.runner import run_recipe

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"

HEADER = ("This eBook is for the use of anyone anywhere at no cost and with\n"
          "almost no restrictions whatsoever. You may copy it, give it away or\n"
          "re-use it under the terms of the Project Gutenberg License included")
FOOTER = ("Updated editions will replace the previous one--the old editions\n"
          "will be renamed.")


TOWNS = "Arden Bexley Corfe Dunmore Elgin Frome Girvan Hythe Ilkley Jarrow".split()


def doc(i: int) -> str:
    """A 'book chunk' with its own story text between a shared header and footer."""
    town = TOWNS[i]
    return (f"Chapter {i}\n\n{HEADER}\n\nCHAPTER I.\n\nThe story begins on a dark night in "
            f"{town}.\nNobody in {town} expected it.\n\n{FOOTER}")


def table(texts: list[str | None], prefix: str = "d") -> pa.Table:
    return pa.table({"id": [f"{prefix}{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())})


def fitted(*shards: pa.Table, **params) -> LineDedup:
    op = LineDedup(**params)
    op.fit([op.summarize(s) for s in shards])
    return op


def test_line_keys_ignore_case_punctuation_digits_and_spacing() -> None:
    assert line_keys("Posting Date: May 3, 2008  [EBook #583]\n* * * * *\n  The END.  ") == [
        "posting date may 0 0000 ebook 000", "", "the end"]
    assert line_keys("Ça, c'est\tÉCRIT") == ["ça cest écrit"]


def _reference_keys(text: str) -> list[str]:
    """line_keys spelled with regexes only (it takes a str.translate shortcut for ASCII)."""
    norm = re.sub(r"[^\S\n]+", " ", re.sub(r"\d", "0", re.sub(r"[^\w\s]+", "", text.lower())))
    return [line.strip() for line in norm.split("\n")]


@settings(max_examples=300, deadline=None)
@given(st.text() | st.text(alphabet=" \t\n\r\x0b\x1c\x85\xa0\u2028\u3000.,-_*'\"\x00\x7f09\u0663aZéΣß—“"))
def test_line_keys_equal_the_regex_definition(text: str) -> None:
    assert line_keys(text) == _reference_keys(text)


def test_boilerplate_lines_go_and_the_story_stays() -> None:
    docs = table([doc(i) for i in range(6)])
    result = fitted(docs).process(docs)
    assert result.rejected is None
    first = result.kept.column("text")[0].as_py()
    assert first == "Chapter 0\n\nCHAPTER I.\n\nThe story begins on a dark night in Arden.\nNobody in Arden expected it."
    # "Chapter 0", "Chapter 1", ... normalise to one frequent line, but a short one stays
    assert result.kept.column(REMOVED_LINES).to_pylist() == [5] * 6
    assert result.kept.column(REMOVED_CHARS)[0].as_py() == len(doc(0)) - len(first)


def test_frequency_counts_documents_not_occurrences() -> None:
    refrain = "And still the river runs down to the sea"
    poem = "\n".join([refrain] * 10)
    docs = table([poem, "Something else entirely, written once only.", doc(1), doc(2)])
    result = fitted(docs, min_docs=3).process(docs)
    assert result.kept.column("text")[0].as_py() == poem


def test_counts_add_up_over_shards() -> None:
    # the header is in one document per shard: frequent only when the shards are summed
    shards = [table([doc(i), f"Unrelated text about {TOWNS[i]} and nothing much at all."], prefix=f"s{i}-")
              for i in range(5)]
    op = fitted(*shards, min_docs=5)
    assert HEADER.split("\n")[0] not in op.process(shards[3]).kept.column("text")[0].as_py()
    op = fitted(*shards[:4], min_docs=5)
    assert op.process(shards[3]).kept.column("text")[0].as_py() == doc(3)


def test_short_frequent_lines_go_only_with_a_removed_neighbour() -> None:
    licence = ("to protect the Project Gutenberg-tm mission of promoting the free\n"
               "distribution of electronic works, by using or distributing this\nworks.")
    texts = [f"THE END.\n\n{licence}\n\nA paragraph of the book set in {town}." for town in TOWNS[:5]]
    result = fitted(table(texts), min_docs=5, min_chars=20).process(table(texts))
    # "works." (5 chars) is frequent and wraps the removed licence line before it;
    # "THE END." is frequent and short, but a paragraph of its own
    assert result.kept.column("text")[0].as_py() == "THE END.\n\nA paragraph of the book set in Arden."
    assert result.kept.column(REMOVED_LINES)[0].as_py() == 3


def test_documents_left_empty_are_dropped_with_a_reason() -> None:
    texts = [doc(i) for i in range(5)] + [f"{HEADER}\n\n{FOOTER}", None, ""]
    result = fitted(table(texts)).process(table(texts))
    assert result.rejected.select(["id", "_reason"]).to_pylist() == [
        {"id": "d5", "_reason": "empty_after_line_dedup: 5 lines removed"}]
    kept = result.kept.select(["id", "text", REMOVED_LINES, REMOVED_CHARS]).to_pylist()
    assert kept[-2:] == [{"id": "d6", "text": None, REMOVED_LINES: 0, REMOVED_CHARS: 0},
                         {"id": "d7", "text": "", REMOVED_LINES: 0, REMOVED_CHARS: 0}]


def test_blank_lines_around_removed_lines_collapse() -> None:
    texts = [f"Intro {town} here.\n\n{FOOTER}\n\nOutro {town} here.\n\n\n\nkept gap" for town in TOWNS[:5]]
    result = fitted(table(texts)).process(table(texts))
    # the blank lines the footer leaves collapse; a double blank elsewhere stays as it was
    assert result.kept.column("text")[0].as_py() == "Intro Arden here.\n\nOutro Arden here.\n\n\n\nkept gap"


def test_apply_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        LineDedup().process(table(["x"]))


def test_merge_in_ranges_equals_a_plain_count() -> None:
    rng = random.Random(0)
    pool = [rng.getrandbits(64) for _ in range(300)]
    tables, truth = [], Counter()
    for _ in range(7):
        c = Counter(rng.choice(pool) for _ in range(200))
        truth.update(c)
        keys = sorted(c)
        tables.append(np.array([[k, c[k]] for k in keys], np.uint64))
    expected = sorted(k for k, n in truth.items() if n >= 6)
    for rows in (1, 5, 64, 10**6):
        assert frequent_hashes(tables, 6, rows_per_pass=rows).tolist() == expected


def test_summaries_go_to_scratch_files_in_a_run(tmp_path: Path) -> None:
    docs = table([doc(i) for i in range(6)])
    memory = fitted(docs)
    op = LineDedup()
    op.bind(scratch=tmp_path)
    summary = op.summarize(docs)
    assert Path(summary["path"]).parent == tmp_path and summary["rows"] > 0
    op.fit([summary])
    assert op.frequent_hashes.tolist() == memory.frequent_hashes.tolist()
    clone = pickle.loads(pickle.dumps(op))  # what a worker receives
    assert clone.process(docs).kept.to_pylist() == memory.process(docs).kept.to_pylist()


def test_in_a_recipe_over_several_shards(tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": f"b{i}", "text": doc(i)}) + "\n" for i in range(9)))
    recipe = {"name": "lines", "input": {"path": str(src), "format": "jsonl", "shard_rows": 2},
              "steps": [{"op": "dedup.lines", "params": {"min_docs": 5}}],
              "output": {"format": "jsonl"}, "executor": {"workers": 1}}
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)
    step = summary.stats["steps"][0]
    assert step["rows_in"] == 9 and step["rows_out"] == 9
    out = [json.loads(line) for p in summary.outputs for line in p.read_text().splitlines()]
    assert all(HEADER.split("\n")[1] not in row["text"] for row in out)
    assert sorted(row[REMOVED_LINES] for row in out) == [5] * 9


@pytest.mark.slow
def test_gutenberg_licence_goes_and_chapter_headings_stay() -> None:
    rows = [r for r in open_reader(SHARED / "gutenberg_sample.jsonl.gz",
                                   ReaderOptions(format="jsonl", chunk_chars=3000))
            if not isinstance(r, BadRecord)]
    docs = Normalize().map(pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]}))
    shards = [docs.slice(i, 2000) for i in range(0, docs.num_rows, 2000)]
    op = fitted(*shards)
    results = [op.process(s) for s in shards]
    kept = [t for r in results for t in r.kept.column("text").to_pylist()]
    dropped = sum(r.rejected.num_rows for r in results if r.rejected is not None)
    before = "\n".join(docs.column("text").to_pylist())
    after = "\n".join(kept)
    for line in ("This eBook is for the use of anyone anywhere at no cost and with",
                 "Project Gutenberg-tm is synonymous with the free distribution of"):
        assert before.count(line) > 90 and after.count(line) == 0
    for heading in ("CHAPTER I.", "CHAPTER II.", "THE END"):
        assert after.count(heading) == before.count(heading) > 10
    assert 300 < dropped < 1000  # the licence chunks at the end of each book
    removed_share = 1 - len(after) / len(before)
    assert 0.03 < removed_share < 0.10
