"""The Self-Instruct ROUGE-L gate: gristmill's RougeLIndex vs rouge_score, pairs/s and total time.

    .venv/bin/python benchmarks/bench_rouge.py [--sizes 10000 50000] [--workers 1] [--sample-pairs 20000]

What is measured
----------------
Self-Instruct keeps a new instruction only if its ROUGE-L F1 against *every* instruction
already in the pool (the seeds plus every instruction kept so far) is <= 0.7, so N
candidates cost about N²/2 comparisons. For each size N the script gates N synthetic
candidates, in order, against a pool that starts with the 175 Self-Instruct seed
instructions (../shared/data/self_instruct_seed_tasks.jsonl) and grows with every kept
candidate:

* gristmill: ``RougeLIndex.gate`` (src/gristmill/llm/rouge.py): tokens -> one char
  each, rapidfuzz ``process.cdist`` with the LCS kernel in blocks of 256 candidates, F1
  with rouge_score's formula; timed end to end (tokenizing and encoding included).
* rouge_score: ``RougeScorer(['rougeL']).score`` (what bootstrap_instructions.py calls),
  timed on a random sample of (candidate, pool instruction) pairs from the same run and
  extrapolated to the run's exact number of comparisons. The reference script also
  starts a ``multiprocessing.Pool(4)`` per candidate; that overhead is not counted, which
  favours rouge_score.

Pairs = the number of (candidate, pool instruction) comparisons the gate made.
Ratio = rouge_score's extrapolated time / gristmill's measured time. A few kept
candidates are re-scored with rouge_score against the whole pool to confirm the gate's
maximum F1 (exact equality).

Synthetic instructions (not model output): each is a seed instruction varied by a
template: an optional lead-in ("For a beginner, ..."), 30-60 % of its words replaced by
words drawn from the seeds' vocabulary, and an optional constraint ("... in under 50
words."); seeded, so every run gates the same candidates. Most candidates are distinct
enough to be kept, so the pool grows to nearly N (the expensive case).

The machine has 2 cores and is shared; treat absolute figures as noisy. Results go to
benchmarks/out/bench_rouge.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np

from gristmill.llm.rouge import RougeLIndex

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / ".." / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
OUT = ROOT / "benchmarks" / "out"

LEAD_INS = ["", "", "", "For a beginner, ", "In plain words, ", "Step by step, ", "Briefly, ",
            "As a teacher would, ", "For a ten-year-old, ", "Politely, "]
CONSTRAINTS = ["", "", "", " Answer in under 50 words.", " Use a numbered list.", " Give two examples.",
               " Explain your reasoning.", " Avoid technical terms.", " Use a formal tone."]


def synthetic_instructions(seeds: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` templated variations of ``seeds`` (see the module docstring)."""
    rng = random.Random(seed)
    vocab = sorted({w.strip(".,?!:;\"'()").lower() for s in seeds for w in s.split()} - {""})
    out = []
    for _ in range(n):
        words = rng.choice(seeds).split()
        for i in rng.sample(range(len(words)), max(1, int(len(words) * rng.uniform(0.3, 0.6)))):
            words[i] = rng.choice(vocab)
        text = " ".join(words)
        out.append(rng.choice(LEAD_INS) + text[:1].upper() + text[1:] + rng.choice(CONSTRAINTS))
    return out


def time_rouge_score(pairs: list[tuple[str, str]]) -> float:
    """Seconds rouge_score takes for ``pairs`` (the reference scorer, no stemmer)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    t = time.perf_counter()
    for a, b in pairs:
        scorer.score(a, b)
    return time.perf_counter() - t


def run(size: int, seeds: list[str], workers: int, sample_pairs: int, rng: random.Random) -> dict:
    candidates = synthetic_instructions(seeds, size, seed=size)
    index = RougeLIndex(seeds, workers=workers)
    t = time.perf_counter()
    verdicts = index.gate(candidates, threshold=0.7)
    seconds = time.perf_counter() - t
    kept = sum(v.kept for v in verdicts)
    # comparisons: each candidate against the pool as it stood (seeds + candidates kept before it)
    pairs, pool = 0, len(seeds)
    for v in verdicts:
        pairs += pool
        pool += v.kept
    # rouge_score on a sample of the same kind of pairs: a random candidate vs a random pool member
    sample = [(rng.choice(candidates), rng.choice(index.texts)) for _ in range(sample_pairs)]
    rs_seconds = time_rouge_score(sample)
    rs_rate = sample_pairs / rs_seconds
    # exactness spot check: the gate's max F1 of a few candidates equals rouge_score's over the pool
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    checked = 0
    for i in rng.sample(range(min(size, 2000)), 3):
        pool_then = index.texts[:len(seeds) + sum(v.kept for v in verdicts[:i])]
        ref = max(scorer.score(candidates[i], p)["rougeL"].fmeasure for p in pool_then)
        assert ref == verdicts[i].max_score, (i, ref, verdicts[i].max_score)
        checked += 1
    return {
        "instructions": size, "kept": kept, "dropped": size - kept, "pool_final": len(index),
        "pairs": pairs, "gristmill_seconds": seconds, "gristmill_pairs_per_s": pairs / seconds,
        "rouge_score_sample_pairs": sample_pairs, "rouge_score_pairs_per_s": rs_rate,
        "rouge_score_seconds_extrapolated": pairs / rs_rate, "ratio": (pairs / rs_rate) / seconds,
        "exactness_checks": checked, "workers": workers,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--workers", type=int, default=1, help="rapidfuzz workers (-1: all cores)")
    ap.add_argument("--sample-pairs", type=int, default=20_000, help="pairs timed with rouge_score")
    args = ap.parse_args()
    seeds = [json.loads(line)["instruction"] for line in SEEDS.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(0)
    results = {"load_avg_before": os.getloadavg()[0], "runs": []}
    print(f"{'N':>7} {'kept':>7} {'pairs':>14} {'gristmill s':>12} {'pairs/s':>12} "
          f"{'rouge_score pairs/s':>20} {'rouge_score s (extrap.)':>24} {'ratio':>8}")
    for size in args.sizes:
        r = run(size, seeds, args.workers, args.sample_pairs, rng)
        results["runs"].append(r)
        print(f"{r['instructions']:>7} {r['kept']:>7} {r['pairs']:>14,} {r['gristmill_seconds']:>12.1f} "
              f"{r['gristmill_pairs_per_s']:>12.3g} {r['rouge_score_pairs_per_s']:>20.3g} "
              f"{r['rouge_score_seconds_extrapolated']:>24.0f} {r['ratio']:>7.0f}x", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_rouge.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {OUT / 'bench_rouge.json'}  (numpy {np.__version__})")


if __name__ == "__main__":
    main()
