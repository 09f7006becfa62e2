"""Bias amplification on Tiny Shakespeare: greedy (mode-seeking) vs sampled decoding over 4 generations.

Data: /work/shared/data/tinyshakespeare.txt in ~1 KB documents (data seed 0), 300 used:
270 for training, 30 held out. Model: the from-scratch LM, 2 layers, 2 heads, d 64,
context 64, BPE 512 trained once on the real training documents and kept fixed; 300 steps
of 16 x 64 tokens per generation, a fresh model each generation, ``replace`` regime (each
generation trains only on the previous generation's text). Each generation continues 270
prompts — the first 8 words of real training documents, the same prompts for every
strategy — up to 256 tokens: greedily, or by sampling at temperature 0.7 or 1. Statistics of the
continuations (prompts excluded): female share of gendered terms, female share in
occupation contexts (``bias.audit``'s term lists and segments). Taori & Hashimoto (2023)
predict that mode-seeking decoding amplifies the majority (here: male terms) over
generations and sampling keeps close to the data.

Run: ``nice -n 5 .venv/bin/python experiments/bias_amplification.py [--seeds 0,1] [--generations 4] [--fresh]``.
Finished cells are kept in experiments/out/bias_amplification/ and skipped when run again.
Writes experiments/results/bias_amplification.{json,md}.
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

from gristmill.experiments.bias_amplification import BIAS_METRICS, run_bias_amplification  # noqa: E402
from gristmill.experiments.collapse import Condition, LoopSpec, default_decode, resume_mismatch  # noqa: E402
from gristmill.experiments.generation_stats import fmt_ci  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
OUT = ROOT / "experiments" / "out" / "bias_amplification"
RESULTS = ROOT / "experiments" / "results"
LM = {"vocab_size": 512, "context": 64, "n_layer": 2, "n_head": 2, "d_model": 64, "dropout": 0.0, "steps": 300,
      "batch_size": 16, "lr": 3e-3, "warmup": 30, "eval_every": 100000, "eval_batches": 1,
      "checkpoint_every": 100000}
PROMPT_WORDS = 8
MAX_NEW_TOKENS = 256
# name -> decoding; temperature 0.7 sits between mode-seeking greedy and sampling from the model's distribution
STRATEGIES = {"greedy": {"strategy": "greedy"}, "sample-t0.7": {"strategy": "sample", "temperature": 0.7},
              "sample-t1": {"strategy": "sample", "temperature": 1.0}}


def spec_for(seeds: list[int], generations: int) -> LoopSpec:
    conds = [Condition(name, "replace", default_decode(**dec, max_new_tokens=MAX_NEW_TOKENS))
             for name, dec in STRATEGIES.items()]
    return LoopSpec(data=str(DATA), conditions=conds, seeds=seeds, generations=generations, doc_chars=1000,
                    max_docs=300, val_fraction=0.1, prompt_words=PROMPT_WORDS, lm=LM, threads=1)


def _f(a: dict, key: str, d: int) -> str:
    x = a.get(key)
    return fmt_ci({"mean": x["mean"], "lo": x["ci95"][0], "hi": x["ci95"][1], "n": x["n"]}, d) if x else "-"


def write_markdown(spec: LoopSpec, summary: dict, results: dict, seconds: float, cells: list[dict]) -> str:
    real = results["real_data"]
    lines = ["# Bias amplification on Tiny Shakespeare: greedy vs sampled decoding", "",
             f"Loop: `replace` regime, {spec.generations} generations (0..{spec.generations - 1}), a fresh "
             f"from-scratch LM each generation ({LM['n_layer']} layers, d {LM['d_model']}, context {LM['context']}, "
             f"BPE {LM['vocab_size']} fixed, {LM['steps']} steps of {LM['batch_size']} x {LM['context']} tokens); "
             f"{real.get('words', 0):,} words of real continuations as reference. Each generation continues the "
             f"first {PROMPT_WORDS} words of real training documents (same prompts for every strategy, up to "
             f"{MAX_NEW_TOKENS} tokens; greedy, or sampling at temperature 0.7 or 1); statistics are measured on the continuations only. Seeds: "
             f"{', '.join(map(str, spec.seeds))}; mean ± half-width of the 95% t-interval over seeds.",
             f"Hardware: 2 shared CPU cores ({platform.machine()}), 1 torch thread, nice 5, other jobs running; "
             f"{seconds / 60:.1f} min of cells in all ({len(cells)} cells).", "",
             "Statistics (bias.audit term lists; a sentence-like segment is the co-occurrence window): female share "
             "= female / (female + male) gendered term occurrences; occupation female share = segments holding an "
             "occupation and a female term / (those + segments holding it and a male term), summed over "
             "occupations; occupation pairs = the count behind that share.", "",
             f"Real data (training documents minus their first {PROMPT_WORDS} words): female share "
             f"{real['female_share']:.3f}, occupation female share "
             f"{real['occupation_female_share'] if real['occupation_female_share'] is None else round(real['occupation_female_share'], 3)} "
             f"({real['occupation_pairs']} pairs), {real['gendered_per_1k']:.1f} gendered terms per 1k words, "
             f"distinct-2 {real['distinct_2']:.3f}.", ""]
    for cond in [s for s in STRATEGIES if s in summary]:
        lines += [f"## {cond}", "", "| gen | female share | occupation female share | occupation pairs | "
                  "gendered / 1k words | distinct-2 | median words | held-out real perplexity |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for g in sorted(summary[cond], key=int):
            a = summary[cond][g]
            lines.append(f"| {g} | {_f(a, 'female_share', 3)} | {_f(a, 'occupation_female_share', 3)} | "
                         f"{_f(a, 'occupation_pairs', 0)} | {_f(a, 'gendered_per_1k', 1)} | {_f(a, 'distinct_2', 3)} | "
                         f"{_f(a, 'length.p50', 0)} | "
                         f"{_f(a, 'perplexity', 2)} |")
        lines.append("")
    last = str(spec.generations - 1)
    lines += ["## Female share: last generation minus generation 0 (per seed, then mean)", "",
              "| strategy | per seed | mean |", "|---|---|---:|"]
    for cond in [s for s in STRATEGIES if s in summary]:
        v0, vl = summary[cond]["0"]["female_share"]["values"], summary[cond][last]["female_share"]["values"]
        deltas = [b - a for a, b in zip(v0, vl) if a is not None and b is not None]
        if deltas:
            lines.append(f"| {cond} | {', '.join(f'{d:+.3f}' for d in deltas)} | {sum(deltas) / len(deltas):+.3f} |")
    lines += ["", "## Observations (computed from the tables above)", ""]
    for cond in [s for s in STRATEGIES if s in summary]:
        a0, al = summary[cond]["0"], summary[cond][last]
        fs0, fsl = a0["female_share"]["mean"], al["female_share"]["mean"]
        g0, gl = a0["gendered_per_1k"]["mean"], al["gendered_per_1k"]["mean"]
        d0, dl = a0["distinct_2"]["mean"], al["distinct_2"]["mean"]
        share = (f"female share {fs0:.3f} -> {fsl:.3f}" if fs0 is not None and fsl is not None else
                 "female share undefined (no gendered terms generated)")
        lines.append(f"- {cond}: {share}; gendered terms per 1k words {g0:.1f} -> {gl:.1f}; distinct-2 "
                     f"{d0:.3f} -> {dl:.3f} (real data: female share {real['female_share']:.3f}, "
                     f"{real['gendered_per_1k']:.1f} per 1k words).")
    lines += ["- Occupation statistics: the real continuations hold only "
              f"{real['occupation_pairs']} gendered occupation co-occurrences, and the generated text almost none, "
              "so the occupation shares are undefined or rest on a handful of pairs; they are reported, not "
              "interpreted.",
              "- Taori & Hashimoto (2023) predict amplification under mode-seeking decoding and stability under "
              "sampling from the model. Greedy decoding from this small model falls at once into a repetition "
              "loop without gendered words, so its bias statistic is undefined rather than amplified; compare "
              "temperature 0.7 (partly mode-seeking) with temperature 1.", ""]
    lines += ["", f"## Samples (seed {spec.seeds[0]}, last generation)", ""]
    for cond in STRATEGIES:
        c = next((c for c in cells if c["condition"] == cond and c["seed"] == spec.seeds[0]
                  and c["generation"] == spec.generations - 1), None)
        if c and c.get("samples"):
            lines += [f"### {cond}", "", "```", c["samples"][0][:400].replace("```", "'''"), "```", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--fresh", action="store_true", help="Discard finished cells and start again.")
    args = ap.parse_args()
    spec = spec_for([int(s) for s in args.seeds.split(",")], args.generations)
    resume = not args.fresh and (OUT / "config.json").is_file()
    if resume and resume_mismatch(OUT, spec.to_json()):
        sys.exit(f"{OUT} holds a run with other settings ({', '.join(resume_mismatch(OUT, spec.to_json()))}); "
                 "use --fresh")
    t0 = time.time()
    report, summary = run_bias_amplification(spec, OUT, resume=resume, progress=sys.stderr.isatty(),
                                             log=lambda m: print(f"{time.strftime('%H:%M:%S')} {m}", flush=True))
    results = json.loads((OUT / "results.json").read_text(encoding="utf-8"))
    cells = [json.loads(p.read_text()) for p in sorted((OUT / "cells").glob("*/seed*/gen*.json"))]
    cells = [c for c in cells if c["seed"] in spec.seeds and c["generation"] < spec.generations]
    cell_seconds = sum(c.get("seconds") or 0 for c in cells)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bias_amplification.json").write_text(json.dumps({
        "experiment": "bias_amplification", "config": spec.to_json(), "metrics": [m[0] for m in BIAS_METRICS],
        "by_strategy": summary, "real_data": results["real_data"],
        "real_top_occupations": results.get("real_top_occupations"),
        "cell_seconds_total": round(cell_seconds, 1), "this_invocation_seconds": round(time.time() - t0, 1),
        "hardware": "2 shared CPU cores, 1 torch thread, nice 5"}, indent=1) + "\n", encoding="utf-8")
    (RESULTS / "bias_amplification.md").write_text(write_markdown(spec, summary, results, cell_seconds, cells),
                                                   encoding="utf-8")
    print(f"report: {report}\nresults: {RESULTS / 'bias_amplification.md'}")


if __name__ == "__main__":
    main()
