from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gristmill.experiments import collapse as c
from gristmill.experiments import real_data
from gristmill.experiments.generation_stats import curve_items, fmt_ci

REAL = [f"real document {i} about the king" for i in range(100)]
SYN = [[f"synthetic g{g} doc {i}" for i in range(100)] for g in range(4)]

TINY_LM = {"vocab_size": 300, "context": 16, "n_layer": 1, "n_head": 2, "d_model": 16, "dropout": 0.0, "steps": 3,
           "batch_size": 4, "warmup": 1, "eval_every": 1000, "eval_batches": 1, "checkpoint_every": 1000}


def test_generation_zero_trains_on_real_data_in_every_regime():
    for regime in c.REGIMES:
        docs, n_real = c.training_set(regime, 0, REAL, [])
        assert docs == REAL and n_real == 100


def test_replace_has_no_real_text_after_generation_zero():
    for g in (1, 2, 3):
        docs, n_real = c.training_set("replace", g, REAL, SYN)
        assert n_real == 0 and docs == SYN[g - 1]
        assert not set(docs) & set(REAL)


def test_accumulate_grows_by_one_generation_each_time():
    sizes = []
    for g in (1, 2, 3):
        docs, n_real = c.training_set("accumulate", g, REAL, SYN)
        assert n_real == 100 and docs[:100] == REAL
        assert all(d in docs for gg in range(g) for d in SYN[gg]) and not set(SYN[g]) & set(docs)
        sizes.append(len(docs))
    assert sizes == [200, 300, 400]


def test_keep_real_has_the_right_fraction_and_size():
    docs, n_real = c.training_set("keep-real", 2, REAL, SYN, keep_real=0.1, rng=random.Random(1))
    assert len(docs) == 100 and n_real == 10
    assert sum(d in set(REAL) for d in docs) == 10
    assert sum(d in set(SYN[1]) for d in docs) == 90          # only the newest generation's samples
    docs, n_real = c.training_set("keep-real", 1, REAL, SYN, keep_real=0.25)
    assert n_real == 25 and sum(d in set(REAL) for d in docs) == 25


def test_training_set_rejects_unknown_regime_and_missing_history():
    with pytest.raises(ValueError, match="unknown regime"):
        c.training_set("mix", 1, REAL, SYN)
    with pytest.raises(ValueError, match="generations 0..2"):
        c.training_set("replace", 3, REAL, SYN[:1])


def test_load_documents_chunks_text_and_skips_bad_jsonl(tmp_path: Path):
    txt = tmp_path / "t.txt"
    txt.write_text("\n".join(f"line {i} " + "x" * 20 for i in range(10)), encoding="utf-8")
    docs, skipped = real_data.load_documents(txt, doc_chars=60)
    assert len(docs) == 4 and all(len(d) >= 55 for d in docs[:-1]) and not skipped
    jl = tmp_path / "d.jsonl"
    jl.write_text('{"text": "hello there"}\n{broken\n{"text": 3}\n{"text": "second doc"}\n', encoding="utf-8")
    docs, skipped = real_data.load_documents(jl, doc_chars=1000)
    assert docs == ["hello there", "second doc"]
    assert len(skipped) == 2 and skipped[0].startswith(f"{jl}:2:") and f"{jl}:3:" in skipped[1]


def test_split_is_fixed_by_data_seed_and_disjoint():
    docs = [f"d{i}" for i in range(50)]
    tr, va = real_data.split_documents(docs, 0.1)
    assert len(va) == 5 and len(tr) == 45 and not set(tr) & set(va)
    assert real_data.split_documents(docs, 0.1) == (tr, va)
    tr2, va2 = real_data.split_documents(docs, 0.1, max_docs=20)
    assert len(tr2) + len(va2) == 20


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    rng = random.Random(0)
    vocab = "king queen lord lady sword crown night day love death honour blood fair sweet".split()
    lines = [" ".join(rng.choice(vocab) for _ in range(8)) for _ in range(120)]
    p = tmp_path / "corpus.txt"
    p.write_text("\n".join(lines), encoding="utf-8")
    return p


def tiny_spec(corpus: Path, **over) -> c.LoopSpec:
    dec = c.default_decode(max_new_tokens=12)
    spec = c.LoopSpec(data=str(corpus), conditions=[c.Condition(r, r, dec) for r in ("replace", "accumulate")],
                      seeds=[0], generations=2, doc_chars=120, lm=TINY_LM, threads=1)
    for k, v in over.items():
        setattr(spec, k, v)
    return spec


def test_resume_skips_finished_cells_and_does_not_duplicate(corpus: Path, tmp_path: Path):
    out = tmp_path / "run"
    _, summary = c.run_collapse(tiny_spec(corpus), out, progress=False)
    assert set(summary) == {"replace", "accumulate"} and set(summary["replace"]) == {"0", "1"}
    cells = c.load_cells(out)
    assert len(cells) == 4
    # accumulate's training set grows; replace's synthetic one has no real documents
    by = {(x["condition"], x["generation"]): x for x in cells}
    assert by[("accumulate", 1)]["train_docs"] == 2 * by[("accumulate", 0)]["train_docs"]
    assert by[("replace", 1)]["train_real_docs"] == 0 and by[("accumulate", 1)]["train_real_docs"] > 0
    # generation 0 is shared: same model, same samples for equal decoding
    assert by[("replace", 0)]["perplexity"] == by[("accumulate", 0)]["perplexity"]
    assert by[("replace", 0)]["samples"] == by[("accumulate", 0)]["samples"]

    finished = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("gen*.json")}
    last = c.cell_path(out, "replace", 0, 1)
    last.unlink()                                   # as if the run had been killed during its last cell
    _, summary2 = c.run_collapse(tiny_spec(corpus), out, resume=True, progress=False)
    assert last.is_file()
    for p, mtime in finished.items():
        if p != last:
            assert p.stat().st_mtime_ns == mtime, f"{p} was recomputed"
    assert len(c.load_cells(out)) == 4
    report = json.loads((out / "report.json").read_text())
    tables = [i for i in report if i["type"] == "table"]
    assert [len(t["rows"]) for t in tables] == [2, 2]
    assert len({i["title"] for i in report}) == len(report)
    assert summary2["replace"]["1"]["perplexity"]["values"] == summary["replace"]["1"]["perplexity"]["values"]

    # a resumed run may add a seed: only its cells are computed
    _, summary3 = c.run_collapse(tiny_spec(corpus, seeds=[0, 1]), out, resume=True, progress=False)
    assert len(c.load_cells(out)) == 8 and summary3["replace"]["1"]["perplexity"]["n"] == 2
    assert c.resume_mismatch(out, {**tiny_spec(corpus, seeds=[0, 1]).to_json(), "tail_n": 2, "tail_max": 3}) == []
    assert c.resume_mismatch(out, {**tiny_spec(corpus, keep_real=0.5).to_json(), "tail_n": 2,
                                   "tail_max": 3}) == ["keep_real"]


def test_aggregate_mean_and_interval_over_seeds():
    cells = [{"condition": "r", "generation": 0, "seed": s, "perplexity": v, "length": {"p50": v}}
             for s, v in enumerate([10.0, 12.0, 14.0])]
    a = c.aggregate(cells, "perplexity")["r"][0]
    assert a["mean"] == 12.0 and a["n"] == 3 and a["lo"] < 12.0 < a["hi"]
    assert c.aggregate(cells, "length.p50")["r"][0]["mean"] == 12.0
    assert fmt_ci(a) == f"12.00 ± {(a['hi'] - a['lo']) / 2:.2f}"
    assert (a["lo"], a["hi"]) == pytest.approx((12.0 - 4.302653 * 2 / 3 ** 0.5, 12.0 + 4.302653 * 2 / 3 ** 0.5))


def test_aggregate_one_seed_has_no_interval_and_missing_values_are_left_out():
    cells = [{"condition": "r", "generation": 0, "seed": 0, "perplexity": 10.0},
             {"condition": "r", "generation": 0, "seed": 1, "perplexity": None},
             {"condition": "r", "generation": 1, "seed": 0, "perplexity": 8.0},
             {"condition": "r", "generation": 1, "seed": 1, "perplexity": 9.0},
             {"condition": "r", "generation": 2, "seed": 0, "perplexity": None}]
    agg = c.aggregate(cells, "perplexity")["r"]
    assert (agg[0]["mean"], agg[0]["lo"], agg[0]["hi"], agg[0]["n"]) == (10.0, None, None, 1)
    assert fmt_ci(agg[0]) == "10.00" and fmt_ci(agg[2]) == "-" and fmt_ci(None) == "-"
    assert agg[1]["n"] == 2 and agg[1]["hi"] - agg[1]["mean"] == pytest.approx(12.7062047 * 0.5)
    series, bands = curve_items(c.aggregate(cells, "perplexity"))
    assert series["r"] == ([0, 1], [10.0, 8.5])
    assert bands["r"][0] == [0, 1] and bands["r"][1][0] == bands["r"][2][0] == 10.0
