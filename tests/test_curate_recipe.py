"""recipes/curate_gutenberg*.yaml: they validate, and (slow) the default chain runs with planted contamination."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from gristmill.recipe import load_recipe
from gristmill.runner import run_recipe
from tests.conftest import REPO, SHARED_DATA

RECIPE = REPO / "recipes" / "curate_gutenberg.yaml"
CHAIN = ["clean.normalize", "decontam.ngram", "dedup.lines", "lang.identify", "filter.language", "quality.gopher",
         "quality.gopher_repetition", "quality.c4", "quality.fineweb", "dedup.exact", "dedup.minhash",
         "split.train_test"]


def test_recipe_validates_and_finds_its_files() -> None:
    recipe = load_recipe(RECIPE)
    assert [s.op.name for s in recipe.steps] == CHAIN
    assert recipe.input_paths == [(SHARED_DATA / "gutenberg_sample.jsonl.gz").resolve()]
    decontam = recipe.steps[CHAIN.index("decontam.ngram")].op
    for bench in decontam.params.benchmarks:
        assert decontam.resolve_path(bench.path).resolve().is_file(), bench.path  # relative to the recipe


def test_models_recipe_adds_perplexity_and_semantic_dedup() -> None:
    recipe = load_recipe(REPO / "recipes" / "curate_gutenberg_models.yaml")
    names = [s.op.name for s in recipe.steps]
    assert [n for n in names if n not in ("quality.perplexity", "dedup.semantic")] == CHAIN
    assert names.index("quality.perplexity") < names.index("dedup.exact")
    assert names.index("dedup.minhash") < names.index("dedup.semantic") < names.index("split.train_test")


def _prose(topic: str) -> str:
    return (f"It was late in the autumn when the letter about {topic} came to the house, and nobody "
            "in the family could say at first who had written it. The paper was thin and the hand was "
            "careful, as if the writer had taken a long time over every word of it. My father read it "
            "twice at the window before he said anything to us. Then he folded it, put it in his coat, "
            "and told us that we would all know soon enough what it meant. ")


def _planted(tmp_path: Path) -> Path:
    with open(SHARED_DATA / "gsm8k_test.jsonl", encoding="utf-8") as f:
        question = [json.loads(line) for line in f][321]["question"]
    with gzip.open(SHARED_DATA / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        prompt = [json.loads(line) for line in f][17]["prompt"]
    rows = [
        {"id": "planted-gsm8k", "title": "Planted", "author": "Test",
         "text": _prose("the market") + "\n\nThe letter said: " + question + "\n\n" + _prose("the answer")},
        {"id": "planted-humaneval", "title": "Planted", "author": "Test",
         "text": _prose("the program") + "\n\n" + prompt + "\n\n" + _prose("the code")},
        {"id": "planted-clean", "title": "Planted", "author": "Test",
         "text": _prose("the orchard") + "\n\nThe orchard lay on the south side of the hill, below the church. "
                 "In good years the trees gave more apples than the whole village could eat, and the rest "
                 "went to the cider press by the mill. Old Thomas kept the key to the gate and let the "
                 "children in on Sundays after the service. Nobody remembered who had planted the first "
                 "trees, though everyone had a story about it."},
    ]
    path = tmp_path / "planted.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
def test_curation_chain_on_the_gutenberg_sample(tmp_path: Path) -> None:
    data = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    data["input"]["path"] = [data["input"]["path"], str(_planted(tmp_path))]
    recipe = load_recipe(data, base_dir=RECIPE.parent)
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False)
    steps = {st["op"]: st for st in summary.stats["steps"]}
    assert list(steps) == CHAIN
    assert summary.stats["input"]["rows"] > 15_000

    # decontamination names the planted benchmark items and nothing else
    rejected = pq.read_table(summary.run_dir / "rejected" / "01-decontam.ngram.parquet").to_pylist()
    assert sorted((r["id"], r["decontam.benchmark"], r["decontam.item"]) for r in rejected) == [
        ("planted-gsm8k#0", "gsm8k", "321"), ("planted-humaneval#0", "humaneval", "HumanEval/17")]

    # boilerplate: the licence chunks become empty; the French book goes by language
    assert steps["dedup.lines"]["dropped"]["empty_after_line_dedup"] > 300
    assert steps["filter.language"]["dropped"]["language"] > 100
    for op in ("quality.gopher", "quality.gopher_repetition", "dedup.exact"):
        assert steps[op]["rows_out"] <= steps[op]["rows_in"]

    out = pq.read_table(summary.run_dir / "data")
    texts = out.column("text").to_pylist()
    assert "planted-clean#0" in out.column("id").to_pylist()
    assert not any("Project Gutenberg Literary Archive Foundation is a non profit" in t for t in texts)
    assert set(out.column("split").to_pylist()) == {"train", "test"}
    assert set(out.column("lang.code").to_pylist()) == {"en"}
