"""select.search: planted-set precision per method, exact top k across shards and workers, threshold
mode, drop: false, reasons, and BM25 scores equal to a bm25s index over the whole corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from gristmill.ops.select.search import METHOD, RANK, SCORE, Search
from gristmill.ops.text import bm25, dsir
from gristmill.records import REASON, from_rows
from gristmill.runner import run_recipe
from tests.conftest import REPO, SHARED_DATA
from tests.ops.select._planted import cooking_examples, planted_corpus

CHEAP = ["bm25", "dsir"]
FAST_EMBED = {"threads": 1, "max_tokens": 128}


def _search(rows: list[dict], shards: int = 1, **params: Any) -> tuple[list[dict], list[dict]]:
    """Run the operator as a run does: summarize each shard, fit once, apply to each shard."""
    op = Search(**params)
    op.ensure_setup()
    size = -(-len(rows) // shards)
    batches = [from_rows(rows[i:i + size]) for i in range(0, len(rows), size)]
    op.fit([op.summarize(b) for b in batches])
    kept, rejected = [], []
    for b in batches:
        result = op.process(b)
        kept += result.kept.to_pylist()
        rejected += [] if result.rejected is None else result.rejected.to_pylist()
    return kept, rejected


def _precision(kept: list[dict], planted: set[str]) -> float:
    return sum(r["id"] in planted for r in kept) / len(planted)


# ---- planted-set precision -------------------------------------------------------------------
@pytest.mark.parametrize("method", [*CHEAP, "embedding"])
def test_finds_the_planted_passages_and_not_with_other_examples(method: str) -> None:
    rows, planted, examples = planted_corpus()
    extra = FAST_EMBED if method == "embedding" else {}
    kept, _ = _search(rows, method=method, k=len(planted), examples=examples, **extra)
    assert len(kept) == len(planted)
    assert _precision(kept, planted) >= 0.9, sorted(r["id"] for r in kept)
    # the control: examples of another topic find (almost) none of them, so the figure above measures the search
    kept, _ = _search(rows, method=method, k=len(planted), examples=cooking_examples(), **extra)
    assert _precision(kept, planted) <= 0.1
    assert sum(r["id"].startswith("cooking-") for r in kept) >= 8


def test_dsir_published_sum_favours_short_rows_and_length_norm_does_not() -> None:
    rows, planted, examples = planted_corpus()
    short = [{"id": f"short-{i}", "text": w} for i, w in enumerate(["The bank.", "A tune.", "Bare wood.", "Stars."])]
    kept, _ = _search(rows + short, method="dsir", k=4, examples=examples, length_norm=False)
    assert {r["id"] for r in kept} == {r["id"] for r in short}  # the paper's sum: the shortest rows win
    kept, _ = _search(rows + short, method="dsir", k=4, examples=examples)
    assert sum(r["id"] in planted for r in kept) >= 3  # a 3-feature row's mean is noisy, but no longer favoured


# ---- the global cut -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", CHEAP)
def test_top_k_is_exact_and_the_same_for_any_sharding(method: str) -> None:
    rows, planted, examples = planted_corpus()
    params = {"method": method, "k": 7, "examples": examples, "drop": False}
    one, _ = _search(rows, 1, **params)
    many, _ = _search(rows, 5, **params)
    assert one == many  # scores, ranks, row order: identical
    by_rank = sorted(one, key=lambda r: r[RANK])
    assert [r[RANK] for r in by_rank] == list(range(1, len(rows) + 1))
    if method == "bm25" or params.get("sampling") == "top":
        scores = [r[SCORE] for r in by_rank]
        assert scores == sorted(scores, reverse=True)
    kept, rejected = _search(rows, 5, **{**params, "drop": True})
    assert sorted(r["id"] for r in kept) == sorted(r["id"] for r in by_rank[:7])
    assert len(kept) == 7 and len(rejected) == len(rows) - 7


def test_ties_are_ranked_by_input_order() -> None:
    rows = [{"id": f"r{i}", "text": "sea ship sail"} for i in range(6)]
    kept, rejected = _search(rows, 3, method="bm25", k=2, examples=["the ship at sea"])
    assert [r["id"] for r in kept] == ["r0", "r1"]
    assert [r[REASON] for r in rejected] == [f"search_rank: {i} > k=2" for i in range(3, 7)]


def test_dsir_gumbel_sampling_is_seeded_per_row() -> None:
    noise = dsir.gumbel(["a", "b", "c"], 0)
    assert np.array_equal(noise, dsir.gumbel(["a", "b", "c"], 0))
    assert np.array_equal(noise[1:], dsir.gumbel(["b", "c"], 0))  # a row's draw is its own, whatever its batch
    assert not np.array_equal(noise, dsir.gumbel(["a", "b", "c"], 1))
    rows = [{"id": f"r{i}", "text": "sea ship sail wind"} for i in range(40)]  # equal weights: the noise decides
    picks = {seed: {r["id"] for r in _search(rows, 2, method="dsir", k=5, seed=seed, examples=["sea ship"])[0]}
             for seed in (0, 1)}
    assert picks[0] != picks[1]
    top = {r["id"] for r in _search(rows, 2, method="dsir", k=5, sampling="top", examples=["sea ship"])[0]}
    assert top == {f"r{i}" for i in range(5)}


def test_threshold_mode_keeps_rows_at_or_above_min_score() -> None:
    rows, planted, examples = planted_corpus()
    scored, _ = _search(rows, method="bm25", examples=examples, drop=False)
    cut = sorted(r[SCORE] for r in scored)[-12]
    kept, rejected = _search(rows, 3, method="bm25", examples=examples, min_score=cut)
    assert {r["id"] for r in kept} == {r["id"] for r in scored if r[SCORE] >= cut}
    assert len(kept) == 12
    assert all(r[REASON].startswith("search_score: ") and f"< min_score={cut:g}" in r[REASON] for r in rejected)
    both, _ = _search(rows, 3, method="bm25", examples=examples, min_score=cut, k=5)
    assert len(both) == 5


def test_drop_false_writes_the_columns_on_every_row() -> None:
    rows, _, examples = planted_corpus()
    rows = rows + [{"id": "blank", "text": "  "}, {"id": "null", "text": None}]
    kept, rejected = _search(rows, 2, method="dsir", examples=examples, drop=False)
    assert not rejected and len(kept) == len(rows)
    for r in kept:
        assert r[METHOD] == "dsir"
        assert (r[SCORE] is None) == (r["id"] in ("blank", "null")) == (r[RANK] is None)


def test_reasons() -> None:
    rows, _, examples = planted_corpus()
    rows = rows + [{"id": "null", "text": None}]
    kept, rejected = _search(rows, 2, method="bm25", examples=examples, k=10)
    reasons = {r["id"]: r[REASON] for r in rejected}
    assert reasons["null"] == "search_score: no text"
    ranks = {r["id"]: r[RANK] for r in rejected}
    assert all(reasons[i] == f"search_rank: {ranks[i]} > k=10" for i in reasons if i != "null")
    assert all(r[RANK] <= 10 and isinstance(r[SCORE], float) for r in kept)


# ---- BM25 against the library -------------------------------------------------------------------
def test_bm25_scores_equal_a_bm25s_index_over_the_whole_corpus() -> None:
    import bm25s

    rows, _, examples = planted_corpus()
    texts = [r["text"] for r in rows]
    query = bm25.query_terms(examples, True)
    shards = [bm25.shard_counts(texts[i:i + 17], query, True) for i in range(0, len(texts), 17)]
    ours = np.concatenate(bm25.bm25_scores(shards, query, k1=1.2, b=0.6, variant="lucene"))
    index = bm25s.BM25(k1=1.2, b=0.6, method="lucene")
    index.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    for e, example in enumerate(examples):
        tokens = bm25s.tokenize([example], stopwords="en", return_ids=False, show_progress=False)[0]
        np.testing.assert_allclose(ours[:, e], index.get_scores(tokens), rtol=1e-5, atol=1e-6)


# ---- parameters, files, runs ---------------------------------------------------------------------
def test_parameters_are_checked() -> None:
    with pytest.raises(ValidationError, match="exactly one of examples and examples_path"):
        Search(k=3)
    with pytest.raises(ValidationError, match="exactly one of examples and examples_path"):
        Search(k=3, examples=["a"], examples_path="x.jsonl")
    with pytest.raises(ValidationError, match="give k or min_score"):
        Search(examples=["a sea voyage"])
    with pytest.raises(ValidationError, match="non-blank"):
        Search(examples=[" "], k=1)
    Search(examples=["a sea voyage"], drop=False)  # ranks only
    assert Search(examples=["a"], k=1, method="embedding").required_modules() == ["torch", "transformers"]
    assert Search(examples=["a"], k=1, method="bm25").required_modules() == ["bm25s"]
    assert Search(examples=["a"], k=1, method="dsir").required_modules() == []


def test_examples_from_a_file_relative_to_the_recipe(tmp_path: Path) -> None:
    rows, planted, examples = planted_corpus()
    (tmp_path / "seeds.jsonl").write_text("".join(json.dumps({"prompt": e}) + "\n" for e in examples), encoding="utf-8")
    op = Search(method="bm25", k=len(planted), examples_path="seeds.jsonl", examples_fields=["prompt"])
    op.bind(base_dir=tmp_path)
    assert op.input_files() == [tmp_path / "seeds.jsonl"]
    assert op.examples() == examples
    batch = from_rows(rows)
    op.fit([op.summarize(batch)])
    kept = op.process(batch).kept.column("id").to_pylist()
    assert set(kept) == planted


@pytest.mark.parametrize("method", CHEAP)
def test_a_run_gives_the_same_output_with_one_or_two_workers(tmp_path: Path, method: str) -> None:
    rows, planted, examples = planted_corpus()
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    outputs = []
    for workers in (1, 2):
        recipe = {"name": f"w{workers}", "input": {"path": str(tmp_path / "in.jsonl"), "shard_rows": 13},
                  "steps": [{"op": "select.search", "params": {"method": method, "k": 10, "examples": examples}}],
                  "output": {"format": "jsonl"}, "executor": {"workers": workers}}
        summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)
        data = sorted((summary.run_dir / "data").glob("*.jsonl"))
        outputs.append([line for f in data for line in f.read_text(encoding="utf-8").splitlines()])
        assert summary.stats["steps"][0]["rows_out"] == 10
    assert outputs[0] == outputs[1]
    assert sum(json.loads(line)["id"] in planted for line in outputs[0]) >= 9


def test_an_empty_batch_gets_typed_columns() -> None:
    op = Search(method="dsir", k=2, examples=["sea"])
    empty = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    op.fit([op.summarize(empty)])
    out = op.process(empty).kept
    assert out.schema.field(SCORE).type == pa.float64() and out.schema.field(RANK).type == pa.int64()


# ---- the recipe ------------------------------------------------------------------------------------
def test_the_search_recipe_validates() -> None:
    from gristmill.recipe import load_recipe

    recipe = load_recipe(REPO / "recipes" / "search_gutenberg.yaml")
    step = recipe.steps[-1].op
    assert step.name == "select.search" and len(step.examples()) == 6
    assert step.input_files() == [REPO / "recipes" / "data" / "search_seeds_sea.jsonl"]


@pytest.mark.slow
def test_the_search_recipe_pulls_sea_passages_from_gutenberg(tmp_path: Path) -> None:
    assert (SHARED_DATA / "gutenberg_sample.jsonl.gz").exists(), "CI runs with ../shared beside the clone"
    summary = run_recipe(REPO / "recipes" / "search_gutenberg.yaml", runs_dir=tmp_path, progress=False, report=False)
    rows = [json.loads(line) for line in (summary.run_dir / "data" / "data.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 200 and sorted(r[RANK] for r in rows) == list(range(1, 201))
    voyages = ("Robinson Crusoe", "Yule-Tide Yarns", "Of Captain Mission", "An Outcast of the Islands", "Moby Dick")
    assert sum(r["title"].endswith(voyages) for r in rows) >= 100  # 136 of 200 when written
