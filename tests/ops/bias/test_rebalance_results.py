"""The committed rebalancing figures (experiments/results/bias_rebalance.json): t-intervals of their own per-seed
values, every run within tolerance of the target, and the Markdown rebuilt from the JSON alone."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from gristmill import stats

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "experiments" / "results"


def _results() -> dict:
    return json.loads((RESULTS / "bias_rebalance.json").read_text(encoding="utf-8"))


def test_intervals_are_t_intervals_of_the_per_seed_figures() -> None:
    r = _results()
    assert set(r["strategies"]) == {"downsample", "upsample", "counterfactual"}
    assert r["data"]["female_share"] == pytest.approx(0.33, abs=0.005) and r["target"] == 0.5
    for name, s in r["strategies"].items():
        per_seed = s["random"]["per_seed"]
        assert len(per_seed["share_after"]) == len(s["random"]["seeds"]) >= 5, name
        for key, values in per_seed.items():
            ci = stats.t_interval(values)
            assert s["random"]["mean_ci95"][key]["mean"] == pytest.approx(ci.estimate), (name, key)
            assert s["random"]["mean_ci95"][key]["half_width"] == pytest.approx(ci.half_width), (name, key)
        assert all(abs(v - r["target"]) <= r["tolerance"] for v in per_seed["share_after"]), name
        assert abs(s["skewed"]["share_after"] - r["target"]) <= r["tolerance"], name
        assert all(g["passed"] for g in s["run"]["gates"]), name
        assert s["run"]["metrics_before"]["bias.gender.female_share"] == r["data"]["female_share"]
        assert per_seed["share_after"][0] == s["run"]["metrics_after"]["bias.gender.female_share"]
    down, up, cf = (r["strategies"][k] for k in ("downsample", "upsample", "counterfactual"))
    assert min(down["random"]["per_seed"]["rows_dropped"]) > 0 and max(down["random"]["per_seed"]["rows_added"]) == 0
    assert max(up["random"]["per_seed"]["rows_dropped"]) == 0 and min(up["random"]["per_seed"]["rows_added"]) > 0
    assert max(cf["random"]["per_seed"]["rows_dropped"]) == 0 and min(cf["random"]["per_seed"]["rows_added"]) > 0


def test_the_markdown_is_rebuilt_from_the_json() -> None:
    spec = importlib.util.spec_from_file_location("_bias_rebalance_exp", ROOT / "experiments" / "bias_rebalance.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.markdown(_results()) == (RESULTS / "bias_rebalance.md").read_text(encoding="utf-8")
