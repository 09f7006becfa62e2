"""The Generation section: LLM usage per step and diversity of the generated set, cached per fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.models.embed import load_sentence_encoder
from gristmill.pipeline.run_reader import RunReader
from gristmill.report.generation import CACHE_FILE, distinct_n, fingerprint, nearest_neighbour_distance, render
from gristmill.report.sections import SECTIONS

USAGE = {"requests": 40, "cached": 10, "errors": 2, "truncated": 3, "tokens_in": 5000, "tokens_out": 1200,
         "seconds": 4.0}

TOPICS = ["Write a haiku about autumn leaves.", "Explain how a binary search works.",
          "List three uses of baking soda.", "Translate 'good morning' into French.",
          "Summarize the plot of Hamlet in two sentences.", "Give a recipe for lentil soup.",
          "Classify the sentiment of: I loved this film.", "Convert 5 miles to kilometres."]


def _generation_run(root: Path) -> Path:
    run = root / "runs" / "gen"
    step = {"index": 0, "step": "00-generate.self_instruct", "op": "generate.self_instruct", "kind": "generator",
            "rows_in": 0, "rows_out": len(TOPICS), "dropped": {}, "seconds": 4.2, "cached": False,
            "fingerprint": "abc123", "llm": USAGE}
    stats = {"run": "gen", "input": {"rows": 0}, "steps": [step], "output": {"rows": len(TOPICS), "format": "chat"}}
    run.mkdir(parents=True)
    (run / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    shard = run / "cache" / "step-00-generate.self_instruct-abc123" / "shard-00000"
    shard.mkdir(parents=True)
    rows = pa.table({"id": [f"g{i}" for i in range(len(TOPICS))],
                     "instruction": TOPICS, "input": [""] * len(TOPICS), "output": ["Sure."] * len(TOPICS)})
    pq.write_table(rows, shard / "data.parquet")
    return run


def test_registered():
    assert "generation" in [s.id for s in SECTIONS]


def test_distinct_n_hand_computed():
    texts = ["The cat sat", "the cat ran"]
    # unigrams: the, cat, sat, the, cat, ran -> 4 unique of 6
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (the cat), (cat sat), (the cat), (cat ran) -> 3 unique of 4
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    # trigrams: (the cat sat), (the cat ran) -> 2 of 2
    assert distinct_n(texts, 3) == 1.0
    assert distinct_n(["one"], 2) == 0.0


def test_nearest_neighbour_distance():
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    # rows 0 and 1 are each other's neighbour (distance 0); row 2's nearest is at distance 1
    assert nearest_neighbour_distance(v) == pytest.approx(1 / 3)


def test_section_with_generation_step(tmp_path: Path):
    run = _generation_run(tmp_path)
    html = render(RunReader(run))
    assert "00-generate.self_instruct" in html and "<svg" in html
    assert "10 (25.0%)" in html  # cached share
    assert "300.0" in html  # 1200 tokens out / 4 s
    assert "5,000" in html and "1,200" in html
    saved = json.loads((run / "summaries" / CACHE_FILE).read_text(encoding="utf-8"))
    assert saved["fingerprint"] == fingerprint([f"g{i}" for i in range(len(TOPICS))])
    figures = saved["figures"]
    assert figures["rows"] == len(TOPICS)
    assert 0 < figures["distinct_1"] <= 1 and figures["distinct_3"] >= figures["distinct_1"]
    assert 0 <= figures["rouge_l"] < 0.5
    assert 0 < figures["nn_distance"] < 1
    assert f"{figures['rouge_l']:.3f}" in html

    # a rebuild reads the saved figures instead of recomputing them
    saved["figures"]["distinct_2"] = 0.123456
    (run / "summaries" / CACHE_FILE).write_text(json.dumps(saved), encoding="utf-8")
    assert "0.123" in render(RunReader(run))


def test_no_generation_step_does_not_load_model(run_dir: Path):
    before = load_sentence_encoder.cache_info()
    html = render(RunReader(run_dir))
    assert "none: no generation step" in html
    after = load_sentence_encoder.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert not (run_dir / "summaries" / CACHE_FILE).exists()
