from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gristmill.pipeline.ingest import StrictInputError
from gristmill.runner import run_recipe
from tests.conftest import recipe_dict


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_run_writes_a_complete_run_directory(tmp_path: Path, docs_file: Path) -> None:
    s = run_recipe(recipe_dict(docs_file), runs_dir=tmp_path / "runs", progress=False)
    run = s.run_dir
    for name in ("recipe.yaml", "stats.json", "quarantine.jsonl", "report.html"):
        assert (run / name).is_file(), name
    stats = s.stats
    assert stats["input"]["rows"] == 60 and stats["input"]["quarantined"] == 2
    quarantine = read_jsonl(run / "quarantine.jsonl")
    assert {q["line"] for q in quarantine} == {11, 21}
    assert all(q["source"] == str(docs_file) for q in quarantine)
    steps = stats["steps"]
    assert [st["op"] for st in steps] == ["clean.normalize", "filter.length", "dedup.exact", "split.train_test"]
    for a, b in zip(steps, steps[1:]):
        assert a["rows_out"] == b["rows_in"]
    for st in steps:
        assert st["rows_in"] - st["rows_out"] == sum(st["dropped"].values())
    assert set(steps[1]["dropped"]) == {"min_words"} and set(steps[2]["dropped"]) == {"duplicate"}
    train, test = read_jsonl(run / "data" / "train.jsonl"), read_jsonl(run / "data" / "test.jsonl")
    assert len(train) + len(test) == stats["output"]["rows"] == steps[-1]["rows_out"]
    assert stats["output"]["splits"] == {"test": len(test), "train": len(train)}
    ids = [r["id"] for r in train + test]
    assert len(ids) == len(set(ids))
    rejected = pq.read_table(run / "rejected" / "01-filter.length.parquet").to_pylist()
    assert len(rejected) == steps[1]["rows_in"] - steps[1]["rows_out"]
    assert all(r["_reason"].startswith("min_words: ") for r in rejected)
    dups = pq.read_table(run / "rejected" / "02-dedup.exact.parquet").to_pylist()
    kept_ids = set(ids)
    assert all(r["_reason"].split("of ", 1)[1] in kept_ids for r in dups)


def test_rerun_reuses_and_a_changed_step_reruns_only_itself_and_later(tmp_path: Path, docs_file: Path) -> None:
    runs = tmp_path / "runs"
    first = run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False)
    assert not any(st["cached"] for st in first.stats["steps"])
    again = run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False)
    assert all(st["cached"] for st in again.stats["steps"])
    changed = run_recipe(recipe_dict(docs_file), runs_dir=runs, progress=False,
                         overrides=["steps.1.params.min_words=25"])
    assert [st["cached"] for st in changed.stats["steps"]] == [True, False, False, False]
    assert changed.stats["steps"][1]["rows_out"] < first.stats["steps"][1]["rows_out"]
    assert (runs / "t" / "recipe.yaml").read_text().count("min_words: 25") == 1


def test_parallel_and_inline_runs_agree(tmp_path: Path, docs_file: Path) -> None:
    a = run_recipe(recipe_dict(docs_file), runs_dir=tmp_path / "a", progress=False, workers=1)
    b = run_recipe(recipe_dict(docs_file), runs_dir=tmp_path / "b", progress=False, workers=2)
    for name in ("train.jsonl", "test.jsonl"):
        assert (a.run_dir / "data" / name).read_bytes() == (b.run_dir / "data" / name).read_bytes()


def test_strict_fails_at_the_first_bad_record(tmp_path: Path, docs_file: Path) -> None:
    with pytest.raises(StrictInputError, match=r"docs\.jsonl:11: invalid JSON"):
        run_recipe(recipe_dict(docs_file), runs_dir=tmp_path / "runs", progress=False, strict=True)


def test_no_steps_and_other_formats(tmp_path: Path, docs_file: Path) -> None:
    s = run_recipe(recipe_dict(docs_file, steps=[], output={"format": "parquet"}), runs_dir=tmp_path, progress=False)
    assert pq.read_table(s.run_dir / "data" / "data.parquet").num_rows == 60


def test_repeated_ids_are_made_unique(tmp_path: Path) -> None:
    src = tmp_path / "dup.jsonl"
    src.write_text("".join(json.dumps({"id": "same", "text": f"text number {i} " * 5}) + "\n" for i in range(5)))
    s = run_recipe(recipe_dict(src, steps=[]), runs_dir=tmp_path, progress=False)
    rows = read_jsonl(s.run_dir / "data" / "data.jsonl")
    assert [r["id"] for r in rows] == ["same", "same~2", "same~3", "same~4", "same~5"]
    assert s.stats["input"]["ids_renamed"] == 4


def test_editing_a_file_named_in_params_reruns_the_step(tmp_path: Path, docs_file: Path) -> None:
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"id": "q1", "text": "nothing in common with the documents at all here"}) + "\n")
    steps = [{"op": "clean.normalize"},
             {"op": "decontam.ngram", "params": {"benchmarks": [{"name": "b", "path": str(bench)}], "n": 5}}]
    first = run_recipe(recipe_dict(docs_file, steps=steps), runs_dir=tmp_path / "runs", progress=False)
    assert first.stats["steps"][1]["dropped"] == {}
    import time
    time.sleep(0.01)
    bench.write_text(json.dumps({"id": "q1", "text": "alpha beta gamma delta epsilon zeta eta theta iota"}) + "\n")
    second = run_recipe(recipe_dict(docs_file, steps=steps), runs_dir=tmp_path / "runs", progress=False)
    assert [st["cached"] for st in second.stats["steps"]] == [True, False]
    assert second.stats["steps"][1]["dropped"].get("contamination", 0) > 0


def test_a_run_that_keeps_nothing_still_writes_chat_output(tmp_path: Path, docs_file: Path) -> None:
    data = recipe_dict(docs_file, steps=[{"op": "filter.length", "params": {"min_words": 10_000}}],
                       output={"format": "openai"})
    s = run_recipe(data, runs_dir=tmp_path, progress=False)
    assert s.stats["output"]["rows"] == 0
    assert (s.run_dir / "data" / "data.jsonl").read_text() == ""
