"""Recompute the committed experiment intervals with gristmill.stats, from experiments/results/*.json alone.

Nothing is trained or evaluated again: every interval is rebuilt from the per-seed (or per-pair)
figures that the committed summaries already hold. Issue 17 ("one house") replaced five interval
helpers by :mod:`gristmill.stats`; this is how the published figures were brought in line:

* ``sft_curated_vs_raw``: the intervals were 1.96 standard errors; now 95% Student-t intervals
  (n - 1 degrees of freedom). Perplexity over seeds (2 seeds: t = 12.71, so ``± 0.082`` becomes
  ``± 0.530``) and the paired curated - uncurated perplexity difference (with its p-value) come
  from the per-seed perplexities. The judge intervals are over prompts x seeds, whose scores are
  not committed; each is rebuilt exactly from the committed 1.96-SE half-width ``h`` and its count
  ``n`` (standard error ``h / 1.96``; new half-width ``t(0.975, n - 1) * h / 1.96``; paired p from
  ``t = mean / (h / 1.96)``). The base model (one run) has no perplexity interval (was ``± 0.000``).
* ``wnut17_ner`` and ``tinyshakespeare_lm``: the headline ``±`` was a standard deviation over
  seeds; the 95% t-interval is added (and shown), the std kept and labelled, and the paired
  differences get their t-test (``add_intervals`` of each script).
* ``selection_wnut17``, ``collapse``, ``bias_amplification``: already t-intervals; recomputed and
  compared with the committed figures (a figure measured by one seed now has no interval
  instead of a zero-width one).

Run: ``.venv/bin/python experiments/recompute_intervals.py`` (``--check``: report, write nothing).
Running it again changes nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from scipy.stats import t as t_dist

from gristmill import stats

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
Z95 = 1.96  # what sft_curated_vs_raw.py used before issue 17


def load_script(name: str) -> ModuleType:
    """An experiment script as a module (its main() does not run)."""
    spec = importlib.util.spec_from_file_location(f"_exp_{name}", HERE / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _t_half_from_z_half(h: float | None, n: int) -> float | None:
    """A 95% t half-width from the old 1.96-standard-error half-width of ``n`` values."""
    if h is None or n < 2:
        return None
    return float(t_dist.ppf(0.975, n - 1)) * h / Z95


def _p_from_z_half(mean: float | None, h: float | None, n: int) -> float | None:
    """Two-sided paired-t p-value from a mean difference and its old 1.96-SE half-width (None when undefined)."""
    if mean is None or h is None or n < 2 or h == 0:
        return None
    return float(2 * t_dist.sf(abs(mean / (h / Z95)), n - 1))


def sft_curated_vs_raw(res: dict[str, Any]) -> list[str]:
    """1.96-SE intervals -> t-intervals (see the module docstring); returns what changed."""
    if "intervals" in res:
        return []  # already t-intervals
    changes = []
    for cond, v in res["summary"].items():
        ci = stats.t_interval(v["human_ppl_per_seed"])
        changes.append(f"{cond} human ppl ± {v['human_ppl_ci95']:.3f} -> "
                       + ("no interval (one model)" if ci.half_width is None else f"± {ci.half_width:.3f}"))
        v["human_ppl_mean"], v["human_ppl_ci95"] = ci.estimate, ci.half_width
        n_judge = len(v["models"]) * res["eval"]["judge_prompts"] - v["judge_unscored"]
        n_exp = len(v["models"]) * res["eval"]["judge_prompts"]
        new_j = _t_half_from_z_half(v["judge_ci95"], n_judge)
        new_e = _t_half_from_z_half(v["judge_expected_ci95"], n_exp)
        changes.append(f"{cond} judge ± {v['judge_ci95']:.2f} -> ± {new_j:.2f} (n {n_judge}); judge expected "
                       f"± {v['judge_expected_ci95']:.3f} -> ± {new_e:.3f} (n {n_exp})")
        v.update({"judge_ci95": new_j, "judge_n": n_judge, "judge_expected_ci95": new_e, "judge_expected_n": n_exp})
    p = res["paired_curated_minus_uncurated"]
    cur, unc = res["summary"]["curated"], res["summary"]["uncurated"]
    d = stats.paired_difference(cur["human_ppl_per_seed"], unc["human_ppl_per_seed"])
    assert all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(d.differences, p["human_ppl_per_seed"]))
    p.update({"human_ppl_diff": d.estimate, "human_ppl_diff_ci95": d.half_width, "human_ppl_diff_p": d.p_value})
    changes.append(f"paired ppl diff {d.estimate:+.3f}: new ± {d.half_width:.3f}, p = {d.p_value:.2f}")
    for key, n_key, prefix in (("judge_mean_diff", "judge_pairs", "judge_diff"),
                               ("judge_expected_diff", "judge_expected_pairs", "judge_expected_diff")):
        old = p[f"{prefix}_ci95"]
        new = _t_half_from_z_half(old, p[n_key])
        # zero variance (every difference the same): the interval stays a point and there is no test
        p[f"{prefix}_ci95"], p[f"{prefix}_p"] = new, _p_from_z_half(p[key], old, p[n_key])
        changes.append(f"paired {prefix} ± {old:.3f} -> ± {new:.3f} (n {p[n_key]}), p = {p[f'{prefix}_p']}")
    res["intervals"] = load_script("sft_curated_vs_raw").INTERVALS
    # keep the key order of a fresh run: "intervals" before the paired block
    order = ["experiment", "data", "training", "eval", "summary", "intervals", "paired_curated_minus_uncurated"]
    res_sorted = {k: res[k] for k in order if k in res} | {k: v for k, v in res.items() if k not in order}
    res.clear()
    res.update(res_sorted)
    return changes


def check_generation_summary(by: dict[str, Any]) -> list[str]:
    """Recompute collapse / bias_amplification cells; list differences from the committed ci95."""
    notes = []
    for cond, gens in by.items():
        for g, metrics in gens.items():
            for key, a in metrics.items():
                xs = [float(v) for v in a["values"] if v is not None and math.isfinite(float(v))]
                if not xs:
                    continue
                ci = stats.t_interval(xs)
                bounds = ci.bounds or [None, None]
                if ci.lo is None:
                    if a["ci95"] != bounds:
                        notes.append(f"{cond}/{g}/{key}: one seed, {a['ci95']} -> no interval")
                        a["ci95"] = bounds
                elif any(abs(x - y) > 1e-9 * max(1.0, abs(y)) for x, y in zip(ci.bounds, a["ci95"])):
                    notes.append(f"{cond}/{g}/{key}: {a['ci95']} -> {ci.bounds}")
                    a["ci95"] = ci.bounds
    return notes


def check_selection(res: dict[str, Any]) -> list[str]:
    """The committed selection intervals against a recomputation from the committed (4-decimal) per-seed F1."""
    mod = load_script("selection_wnut17")
    notes = []
    for s, by_b in [*res["strategies"].items(), ("full", {"-": res["full"]})]:
        for b, v in by_b.items():
            m, lo, hi = mod.t_interval(v["per_seed"])
            if any(abs(x - y) > 2e-4 for x, y in zip((m, lo, hi), (v["mean"], *v["ci95"]))):
                notes.append(f"{s}@{b}: {v['mean']} {v['ci95']} -> {m:.4f} [{lo:.4f}, {hi:.4f}]")
    for s, by_b in mod.paired_vs_random(res).items():
        for b, v in by_b.items():
            old = res["vs_random"][s][b]
            if any(abs(x - y) > 2e-4 for x, y in zip((v["mean"], *v["ci95"]), (old["mean"], *old["ci95"]))):
                notes.append(f"{s}-random@{b}: {old} -> {v}")
    return notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report what would change; write nothing")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    write = not args.check

    def dump(name: str, res: dict[str, Any]) -> None:
        """Write ``res`` back in the file's own layout (indent, ASCII escapes), so the diff shows only what changed."""
        if not write:
            return
        path = args.results / f"{name}.json"
        text = path.read_text(encoding="utf-8")
        second = text.split("\n", 2)[1]
        indent = len(second) - len(second.lstrip(" "))
        path.write_text(json.dumps(res, indent=indent, ensure_ascii=text.isascii()) + "\n", encoding="utf-8")

    res = json.loads((args.results / "sft_curated_vs_raw.json").read_text(encoding="utf-8"))
    print("sft_curated_vs_raw:", *(sft_curated_vs_raw(res) or ["already t-intervals"]), sep="\n  ")
    dump("sft_curated_vs_raw", res)
    if write:
        load_script("sft_curated_vs_raw").write_md(res, args.results)

    mod = load_script("wnut17_ner")
    res = json.loads((args.results / "wnut17_ner.json").read_text(encoding="utf-8"))
    mod.add_intervals(res)
    for v, r in res["variants"].items():
        print(f"wnut17_ner {v}: {r['test_f1_mean']:.4f} ± std {r['test_f1_std']:.4f} -> "
              f"± {r['test_f1_half_width']:.4f} (t)")
    for k in ("augmented_minus_baseline", "augmented_minus_baseline_long"):
        d = res[k]
        print(f"wnut17_ner {k}: {d['mean']:+.4f} ± std {d['std']:.4f} -> ± {d['half_width']:.4f} (t), "
              f"t = {d['t']:.2f}, p = {d['p_value']:.3f}")
    dump("wnut17_ner", res)
    if write:
        md = args.results / "wnut17_ner.md"
        md.write_text(mod.markdown(res, mod.kept_reading(md)), encoding="utf-8")

    mod = load_script("tinyshakespeare_lm")
    res = json.loads((args.results / "tinyshakespeare_lm.json").read_text(encoding="utf-8"))
    mod.add_intervals(res)
    f = res["final_val_perplexity"]
    print(f"tinyshakespeare_lm: {f['mean']:.2f} ± std {f['std']:.2f} -> ± {f['half_width']:.2f} (t)")
    dump("tinyshakespeare_lm", res)
    if write:
        (args.results / "tinyshakespeare_lm.md").write_text(mod.markdown(res), encoding="utf-8")

    res = json.loads((args.results / "selection_wnut17.json").read_text(encoding="utf-8"))
    print("selection_wnut17:", *(check_selection(res) or ["unchanged"]), sep="\n  ")

    for name, key in (("collapse", "by_regime"), ("bias_amplification", "by_strategy")):
        res = json.loads((args.results / f"{name}.json").read_text(encoding="utf-8"))
        notes = check_generation_summary(res[key])
        print(f"{name}:", *(notes or ["unchanged"]), sep="\n  ")
        if notes:
            dump(name, res)
    return None


if __name__ == "__main__":
    sys.exit(main())
