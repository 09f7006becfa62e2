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

Run: ``nice -n 5 .venv/bin/python experiments/tinyshakespeare_lm.py [--steps N] [--resume]``.
Writes experiments/out/tinyshakespeare_lm/ (run directory, model, report.html) and
experiments/results/tinyshakespeare_lm.{json,md}.
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

from gristmill.evaluate.diversity import distinct_n  # noqa: E402
from gristmill.rundir import RunDir  # noqa: E402
from gristmill.train.decoding import DecodeConfig, generate  # noqa: E402
from gristmill.train.lm import LMConfig, TrainedLM, perplexity, split_documents, train_lm  # noqa: E402

DATA = Path("/work/shared/data/tinyshakespeare.txt")
OUT = ROOT / "experiments" / "out" / "tinyshakespeare_lm"
RESULTS = ROOT / "experiments" / "results"
PROMPTS = ["ROMEO:\n", "First Citizen:\n", "KING RICHARD III:\nNow is the"]
STRATEGIES = {
    "greedy": DecodeConfig("greedy"),
    "temperature 0.7": DecodeConfig("sample", temperature=0.7),
    "top-k 40": DecodeConfig("sample", top_k=40),
    "top-p 0.9": DecodeConfig("sample", top_p=0.9),
    "beam 4": DecodeConfig("beam", num_beams=4),
}
SAMPLES_PER_PROMPT = 16
MAX_NEW_TOKENS = 96


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=LMConfig().steps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    text = DATA.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    train_docs, val_docs = split_documents(text[:cut]), split_documents(text[cut:])
    cfg = LMConfig(steps=args.steps, eval_every=100, seed=args.seed, threads=1, bf16=True)
    run = RunDir.create(OUT, kind="train-lm", config={"data": str(DATA), "train_docs": len(train_docs),
                                                      "val_docs": len(val_docs), **cfg.__dict__}, resume=args.resume)
    t0 = time.perf_counter()
    lm = train_lm(train_docs, val_docs, cfg, run=run, resume=args.resume, progress=sys.stderr.isatty())
    train_s = time.perf_counter() - t0
    lm.save(OUT / "model")
    lm = TrainedLM.load(OUT / "model")

    dev = run.metrics("dev")
    curve = [(p["step"], p["perplexity"]) for p in dev]
    tps = [p["tokens_per_s"] for p in run.metrics("train")]
    t1 = time.perf_counter()
    val_ppl = perplexity(lm, val_docs)
    ppl_s = time.perf_counter() - t1
    train_ppl = perplexity(lm, train_docs[:len(val_docs)])

    samples: dict[str, list[dict]] = {}
    diversity: dict[str, dict] = {}
    gen_times: dict[str, float] = {}
    for name, decode in STRATEGIES.items():
        decode.max_new_tokens = MAX_NEW_TOKENS
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
        first = {}
        for s in samples[name]:
            first.setdefault(s["prompt"], s)
        run.samples(f"samples: {name}", [(s["prompt"], s["prompt"] + s["text"]) for s in first.values()])
    results = {
        "hardware": f"2 shared CPU cores ({platform.processor() or platform.machine()}), 1 torch thread, nice 5, "
                    "other jobs running",
        "config": cfg.__dict__, "parameters": lm.model.num_parameters(), "vocab_size": lm.config.vocab_size,
        "train_docs": len(train_docs), "val_docs": len(val_docs),
        "train_tokens_seen": cfg.steps * cfg.batch_size * cfg.context,
        "train_seconds": round(train_s, 1),
        "train_tokens_per_s_mean": statistics.fmean(tps), "train_tokens_per_s_median": statistics.median(tps),
        "val_perplexity_curve": curve,
        "final_val_perplexity": val_ppl, "final_train_perplexity_same_n_docs": train_ppl,
        "perplexity_seconds": round(ppl_s, 1),
        "diversity": diversity, "generation_seconds": gen_times,
        "samples": {k: v if k in ("greedy", "beam 4") else [s for i, s in enumerate(v) if i % SAMPLES_PER_PROMPT < 2]
                    for k, v in samples.items()},
    }
    run.result(final_val_perplexity=val_ppl, train_tokens_per_s=results["train_tokens_per_s_mean"])
    run.finish("Tiny Shakespeare: from-scratch LM")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tinyshakespeare_lm.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n",
                                                     encoding="utf-8")
    (RESULTS / "tinyshakespeare_lm.md").write_text(markdown(results), encoding="utf-8")
    print(f"val perplexity {val_ppl:.2f}; {results['train_tokens_per_s_mean']:.0f} train tokens/s; "
          f"{train_s:.0f} s training")


def markdown(r: dict) -> str:
    c = r["config"]
    lines = [
        "# Tiny Shakespeare: a from-scratch LM and five decoding strategies",
        "",
        f"Model: {c['n_layer']} layers, {c['n_head']} heads, d {c['d_model']}, context {c['context']}, "
        f"byte-level BPE {r['vocab_size']}; {r['parameters']:,} parameters. {c['steps']} steps of "
        f"{c['batch_size']} x {c['context']} tokens ({r['train_tokens_seen']:,} tokens), lr {c['lr']} "
        f"(warmup {c['warmup']}, cosine to {c['lr'] * c['min_lr_ratio']:g}), dropout {c['dropout']}, bf16 autocast, "
        f"seed {c['seed']}. Data: first 90% of tinyshakespeare.txt ({r['train_docs']} documents of 1-2 KB) for "
        f"training, last 10% ({r['val_docs']} documents) for validation.",
        "",
        f"Hardware: {r['hardware']}.",
        "",
        f"**Final validation perplexity: {r['final_val_perplexity']:.2f}** (every token of every validation document, "
        f"scored within its document; train documents, same count: {r['final_train_perplexity_same_n_docs']:.2f}).",
        f"Training: {r['train_seconds']:.0f} s, **{r['train_tokens_per_s_mean']:.0f} tokens/s** mean "
        f"(median {r['train_tokens_per_s_median']:.0f}).",
        "",
        "## Validation perplexity during training (640 fixed windows of the validation stream)",
        "",
        "| step | perplexity |",
        "|---:|---:|",
        *[f"| {s} | {p:.2f} |" for s, p in r["val_perplexity_curve"]],
        "",
        "## Diversity by decoding strategy",
        "",
        "distinct-2 = unique word bigrams / all bigrams (lowercased whitespace words). Pooled: over all texts of the "
        "strategy (16 per prompt for sampling, 1 per prompt for greedy and beam, so pooled values are not comparable "
        "across the two groups); per text: the mean over single texts.",
        "",
        "| strategy | texts | distinct-2 pooled | distinct-2 per text | mean words | generated tokens/s |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {k} | {v['n_texts']} | {v['distinct_2_pooled']:.3f} | {v['distinct_2_per_text_mean']:.3f} | "
          f"{v['mean_words']:.1f} | {v['generated_tokens_per_s']:.0f} |" for k, v in r["diversity"].items()],
        "",
        "## Samples",
        "",
    ]
    for name, items in r["samples"].items():
        lines += [f"### {name}", ""]
        for s in items:
            body = (s["prompt"] + s["text"]).replace("```", "'''")
            lines += ["```", body, "```", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
