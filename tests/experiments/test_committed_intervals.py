"""The committed experiment summaries' intervals are gristmill.stats t-intervals of their own per-seed figures.

Issue 17: experiments/results/*.json were recomputed by experiments/recompute_intervals.py (no
training rerun). These tests pin the published figures to the per-seed values they come from.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from gristmill import stats

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "results"


def _results(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_test_exp_{name}", ROOT / "experiments" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sft_curated_vs_raw_perplexity_is_a_t_interval_over_two_seeds() -> None:
    r = _results("sft_curated_vs_raw")
    unc, cur, base = r["summary"]["uncurated"], r["summary"]["curated"], r["summary"]["base"]
    # the issue: "± 0.082" was 1.96 standard errors over 2 seeds; with t(0.975, 1) = 12.71 it is ± 0.53
    assert unc["human_ppl_ci95"] == pytest.approx(stats.t_interval(unc["human_ppl_per_seed"]).half_width)
    assert round(unc["human_ppl_ci95"], 3) == 0.530 and round(cur["human_ppl_ci95"], 3) == 0.746
    assert base["human_ppl_ci95"] is None  # one model: no interval
    p = r["paired_curated_minus_uncurated"]
    d = stats.paired_difference(cur["human_ppl_per_seed"], unc["human_ppl_per_seed"])
    assert (p["human_ppl_diff"], p["human_ppl_diff_ci95"], p["human_ppl_diff_p"]) == pytest.approx(
        (d.estimate, d.half_width, d.p_value))
    # judge intervals (over prompts x seeds): t quantile of n - 1 = scored answers - 1
    assert (unc["judge_n"], cur["judge_n"], base["judge_n"]) == (3, 2, 2)
    assert round(unc["judge_ci95"], 2) == 12.91 and round(unc["judge_expected_ci95"], 3) == 0.200


def test_sft_curated_vs_raw_markdown_is_rebuilt_from_the_json(tmp_path: Path) -> None:
    mod = _script("sft_curated_vs_raw")
    mod.write_md(_results("sft_curated_vs_raw"), tmp_path)
    md = (tmp_path / "sft_curated_vs_raw.md").read_text()
    assert md == (RESULTS / "sft_curated_vs_raw.md").read_text()
    assert "| uncurated | 2 | 9.985 ± 0.530 |" in md and "| base | 1 | 10.037 (no interval) |" in md


def test_wnut17_ner_f1_and_paired_differences_are_t_based() -> None:
    r = _results("wnut17_ner")
    for v in r["variants"].values():
        ci = stats.t_interval(v["test_f1"])
        assert v["test_f1_ci95"] == pytest.approx(ci.bounds) and v["test_f1_std"] == pytest.approx(ci.sd)
    assert [round(r["variants"][v]["test_f1_half_width"], 3) for v in ("baseline", "augmented", "baseline_long")] \
        == [0.015, 0.009, 0.011]
    d = r["augmented_minus_baseline_long"]
    assert (round(d["mean"], 3), round(d["half_width"], 3), round(d["p_value"], 2)) == (0.004, 0.007, 0.12)
    mod = _script("wnut17_ner")
    md = RESULTS / "wnut17_ner.md"
    assert mod.markdown(r, mod.kept_reading(md)) == md.read_text()


def test_tinyshakespeare_final_perplexity_interval() -> None:
    f = _results("tinyshakespeare_lm")["final_val_perplexity"]
    ci = stats.t_interval(f["per_seed"])
    assert f["ci95"] == pytest.approx(ci.bounds) and round(f["half_width"], 1) == 2.4 and round(f["std"], 2) == 0.27


def test_selection_and_generation_experiments_match_a_recomputation() -> None:
    r = _results("selection_wnut17")
    for by_b in r["strategies"].values():
        for v in by_b.values():
            ci = stats.t_interval(v["per_seed"])  # per-seed F1 are committed to 4 decimals
            assert v["ci95"] == pytest.approx(ci.bounds, abs=2e-4)
    for name, key in (("collapse", "by_regime"), ("bias_amplification", "by_strategy")):
        for gens in _results(name)[key].values():
            for metrics in gens.values():
                for a in metrics.values():
                    xs = [x for x in a["values"] if x is not None]
                    if xs:
                        assert a["ci95"] == pytest.approx(stats.t_interval(xs).bounds or [None, None])


def test_recompute_changes_nothing_on_the_committed_results(tmp_path: Path) -> None:
    shutil.copytree(RESULTS, tmp_path / "results")
    run = subprocess.run([sys.executable, str(ROOT / "experiments" / "recompute_intervals.py"), "--results",
                          str(tmp_path / "results")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    for f in RESULTS.iterdir():
        assert (tmp_path / "results" / f.name).read_bytes() == f.read_bytes(), f.name


def test_sft_curated_vs_raw_summary_of_a_fresh_run(tmp_path: Path) -> None:
    """summarize() on made-up per-model figures: t-intervals over seeds, the paired test, no interval for one model."""
    import argparse
    import random

    mod = _script("sft_curated_vs_raw")
    rng = random.Random(0)
    tasks = [{"id": f"t{i}", "instruction": f"do {i}", "input": "", "output": "ok"} for i in range(4)]
    judge_ids = [0, 1, 2]
    per_model = {}
    for name, seed in [("base", None), ("uncurated", 0), ("curated", 0), ("uncurated", 1), ("curated", 1)]:
        key = name if seed is None else f"{name}-s{seed}"
        per_model[key] = {"condition": name, "seed": seed, "human_ppl": 10 + rng.random(),
                          "judge": [rng.choice([None, 5.0, 7.0]) for _ in judge_ids],
                          "judge_expected": [5 + rng.random() for _ in judge_ids], "answers": ["a"] * 3,
                          "seconds": 1.0}
        if seed is not None:
            per_model[key].update(train_rows=10, final_train_loss=1.0,
                                  losses=[[s, 2.0 - 0.1 * s + rng.random() / 10] for s in range(1, 4)])
    args = argparse.Namespace(seeds=[0, 1], batch_size=4, max_length=64, lr=1e-4, threads=1, max_new_tokens=8,
                              out=tmp_path / "out", results=tmp_path / "results")
    mod.summarize(per_model, {"uncurated": [1] * 10, "curated": [1] * 8}, 3, judge_ids, tasks, args, 5.0)
    r = json.loads((tmp_path / "results" / "sft_curated_vs_raw.json").read_text())
    unc = r["summary"]["uncurated"]
    assert unc["human_ppl_ci95"] == pytest.approx(stats.t_interval(unc["human_ppl_per_seed"]).half_width)
    assert r["summary"]["base"]["human_ppl_ci95"] is None
    p = r["paired_curated_minus_uncurated"]
    d = stats.paired_difference([per_model[f"curated-s{s}"]["human_ppl"] for s in (0, 1)],
                                [per_model[f"uncurated-s{s}"]["human_ppl"] for s in (0, 1)])
    assert (p["human_ppl_diff"], p["human_ppl_diff_ci95"], p["human_ppl_diff_p"]) == pytest.approx(
        (d.estimate, d.half_width, d.p_value))
    assert p["judge_expected_pairs"] == 6 and r["intervals"] == mod.INTERVALS
    md = (tmp_path / "results" / "sft_curated_vs_raw.md").read_text()
    assert "(no interval)" in md and f"± {unc['human_ppl_ci95']:.3f}" in md
