"""Train the from-scratch LM on Tiny Shakespeare and compare decoding strategies.

Data: /work/shared/data/tinyshakespeare.txt, the first 90% of its characters for
training and the last 10% for validation, each cut on blank lines into documents of
about 1-2 KB. Model: the default :class:`~gristmill.train.lm.LMConfig` (4 layers, 4 heads,
d 128, context 128, BPE 2048; 1500 steps of 32 x 128 tokens), bf16 autocast, 1 torch thread.
Logs the validation perplexity curve (every 100 steps, on 640 fixed windows of the
validation stream), then the full validation perplexity (every token of every validation
document, scored within its document), then samples from 3 prompts under greedy,
temperature 0.7, top-k 40, top-p 0.9 and beam 4, with distinct-2 of each strategy's
generations (16 per prompt for the sampling strategies).

Each seed trains into experiments/out/tinyshakespeare_lm/seed-<seed>/ (run directory with
report.html, checkpoints, model/, summary.json); a seed with a summary.json is not trained
again (``--force`` retrains). The seeds are then summarised (mean, std, and the final perplexity's
95% t-interval) in
experiments/out/tinyshakespeare_lm/summary/report.html and the committed
experiments/results/tinyshakespeare_lm.{json,md}.

Run: ``nice -n 5 .venv/bin/python experiments/tinyshakespeare_lm.py [--seeds 0 1] [--steps N] [--resume]``
(about 20 min per seed on one free core; 40-50 min on the shared 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gristmill import stats  # noqa: E402
from gristmill.evaluate.diversity import distinct_n  # noqa: E402
from gristmill.rundir import RunDir  # noqa: E402
from gristmill.train.decoding import DecodeConfig, generate  # noqa: E402
from gristmill.train.lm import LMConfig, TrainedLM, perplexity, split_documents, train_lm  # noqa: E402

DATA = Path("/work/shared/data/tinyshakespeare.txt")
OUT = ROOT / "experiments" / "out" / "tinyshakespeare_lm"
RESULTS = ROOT / "experiments" / "results"
PROMPTS = ["ROMEO:\n", "First Citizen:\n", "KING RICHARD III:\nNow is the"]
STRATEGIES = {  # max_new_tokens and seed are set per run
    "greedy": DecodeConfig("greedy"),
    "temperature 0.7": DecodeConfig("sample", temperature=0.7),
    "top-k 40": DecodeConfig("sample", top_k=40),
    "top-p 0.9": DecodeConfig("sample", top_p=0.9),
    "beam 4": DecodeConfig("beam", num_beams=4),
}
SAMPLES_PER_PROMPT = 16
MAX_NEW_TOKENS = 96


def train_seed(seed: int, steps: int, resume: bool, train_docs: list[str], val_docs: list[str]) -> dict:
    """Train one seed into OUT/seed-<seed>/ (run directory and model); returns and saves its summary.json."""
    out = OUT / f"seed-{seed}"
    cfg = LMConfig(steps=steps, eval_every=100, seed=seed, threads=1, bf16=True)
    run = RunDir.create(out, kind="train-lm", config={"data": str(DATA), "train_docs": len(train_docs),
                                                      "val_docs": len(val_docs), **cfg.__dict__}, resume=resume)
    t0 = time.perf_counter()
    lm = train_lm(train_docs, val_docs, cfg, run=run, resume=resume, progress=sys.stderr.isatty())
    train_s = time.perf_counter() - t0
    lm.save(out / "model")
    lm = TrainedLM.load(out / "model")

    curve = [(p["step"], p["perplexity"]) for p in run.metrics("dev")]
    tps = [p["tokens_per_s"] for p in run.metrics("train")]
    t1 = time.perf_counter()
    val_ppl = perplexity(lm, val_docs)
    ppl_s = time.perf_counter() - t1
    train_ppl = perplexity(lm, train_docs[:len(val_docs)])

    samples: dict[str, list[dict]] = {}
    diversity: dict[str, dict] = {}
    gen_times: dict[str, float] = {}
    for name, kw in STRATEGIES.items():
        decode = DecodeConfig(**{**kw.__dict__, "max_new_tokens": MAX_NEW_TOKENS, "seed": seed})
        n = SAMPLES_PER_PROMPT if decode.strategy == "sample" else 1
        prompts = [p for p in PROMPTS for _ in range(n)]
        t2 = time.perf_counter()
        outs = generate(lm, prompts, decode)
        gen_times[name] = time.perf_counter() - t2
        samples[name] = [{"prompt": p, "text": o} for p, o in zip(prompts, outs)]
        diversity[name] = {"distinct_2_pooled": distinct_n(outs, 2),
                           "distinct_2_per_text_mean": statistics.fmean(distinct_n([o], 2) for o in outs),
                           "n_texts": len(outs),
                           "mean_words": statistics.fmean(len(o.split()) for o in outs),
                           "generated_tokens_per_s": sum(len(lm.encode(o)) for o in outs) / gen_times[name]}
    run.curve("validation perplexity", {"val (640 fixed windows)": ([s for s, _ in curve], [p for _, p in curve])},
              xlabel="step", ylabel="perplexity", logy=True)
    run.table("distinct-2 by decoding strategy", ["strategy", "texts", "distinct-2 pooled",
                                                  "distinct-2 per text", "mean words"],
              [[k, v["n_texts"], round(v["distinct_2_pooled"], 3), round(v["distinct_2_per_text_mean"], 3),
                round(v["mean_words"], 1)] for k, v in diversity.items()])
    for name in STRATEGIES:
        first: dict[str, dict] = {}
        for smp in samples[name]:
            first.setdefault(smp["prompt"], smp)
        run.samples(f"samples: {name}", [(x["prompt"], x["prompt"] + x["text"]) for x in first.values()])
    summary = {
        "seed": seed, "config": cfg.__dict__, "parameters": lm.model.num_parameters(),
        "vocab_size": lm.config.vocab_size, "train_docs": len(train_docs), "val_docs": len(val_docs),
        "train_tokens_seen": cfg.steps * cfg.batch_size * cfg.context, "train_seconds": round(train_s, 1),
        "train_tokens_per_s_mean": statistics.fmean(tps), "train_tokens_per_s_median": statistics.median(tps),
        "val_perplexity_curve": curve, "final_val_perplexity": val_ppl,
        "final_train_perplexity_same_n_docs": train_ppl, "perplexity_seconds": round(ppl_s, 1),
        "diversity": diversity, "generation_seconds": gen_times,
        "samples": {k: v if k in ("greedy", "beam 4") else [x for i, x in enumerate(v) if i % SAMPLES_PER_PROMPT < 2]
                    for k, v in samples.items()},
    }
    run.result(final_val_perplexity=val_ppl, train_tokens_per_s=summary["train_tokens_per_s_mean"])
    run.finish(f"Tiny Shakespeare: from-scratch LM, seed {seed}")
    run.save_json("summary.json", summary)
    print(f"seed {seed}: val perplexity {val_ppl:.2f}; {summary['train_tokens_per_s_mean']:.0f} train tokens/s; "
          f"{train_s:.0f} s training", flush=True)
    return summary


def _mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and standard deviation over seeds (a description of the spread, not an interval)."""
    ci = stats.t_interval(xs)
    return ci.estimate, ci.sd or 0.0


def add_intervals(results: dict) -> dict:
    """The 95% t-interval of the final validation perplexity over seeds, from its per-seed values (so it also
    recomputes a committed summary)."""
    f = results["final_val_perplexity"]
    ci = stats.t_interval(f["per_seed"])
    f["ci95"], f["half_width"] = ci.bounds, ci.half_width
    results["intervals"] = "95% Student-t over seeds (n - 1 degrees of freedom; gristmill.stats)"
    return results


def aggregate(summaries: list[dict]) -> dict:
    """The committed results: per-seed figures, mean and std over seeds, samples of the first seed."""
    first = summaries[0]
    finals = [s["final_val_perplexity"] for s in summaries]
    steps = [st for st, _ in first["val_perplexity_curve"]]
    by_step = {st: [dict(s["val_perplexity_curve"]).get(st) for s in summaries] for st in steps}
    curve = [(st, *_mean_std([v for v in vals if v is not None]), vals) for st, vals in by_step.items()]
    diversity = {}
    for name in first["diversity"]:
        per = [s["diversity"][name] for s in summaries]
        diversity[name] = {key: _mean_std([p[key] for p in per])
                           for key in ("distinct_2_pooled", "distinct_2_per_text_mean", "mean_words",
                                       "generated_tokens_per_s")}
        diversity[name]["n_texts"] = per[0]["n_texts"]
    tps = [s["train_tokens_per_s_mean"] for s in summaries]
    return add_intervals({
        "hardware": f"2 shared CPU cores ({platform.processor() or platform.machine()}), 1 torch thread, nice 5, "
                    "8-10 other helpers' processes running at the same time (load average 7-15); a 20-step "
                    "probe of the same model under lighter load ran at about 6,200 tokens/s",
        "seeds": [s["seed"] for s in summaries],
        "config": {k: v for k, v in first["config"].items() if k != "seed"},
        "parameters": first["parameters"], "vocab_size": first["vocab_size"],
        "train_docs": first["train_docs"], "val_docs": first["val_docs"],
        "train_tokens_seen": first["train_tokens_seen"],
        "final_val_perplexity": {"mean": _mean_std(finals)[0], "std": _mean_std(finals)[1], "per_seed": finals},
        "final_train_perplexity_same_n_docs": [s["final_train_perplexity_same_n_docs"] for s in summaries],
        "train_tokens_per_s": {"mean": _mean_std(tps)[0], "per_seed": tps},
        "train_seconds": [s["train_seconds"] for s in summaries],
        "val_perplexity_curve": [{"step": st, "mean": m, "std": sd, "per_seed": vals} for st, m, sd, vals in curve],
        "diversity": diversity,
        "per_seed_diversity": {s["seed"]: s["diversity"] for s in summaries},
        "samples_seed": first["seed"], "samples": first["samples"],
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=LMConfig().steps)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--resume", action="store_true", help="continue interrupted seeds from their checkpoints")
    ap.add_argument("--force", action="store_true", help="retrain seeds that already have a summary")
    args = ap.parse_args()

    text = DATA.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    train_docs, val_docs = split_documents(text[:cut]), split_documents(text[cut:])
    summaries = []
    for seed in args.seeds:
        done = OUT / f"seed-{seed}" / "summary.json"
        if done.is_file() and not args.force:
            summaries.append(json.loads(done.read_text(encoding="utf-8")))
            continue
        summaries.append(train_seed(seed, args.steps, args.resume, train_docs, val_docs))
    results = aggregate(summaries)

    run = RunDir.create(OUT / "summary", kind="experiment", config={"seeds": args.seeds, **results["config"]})
    xs = [c["step"] for c in results["val_perplexity_curve"]]
    run.curve("validation perplexity (mean over seeds, band: min-max)",
              {"mean": (xs, [c["mean"] for c in results["val_perplexity_curve"]])},
              bands={"mean": (xs, [min(c["per_seed"]) for c in results["val_perplexity_curve"]],
                              [max(c["per_seed"]) for c in results["val_perplexity_curve"]])},
              xlabel="step", ylabel="perplexity", logy=True)
    names = list(results["diversity"])
    run.bars("distinct-2 per text (mean over seeds)", names,
             [results["diversity"][n]["distinct_2_per_text_mean"][0] for n in names], xlabel="distinct-2")
    for name, items in results["samples"].items():
        run.samples(f"samples: {name} (seed {results['samples_seed']})",
                    [(x["prompt"], x["prompt"] + x["text"]) for x in items])
    run.result(final_val_perplexity=results["final_val_perplexity"],
               train_tokens_per_s=results["train_tokens_per_s"]["mean"])
    run.finish("Tiny Shakespeare: from-scratch LM")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tinyshakespeare_lm.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n",
                                                     encoding="utf-8")
    (RESULTS / "tinyshakespeare_lm.md").write_text(markdown(results), encoding="utf-8")


def markdown(r: dict) -> str:
    c = r["config"]
    f = r["final_val_perplexity"]
    seeds = ", ".join(str(s) for s in r["seeds"])
    lines = [
        "# Tiny Shakespeare: a from-scratch LM and five decoding strategies",
        "",
        f"Model: {c['n_layer']} layers, {c['n_head']} heads, d {c['d_model']}, context {c['context']}, "
        f"byte-level BPE {r['vocab_size']}; {r['parameters']:,} parameters. {c['steps']} steps of "
        f"{c['batch_size']} x {c['context']} tokens ({r['train_tokens_seen']:,} tokens), AdamW lr {c['lr']} "
        f"(warmup {c['warmup']}, cosine to {c['lr'] * c['min_lr_ratio']:g}), dropout {c['dropout']}, bf16 autocast. "
        f"Data: first 90% of tinyshakespeare.txt by characters ({r['train_docs']} documents of 1-2 KB) for "
        f"training, last 10% ({r['val_docs']} documents) for validation. Seeds: {seeds}.",
        "",
        f"Hardware: {r['hardware']}.",
        "",
        f"**Final validation perplexity: {stats.format_interval(f['mean'], *(f['ci95'] or (None, None)), 2)}** "
        f"(mean ± 95% t-interval over {len(f['per_seed'])} seeds, std {f['std']:.2f}; per seed "
        + ", ".join(f"{x:.2f}" for x in f["per_seed"]) + "). Every token of every validation document is scored, "
        "within its document, with up to 128 tokens of context. Train documents (same count): "
        + ", ".join(f"{x:.2f}" for x in r["final_train_perplexity_same_n_docs"]) + ".",
        "",
        f"Training throughput: **{r['train_tokens_per_s']['mean']:.0f} tokens/s** (mean over logged intervals and "
        "seeds; per seed " + ", ".join(f"{x:.0f}" for x in r["train_tokens_per_s"]["per_seed"])
        + "); wall time per seed " + ", ".join(f"{x:.0f} s" for x in r["train_seconds"]) + ".",
        "",
        "## Validation perplexity during training",
        "",
        "On 640 fixed windows of 128 tokens spread over the validation stream (documents joined by <|endoftext|>).",
        "",
        "| step | " + " | ".join(f"seed {s}" for s in r["seeds"]) + " | mean |",
        "|---:|" + "---:|" * (len(r["seeds"]) + 1),
        *[f"| {p['step']} | " + " | ".join(f"{v:.2f}" for v in p["per_seed"]) + f" | {p['mean']:.2f} |"
          for p in r["val_perplexity_curve"]],
        "",
        "## Diversity by decoding strategy",
        "",
        "3 prompts; 16 samples per prompt for the sampling strategies, 1 output per prompt for greedy and beam "
        "(deterministic); up to 96 new tokens. distinct-2 = unique word bigrams / all word bigrams (lowercased "
        "whitespace words, gristmill.evaluate.diversity.distinct_n). *Per text*: mean over single texts "
        "(repetition inside a text); *pooled*: over all texts of the strategy (48 vs 3 texts, so not comparable "
        "between the sampling and the deterministic strategies). Mean ± std over seeds.",
        "",
        "| strategy | texts | distinct-2 per text | distinct-2 pooled | mean words | generated tokens/s |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {k} | {v['n_texts']} | {v['distinct_2_per_text_mean'][0]:.3f} ± {v['distinct_2_per_text_mean'][1]:.3f} | "
          f"{v['distinct_2_pooled'][0]:.3f} ± {v['distinct_2_pooled'][1]:.3f} | {v['mean_words'][0]:.1f} | "
          f"{v['generated_tokens_per_s'][0]:.0f} |" for k, v in r["diversity"].items()],
        "",
        f"## Samples (seed {r['samples_seed']})",
        "",
    ]
    for name, items in r["samples"].items():
        lines += [f"### {name}", ""]
        for x in items:
            body = (x["prompt"] + x["text"]).replace("```", "\'\'\'")
            lines += ["```", body, "```", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
