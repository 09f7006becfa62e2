from __future__ import annotations

import gzip
import json
import pickle
import re
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError

from gristmill.io import BadRecord, InputError, ReaderOptions, open_reader
from gristmill.ops.decontam import BENCHMARK, ITEM, OVERLAP, NgramDecontam
from gristmill.ops.text.ngrams import words

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
GSM8K = {"name": "gsm8k", "path": str(SHARED / "gsm8k_test.jsonl"), "fields": ["question", "answer"]}
HUMANEVAL = {"name": "humaneval", "path": str(SHARED / "HumanEval.jsonl.gz"),
             "fields": ["prompt", "canonical_solution"], "id_field": "task_id"}

PROSE = ("The rain had stopped by the time the coach reached the inn, and the landlord came out "
         "with a lantern to see who could be travelling so late on such a night as this one.")


def batch(*texts: str | None) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())})


@pytest.fixture(scope="module")
def real() -> NgramDecontam:
    op = NgramDecontam(benchmarks=[GSM8K, HUMANEVAL])
    op.ensure_setup()
    return op


def gsm8k(i: int) -> dict:
    with open(SHARED / "gsm8k_test.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f][i]


def humaneval(i: int) -> dict:
    with gzip.open(SHARED / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f][i]


def test_words_ignore_case_punctuation_and_spacing() -> None:
    assert words("Janet’s ducks lay 16 eggs;\n<<16-3=13>>13 LEFT.") == [
        "janet", "s", "ducks", "lay", "16", "eggs", "16", "3", "13", "13", "left"]
    assert words("def f(x_1):\n    return x_1+1") == ["def", "f", "x_1", "return", "x_1", "1"]


def test_planted_gsm8k_question_is_dropped_naming_the_item(real: NgramDecontam) -> None:
    question = gsm8k(1234)["question"]
    planted = f"{PROSE}\n\nHere is a puzzle I liked:\n{question}\nSolve it before reading on."
    result = real.process(batch(PROSE, planted))
    assert result.kept.column("id").to_pylist() == ["r0"]
    row = result.rejected.to_pylist()[0]
    n_words = len(words(question))
    assert row[BENCHMARK] == "gsm8k" and row[ITEM] == "1234"
    assert row[OVERLAP] == n_words - 12  # every 13-gram of the question, and none around it
    assert row["_reason"] == f"contamination: gsm8k item 1234 ({n_words - 12} shared 13-grams)"


def test_a_reworded_copy_still_matches_through_case_and_punctuation(real: NgramDecontam) -> None:
    question = gsm8k(7)["question"]
    shouted = question.upper().replace(",", " ,").replace(".", "!!")
    row = real.process(batch(shouted)).rejected.to_pylist()[0]
    assert (row[BENCHMARK], row[ITEM]) == ("gsm8k", "7")


def test_planted_humaneval_prompt_is_dropped_naming_the_task(real: NgramDecontam) -> None:
    prompt = humaneval(42)["prompt"]
    planted = f"# utils.py from some repository\nimport os\n\n{prompt}    pass\n"
    result = real.process(batch(planted))
    row = result.rejected.to_pylist()[0]
    assert (row[BENCHMARK], row[ITEM]) == ("humaneval", "HumanEval/42")
    assert row["_reason"].startswith("contamination: humaneval item HumanEval/42 (")


def test_clean_rows_are_kept_with_empty_columns(real: NgramDecontam) -> None:
    result = real.process(batch(PROSE, None, "", "Janet has ducks. She sells eggs at the market."))
    assert result.rejected is None
    assert result.kept.select([BENCHMARK, ITEM, OVERLAP]).to_pylist() == [
        {BENCHMARK: None, ITEM: None, OVERLAP: 0}] * 4


def test_min_overlap_and_drop_false() -> None:
    item = "one two three four five six seven eight nine ten eleven twelve"
    bench = {"name": "b", "items": [item]}
    text = "zero one two three four five six seven nope"  # shares 3 of the item's 5-grams
    below = NgramDecontam(benchmarks=[bench], n=5, min_overlap=4).process(batch(text))
    assert below.rejected is None
    assert below.kept.select([BENCHMARK, ITEM, OVERLAP]).to_pylist() == [{BENCHMARK: "b", ITEM: "0", OVERLAP: 3}]
    dropped = NgramDecontam(benchmarks=[bench], n=5, min_overlap=3).process(batch(text))
    assert dropped.rejected.column("_reason").to_pylist() == ["contamination: b item 0 (3 shared 5-grams)"]
    only_flagged = NgramDecontam(benchmarks=[bench], n=5, min_overlap=3, drop=False).process(batch(text))
    assert only_flagged.rejected is None and only_flagged.kept.column(OVERLAP).to_pylist() == [3]


def test_the_item_sharing_most_ngrams_is_named() -> None:
    a = "alpha beta gamma delta epsilon zeta eta theta"
    b = "gamma delta epsilon zeta eta theta iota kappa lambda mu"
    op = NgramDecontam(benchmarks=[{"name": "x", "items": [a, b]}], n=4)
    row = op.process(batch("so: gamma delta epsilon zeta eta theta iota kappa lambda")).rejected.to_pylist()[0]
    assert (row[ITEM], row[OVERLAP]) == ("1", 6)


def test_items_shorter_than_n_are_one_ngram_and_tiny_ones_are_skipped() -> None:
    items = ["What is the capital city of Australia today?", "Yes or no?"]  # 8 words, 3 words
    op = NgramDecontam(benchmarks=[{"name": "quiz", "items": items}], n=13, min_words=8)
    assert op.index.short_lengths == [8] and op.index.skipped == {"quiz": 1}
    result = op.process(batch("Quiz night! what is the capital city of australia today? Canberra.",
                              "what is the capital city of France today",
                              "Yes or no? Maybe."))
    assert result.rejected.column("_reason").to_pylist() == ["contamination: quiz item 0 (1 shared 8-grams)"]
    assert result.kept.column("id").to_pylist() == ["r1", "r2"]


def test_benchmark_needs_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of path and items"):
        NgramDecontam(benchmarks=[{"name": "b"}])
    with pytest.raises(ValidationError, match="exactly one of path and items"):
        NgramDecontam(benchmarks=[{"name": "b", "path": "x.jsonl", "items": ["y"]}])
    with pytest.raises(ValidationError):
        NgramDecontam(benchmarks=[])


def test_relative_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "b.jsonl").write_text(json.dumps({"q": "one two three four five six"}) + "\n")
    op = NgramDecontam(benchmarks=[{"name": "b", "path": "bench/b.jsonl", "fields": ["q"]}], n=3)
    op.bind(base_dir=tmp_path)
    assert op.process(batch("x one two three y")).rejected.column(ITEM).to_pylist() == ["0"]


def test_unreadable_or_missing_benchmark_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "fine text here"}\n{"q": \n')
    with pytest.raises(ValueError, match="unreadable record"):
        NgramDecontam(benchmarks=[{"name": "b", "path": str(bad), "fields": ["q"]}]).ensure_setup()
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError, match=rf"^{re.escape(str(missing))}: no such file or directory; expected one of"):
        NgramDecontam(benchmarks=[{"name": "b", "path": str(missing)}]).ensure_setup()


def test_index_is_rebuilt_after_pickling(real: NgramDecontam) -> None:
    clone = pickle.loads(pickle.dumps(real))
    assert clone._index is None
    planted = batch(gsm8k(3)["question"])
    assert clone.process(planted).rejected.to_pylist() == real.process(planted).rejected.to_pylist()


def test_every_benchmark_item_flags_itself(real: NgramDecontam) -> None:
    texts = [f"{q['question']}\n{q['answer']}" for q in map(gsm8k, (0, 500, 1318))]
    texts.append(humaneval(163)["prompt"] + humaneval(163)["canonical_solution"])
    rows = real.process(batch(*texts)).rejected.to_pylist()
    assert [(r[BENCHMARK], r[ITEM]) for r in rows] == [
        ("gsm8k", "0"), ("gsm8k", "500"), ("gsm8k", "1318"), ("humaneval", "HumanEval/163")]


@pytest.mark.slow
def test_gutenberg_sample_is_clean(real: NgramDecontam) -> None:
    rows = [r for r in open_reader(SHARED / "gutenberg_sample.jsonl.gz",
                                   ReaderOptions(format="jsonl", chunk_chars=3000))
            if not isinstance(r, BadRecord)]
    result = real.process(batch(*[r["text"] for r in rows]))
    assert result.rejected is None and result.kept.num_rows == len(rows)
