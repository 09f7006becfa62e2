"""Model collapse on Tiny Shakespeare: replace vs accumulate vs keep-10%-real, 5 generations, 3 seeds.

Data: /work/shared/data/tinyshakespeare.txt cut at line ends into documents of ~1 KB,
shuffled (data seed 0); 500 documents used: 450 for training, 50 held out (real
validation, never trained on by any generation). Model: the from-scratch LM
(:mod:`gristmill.train.lm`) with 2 layers, 2 heads, d 64, context 64, byte-level BPE 512
trained once on the real training documents and kept fixed; 300 steps of 16 x 64 tokens
per generation, a fresh model each generation. Each generation samples 450 documents
(ancestral sampling, temperature 1, up to 600 tokens each, empty prompt). Regimes:
replace, accumulate, keep-real (10% real). 1 torch thread.

Run: ``nice -n 5 .venv/bin/python experiments/collapse_shakespeare.py [--seeds 0,1,2] [--generations 5] [--fresh]``.
Finished (regime, seed, generation) cells are kept in experiments/out/collapse_shakespeare/
and skipped when the script runs again. Writes experiments/results/collapse.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gristmill.experiments.collapse import (  # noqa: E402
    COLLAPSE_METRICS, REGIMES, Condition, LoopSpec, default_decode, resume_mismatch, run_collapse)
from gristmill.experiments.generation_stats import fmt_ci  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
OUT = ROOT / "experiments" / "out" / "collapse_shakespeare"
RESULTS = ROOT / "experiments" / "results"
LM = {"vocab_size": 512, "context": 64, "n_layer": 2, "n_head": 2, "d_model": 64, "dropout": 0.0, "steps": 300,
      "batch_size": 16, "lr": 3e-3, "warmup": 30, "eval_every": 100000, "eval_batches": 1,
      "checkpoint_every": 100000}
TAIL_N, TAIL_MAX = 2, 3


def spec_for(seeds: list[int], generations: int) -> LoopSpec:
    dec = default_decode(strategy="sample", temperature=1.0, max_new_tokens=600)
    return LoopSpec(data=str(DATA), conditions=[Condition(r, r, dec) for r in REGIMES], seeds=seeds,
                    generations=generations, doc_chars=1000, max_docs=500, val_fraction=0.1, keep_real=0.1,
                    prompt_words=0, lm=LM, threads=1)


def _f(a: dict, key: str, d: int) -> str:
    x = a.get(key)
    return fmt_ci({"mean": x["mean"], "lo": x["ci95"][0], "hi": x["ci95"][1], "n": x["n"]}, d) if x else "-"


def write_markdown(spec: LoopSpec, summary: dict, results: dict, seconds: float, cells: list[dict]) -> str:
    lines = ["# Model collapse on Tiny Shakespeare: replace, accumulate, keep 10% real", "",
             f"Data: tinyshakespeare.txt in ~1 KB documents; {results['real_data']['train_docs']} real training "
             f"documents, {results['real_data']['val_docs']} held-out real validation documents (never trained on). "
             f"Model: from-scratch LM, {LM['n_layer']} layers, {LM['n_head']} heads, d {LM['d_model']}, context "
             f"{LM['context']}, BPE {LM['vocab_size']} trained once on the real training documents and kept fixed "
             f"for every generation; {LM['steps']} steps of {LM['batch_size']} x {LM['context']} tokens per "
             "generation, a fresh model each generation. Each generation samples as many documents as the real set "
             "has (temperature 1, up to 600 tokens, empty prompt).",
             f"Regimes: replace (newest synthetic only), accumulate (real + all earlier synthetic), keep-real "
             f"({spec.keep_real:.0%} real + newest synthetic, same size). Seeds: {', '.join(map(str, spec.seeds))}; "
             "figures are mean ± half-width of the 95% t-interval over seeds.",
             f"Hardware: 2 shared CPU cores ({platform.machine()}), 1 torch thread, nice 5, other jobs running. "
             f"Wall time of the cells: {seconds / 60:.1f} min in all ({len(cells)} cells).", "",
             f"Tail coverage: share of the real training data's word 2-grams seen 1-{TAIL_MAX} times "
             f"({results['real_data']['rare_ngrams']:,} of them) that occur in the generation's samples. "
             "Own-data perplexity: the generation's model on (up to 100 of) its own training documents.", ""]
    real = results["real_data"]
    lines += [f"Real training data: distinct-2 {real['distinct_2']:.3f}, median words/doc {real['length']['p50']:.0f}.",
              ""]
    for cond in [r for r in REGIMES if r in summary]:
        lines += [f"## {cond}", "", "| gen | held-out real perplexity | own-data perplexity | distinct-2 | "
                  "tail coverage | mean freq. rank | median words/doc |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for g in sorted(summary[cond], key=int):
            a = summary[cond][g]
            lines.append(f"| {g} | {_f(a, 'perplexity', 2)} | {_f(a, 'train_perplexity', 2)} | "
                         f"{_f(a, 'distinct_2', 3)} | {_f(a, 'tail_coverage', 4)} | {_f(a, 'mean_rank', 0)} | "
                         f"{_f(a, 'length.p50', 0)} |")
        lines.append("")
    lines += ["## Change in held-out real perplexity, last generation vs generation 0 (per seed, then mean)", "",
              "| regime | per seed | mean |", "|---|---|---:|"]
    last = str(spec.generations - 1)
    for cond in [r for r in REGIMES if r in summary]:
        v0, vl = summary[cond]["0"]["perplexity"]["values"], summary[cond][last]["perplexity"]["values"]
        deltas = [b - a for a, b in zip(v0, vl)]
        lines.append(f"| {cond} | {', '.join(f'{d:+.2f}' for d in deltas)} | {sum(deltas) / len(deltas):+.2f} |")
    lines += ["", "## Compared with published shapes", ""]
    means = {cond: [summary[cond][str(g)]["perplexity"]["mean"] for g in range(spec.generations)]
             for cond in REGIMES if cond in summary}
    for cond, ms in means.items():
        rises = sum(b > a for a, b in zip(ms, ms[1:]))
        steps = [b - a for a, b in zip(ms, ms[1:])]
        tail = summary[cond]
        t0, tl = tail["0"]["tail_coverage"]["mean"], tail[last]["tail_coverage"]["mean"]
        lines.append(f"- {cond}: mean perplexity rises in {rises} of {len(steps)} generation steps (steps "
                     f"{', '.join(f'{d:+.1f}' for d in steps)}); tail coverage {t0:.4f} -> {tl:.4f} "
                     f"({(tl - t0) / t0:+.0%}).")
    lines += ["- Shumailov et al. 2024 (OPT-125m fine-tuned on wikitext2): replace raises perplexity by about "
              "20-28 points over the generations; keeping 10% of the real data gives only minor degradation. "
              "Gerstgrasser et al. 2024: replace keeps growing, accumulate stays bounded.",
              "- Caveat: here a 137k-parameter model trained from scratch for 300 steps (generation-0 perplexity "
              "50-66 over the seeds, 512 BPE tokens) samples text far from the real distribution (misspelt words), so "
              "each generation loses much more per step than a pretrained OPT-125m fine-tuned once; the absolute "
              "sizes are not comparable, the ordering of the regimes is.", ""]
    lines += ["", "## Samples (seed {}, last generation)".format(spec.seeds[0]), ""]
    for cond in REGIMES:
        c = next((c for c in cells if c["condition"] == cond and c["seed"] == spec.seeds[0]
                  and c["generation"] == spec.generations - 1), None)
        if c and c.get("samples"):
            lines += [f"### {cond}", "", "```", c["samples"][0][:400].replace("```", "'''"), "```", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--fresh", action="store_true", help="Discard finished cells and start again.")
    args = ap.parse_args()
    spec = spec_for([int(s) for s in args.seeds.split(",")], args.generations)
    config = {**spec.to_json(), "tail_n": TAIL_N, "tail_max": TAIL_MAX}
    resume = not args.fresh and (OUT / "config.json").is_file()
    if resume and resume_mismatch(OUT, config):
        sys.exit(f"{OUT} holds a run with other settings ({', '.join(resume_mismatch(OUT, config))}); use --fresh")
    t0 = time.time()
    report, summary = run_collapse(spec, OUT, resume=resume, progress=sys.stderr.isatty(), tail_n=TAIL_N,
                                   tail_max=TAIL_MAX, log=lambda m: print(f"{time.strftime('%H:%M:%S')} {m}", flush=True))
    results = json.loads((OUT / "results.json").read_text(encoding="utf-8"))
    cells = [json.loads(p.read_text()) for p in sorted((OUT / "cells").glob("*/seed*/gen*.json"))]
    cell_seconds = sum(c.get("seconds") or 0 for c in cells)
    RESULTS.mkdir(parents=True, exist_ok=True)
    slim = {k: {g: {m: {kk: vv for kk, vv in v.items()} for m, v in by_m.items()} for g, by_m in by_g.items()}
            for k, by_g in summary.items()}
    (RESULTS / "collapse.json").write_text(json.dumps({
        "experiment": "collapse_shakespeare", "config": config, "metrics": [m[0] for m in COLLAPSE_METRICS],
        "by_regime": slim, "real_data": results["real_data"], "tail_definition": results["tail_definition"],
        "cell_seconds_total": round(cell_seconds, 1), "this_invocation_seconds": round(time.time() - t0, 1),
        "hardware": "2 shared CPU cores, 1 torch thread, nice 5"}, indent=1) + "\n", encoding="utf-8")
    (RESULTS / "collapse.md").write_text(write_markdown(spec, summary, results, cell_seconds, cells), encoding="utf-8")
    print(f"report: {report}\nresults: {RESULTS / 'collapse.md'}")


if __name__ == "__main__":
    main()
