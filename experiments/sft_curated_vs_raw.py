"""Does curating generated instruction data make a better SFT model? Raw vs curated Self-Instruct data.

1. Data: ``recipes/sft_data.yaml`` runs Self-Instruct from gristmill's 38 seed tasks with the
   embedded SmolLM2-135M-Instruct (llama.cpp). *Uncurated* = the rows the generation step
   wrote (its cached output, before any filter); *curated* = the recipe's final output
   (normalize, length filter, Gopher repetition filter, exact + MinHash dedup, PII
   redaction, toxicity filter).
2. Training: LoRA SFT of SmolLM2-135M-Instruct on each set, the same number of optimizer
   steps for both (so the same compute; the smaller curated set is seen for more epochs),
   for each seed.
3. Evaluation, on human-written data the generator never saw (the 175 seed tasks of the
   Self-Instruct paper, /work/shared/data/self_instruct_seed_tasks.jsonl):
   * perplexity of each task's reference output given its instruction (+ input), assistant
     tokens only, in the chat template;
   * the mean score (1-10) that gristmill's judge (``judge.score``, with the same
     SmolLM2-135M as judge, llama.cpp, greedy) gives each model's greedy answers to a fixed
     sample of the tasks.
   The base model (no fine-tuning) is measured the same way.

Run: nice -n 5 .venv/bin/python experiments/sft_curated_vs_raw.py [--seeds 0 1 --steps 40 --judge-prompts 30]
Writes experiments/out/sft_curated_vs_raw/ (run dir, per-model JSON, per-condition training runs)
and experiments/results/sft_curated_vs_raw.{json,md}. Per-model results are cached in the run
directory, so a rerun continues where it stopped (--fresh starts over).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "experiments" / "out" / "sft_curated_vs_raw"
RESULTS = REPO / "experiments" / "results"
RECIPE = REPO / "recipes" / "sft_data.yaml"
HUMAN = REPO.parent / "shared" / "data" / "self_instruct_seed_tasks.jsonl"


def build_data(out: Path) -> Path:
    """Run the recipe (or reuse its finished run) and return the run directory."""
    run = out / "runs" / "sft_data"
    if not list((run / "data").glob("*.jsonl")):
        subprocess.run([sys.executable, "-m", "gristmill", "run", str(RECIPE), "--runs-dir", str(out / "runs"),
                        "--quiet"], check=True, cwd=REPO)
    return run


def raw_rows(run: Path) -> list[list[dict[str, str]]]:
    """The generation step's own output rows (before any filter), as conversations."""
    import pyarrow.parquet as pq

    from gristmill.io.base import RecordError
    from gristmill.train.chat_data import row_to_messages

    steps = sorted((run / "cache").glob("step-00-generate.self_instruct-*"))
    if not steps:
        raise SystemExit(f"{run}/cache has no generation step output")
    rows = []
    for shard in sorted(steps[-1].glob("shard-*/data.parquet")):
        for r in pq.read_table(shard).to_pylist():
            try:
                rows.append(row_to_messages({"instruction": r["instruction"], "input": r.get("input") or "",
                                             "output": r.get("output") or ""}))
            except RecordError:
                continue
    return rows


def curated_rows(run: Path) -> list[list[dict[str, str]]]:
    from gristmill.train.chat_data import load_chat_rows

    rows = []
    for f in sorted((run / "data").glob("*.jsonl")):
        got, _ = load_chat_rows(f)
        rows += got
    return rows


def human_tasks() -> list[dict[str, str]]:
    """The 175 human-written tasks: instruction, input and reference output of the first instance."""
    tasks = []
    for line in HUMAN.read_text(encoding="utf-8").splitlines():
        t = json.loads(line)
        inst = t["instances"][0]
        tasks.append({"id": t["id"], "instruction": t["instruction"], "input": inst.get("input") or "",
                      "output": inst["output"]})
    return tasks


def as_chat(task: dict[str, str], with_answer: bool = True) -> list[dict[str, str]]:
    user = task["instruction"] + (f"\n\n{task['input']}" if task["input"].strip() else "")
    msgs = [{"role": "user", "content": user}]
    return msgs + [{"role": "assistant", "content": task["output"]}] if with_answer else msgs


def evaluate(model, tokenizer, tasks, judge_ids: list[int], max_new_tokens: int, max_length: int) -> dict:
    """Perplexity on every task's reference answer, and greedy answers to the judged tasks."""
    from gristmill.train.chat_data import tokenize_chat
    from gristmill.train.sft import dev_loss
    from gristmill.train.sft_report import generate_answers

    tokenized = [tokenize_chat(tokenizer, as_chat(t), max_length) for t in tasks]
    tokenized = [t for t in tokenized if t.n_labels]
    loss = dev_loss(model, tokenized, tokenizer.pad_token_id, 8, autocast=False)
    answers = generate_answers(model, tokenizer, [as_chat(tasks[i], False) for i in judge_ids],
                               max_new_tokens=max_new_tokens)
    return {"human_loss": loss, "human_ppl": math.exp(loss), "answers": answers}


def judge(tasks, judge_ids: list[int], answers: list[str]) -> list[float | None]:
    """Scores 1-10 of gristmill's judge (judge.score with the embedded SmolLM2) for each answer; None if unparsed."""
    from gristmill import registry
    from gristmill.records import from_rows

    op = registry.get("judge.score")(backend={"type": "llama_cpp", "batch_size": 8, "threads": 1}, cache=False)
    op.ensure_setup()
    rows = [{"id": f"{tasks[i]['id']}-{k}", "instruction": tasks[i]["instruction"], "input": tasks[i]["input"],
             "output": a} for k, (i, a) in enumerate(zip(judge_ids, answers))]
    kept = op.process(from_rows(rows)).kept.to_pylist()
    by_id = {r["id"]: r.get("judge.score") for r in kept}
    return [by_id.get(r["id"]) for r in rows]


_JUDGE_LM: list = []


def judge_expected(tasks, judge_ids: list[int], answers: list[str]) -> list[float]:
    """The judge's expected score: the same judge prompt (gristmill.generate.tasks.judge.format_prompt), answered
    by base SmolLM2 up to "Score: ", and the score sum(d * p(d)) over its next-token probabilities of the digits 1-9
    (renormalised). A 135M judge rarely writes the asked-for format, so its free-text score is often missing;
    this reads its preference out of the logits instead (G-Eval-style)."""
    import torch

    from gristmill.llm.tasks.judge import format_prompt
    from gristmill.train.sft import load_model_and_tokenizer

    if not _JUDGE_LM:
        model, tok = load_model_and_tokenizer(None, "bfloat16")
        _JUDGE_LM.extend([model.eval(), tok])
    model, tok = _JUDGE_LM
    digits = [tok.convert_tokens_to_ids(str(d)) for d in range(1, 10)]
    out = []
    for i, a in zip(judge_ids, answers):
        msgs = format_prompt({"instruction": tasks[i]["instruction"], "input": tasks[i]["input"], "output": a or "(empty)"})
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + "Score: "
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"][:, -1024:]
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0, -1].float()
        p = torch.softmax(logits[digits], dim=0)
        out.append(float(sum((d + 1) * p[d] for d in range(9))))
    return out


def pm(mean: float | None, half: float | None, digits: int, sign: str = "") -> str:
    """``mean ± half`` of a 95% t-interval; ``mean (no interval)`` when there is none (one value).
    ``sign="+"`` writes the sign of a difference."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    return f"{mean:{sign}.{digits}f}" + (" (no interval)" if half is None else f" ± {half:.{digits}f}")


def _get(interval, attr: str):
    """``interval.attr``, or None when there is no interval object (no pairs)."""
    return None if interval is None else getattr(interval, attr)


def table_rows(summary: dict) -> list[tuple]:
    """The table of write_md / the report, from the committed summary alone."""
    rows = []
    for cond, v in summary.items():
        rows.append((cond, len(v["models"]), pm(v["human_ppl_mean"], v["human_ppl_ci95"], 3),
                     " / ".join(f"{p:.3f}" for p in v["human_ppl_per_seed"]),
                     pm(v["judge_mean"], v["judge_ci95"], 2), " / ".join(f"{j:.2f}" for j in v["judge_mean_per_seed"]),
                     v["judge_unscored"], pm(v["judge_expected_mean"], v["judge_expected_ci95"], 3),
                     " / ".join(f"{x:.3f}" for x in v["judge_expected_per_seed"])))
    return rows


TABLE_HEADERS = ["model", "seeds", "human ppl (mean ± 95%)", "per seed", "judge 1-10 (mean ± 95%)", "per seed",
                 "unscored", "judge expected score 1-9 (mean ± 95%)", "per seed"]
INTERVALS = ("95% Student-t intervals (n - 1 degrees of freedom; gristmill.stats): perplexity over seeds, judge "
             "scores over prompts x seeds, paired differences over seeds or prompt pairs")


def main() -> None:
    ap = argparse.ArgumentParser(description="Raw vs curated generated instruction data for LoRA SFT.")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=0, help="Optimizer steps per model (0: one epoch of the raw set).")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--eval-max-length", type=int, default=384, help="Human tasks are cut to this many tokens.")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--judge-prompts", type=int, default=30)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--data-run", type=Path, help="Use this finished run of a Self-Instruct recipe instead of "
                                                   "running recipes/sft_data.yaml.")
    ap.add_argument("--human-limit", type=int, default=0, help="Use only the first N human tasks (smoke tests).")
    ap.add_argument("--out", type=Path, default=OUT, help="Output directory (default experiments/out/<name>).")
    ap.add_argument("--results", type=Path, default=RESULTS, help="Where the summary JSON/MD go.")
    ap.add_argument("--only", nargs="+", help="Run only these models (base, uncurated-s0, ...) and stop before the "
                                              "summary: for running seeds in parallel processes.")
    args = ap.parse_args()

    from gristmill.models.runtime import set_torch_threads
    from gristmill.rundir import RunDir
    from gristmill.train.sft import SFTConfig, load_model_and_tokenizer, train_sft

    set_torch_threads(args.threads)
    out = args.out
    if args.fresh and (out / "models").exists():
        shutil.rmtree(out / "models")
    data_run = args.data_run or build_data(out)
    sets = {"uncurated": raw_rows(data_run), "curated": curated_rows(data_run)}
    tasks = human_tasks()[:args.human_limit or None]
    judge_ids = sorted(random.Random(1234).sample(range(len(tasks)), args.judge_prompts))
    steps = args.steps or math.ceil(len(sets["uncurated"]) / args.batch_size)
    print(f"rows: uncurated {len(sets['uncurated'])}, curated {len(sets['curated'])}; {steps} steps per model",
          flush=True)

    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    conditions = [("base", None)] + [(name, s) for s in args.seeds for name in ("uncurated", "curated")]
    per_model: dict[str, dict] = {}
    for name, seed in conditions:
        key = name if seed is None else f"{name}-s{seed}"
        if args.only and key not in args.only:
            continue
        cache = models_dir / f"{key}.json"
        if cache.is_file():
            per_model[key] = json.loads(cache.read_text())
            print(f"{key}: cached", flush=True)
            continue
        t0 = time.time()
        if seed is None:
            model, tokenizer = load_model_and_tokenizer(None, "bfloat16")
            train_info = {}
        else:
            config = SFTConfig(max_steps=steps, batch_size=args.batch_size, max_length=args.max_length,
                               learning_rate=args.lr, seed=seed, threads=args.threads, dtype="bfloat16",
                               save_merged=False, log_every=1)
            run = RunDir.create(models_dir / key, kind="train-sft", config={**config.to_dict(), "data": name})
            res = train_sft(sets[name], [], config, run=run)
            model, tokenizer = res.model, res.tokenizer
            train_info = {"train_rows": res.train_rows, "train_tokens": res.train_tokens,
                          "tokens_per_s": res.tokens_per_s, "final_train_loss": res.final_train_loss,
                          "losses": res.losses, "train_seconds": res.seconds}
        ev = evaluate(model, tokenizer, tasks, judge_ids, args.max_new_tokens, args.eval_max_length)
        del model
        ev["judge"] = judge(tasks, judge_ids, ev["answers"])
        ev["judge_expected"] = judge_expected(tasks, judge_ids, ev["answers"])
        per_model[key] = {"condition": name, "seed": seed, **train_info, **ev, "seconds": time.time() - t0}
        cache.write_text(json.dumps(per_model[key], indent=1) + "\n")
        scored = [s for s in ev["judge"] if s is not None]
        print(f"{key}: human ppl {ev['human_ppl']:.3f}, judge {statistics.fmean(scored) if scored else float('nan'):.2f}"
              f" ({len(scored)}/{len(ev['judge'])} scored), expected judge score "
              f"{statistics.fmean(ev['judge_expected']):.2f}, {time.time() - t0:.0f} s", flush=True)

    if args.only:
        return
    summarize(per_model, sets, steps, judge_ids, tasks, args, sum(v.get("seconds", 0) for v in per_model.values()))


def summarize(per_model, sets, steps, judge_ids, tasks, args, seconds) -> None:
    from gristmill import stats
    from gristmill.rundir import RunDir

    summary = {}
    for cond in ("base", "uncurated", "curated"):
        keys = [k for k, v in per_model.items() if v["condition"] == cond]
        if not keys:
            continue
        ppls = [per_model[k]["human_ppl"] for k in keys]
        judge_means = []
        all_scores = []
        for k in keys:
            sc = [s for s in per_model[k]["judge"] if s is not None]
            all_scores += sc
            judge_means.append(statistics.fmean(sc) if sc else float("nan"))
        unscored = sum(s is None for k in keys for s in per_model[k]["judge"])
        exp_all = [x for k in keys for x in per_model[k]["judge_expected"]]
        exp_means = [statistics.fmean(per_model[k]["judge_expected"]) for k in keys]
        e_ci = stats.t_interval(exp_all)
        p_ci = stats.t_interval(ppls)  # over seeds: one model gives no interval
        # judge: interval over prompts x seeds (the prompt sample is the main source of noise)
        j_ci = stats.t_interval(all_scores) if all_scores else None
        summary[cond] = {"models": keys, "human_ppl_per_seed": ppls, "human_ppl_mean": p_ci.estimate,
                         "human_ppl_ci95": p_ci.half_width,
                         "judge_mean_per_seed": judge_means, "judge_mean": j_ci.estimate if j_ci else float("nan"),
                         "judge_ci95": j_ci.half_width if j_ci else None, "judge_n": len(all_scores),
                         "judge_unscored": unscored, "judge_scores": all_scores,
                         "judge_expected_mean": e_ci.estimate, "judge_expected_ci95": e_ci.half_width,
                         "judge_expected_n": len(exp_all),
                         "judge_expected_per_seed": exp_means, "judge_expected_scores": exp_all,
                         "train_rows": per_model[keys[0]].get("train_rows"),
                         "final_train_loss": [per_model[k].get("final_train_loss") for k in keys]}
    # paired differences (same seed, same prompts): curated - uncurated
    ppl_pairs, judge_pairs, exp_pairs = [], [], []
    for s in args.seeds:
        a, b = per_model.get(f"curated-s{s}"), per_model.get(f"uncurated-s{s}")
        if a and b:
            ppl_pairs.append((a["human_ppl"], b["human_ppl"]))
            judge_pairs += [(x, y) for x, y in zip(a["judge"], b["judge"]) if x is not None and y is not None]
            exp_pairs += list(zip(a["judge_expected"], b["judge_expected"]))

    def paired(pairs: list[tuple[float, float]]):
        return stats.paired_difference([x for x, _ in pairs], [y for _, y in pairs]) if pairs else None

    d_ppl, d_judge, d_exp = paired(ppl_pairs), paired(judge_pairs), paired(exp_pairs)
    result = {
        "experiment": "sft_curated_vs_raw",
        "data": {"uncurated_rows": len(sets["uncurated"]), "curated_rows": len(sets["curated"]),
                 "recipe": "recipes/sft_data.yaml"},
        "training": {"method": "lora r8 alpha16 q/k/v/o", "steps": steps, "batch_size": args.batch_size,
                     "max_length": args.max_length, "lr": args.lr, "dtype": "bfloat16", "seeds": args.seeds,
                     "threads": args.threads},
        "eval": {"human_tasks": len(tasks), "judge_prompts": len(judge_ids), "judge": "judge.score with SmolLM2-135M "
                 "(llama.cpp, greedy)", "answer_max_new_tokens": args.max_new_tokens},
        "summary": {k: {kk: vv for kk, vv in v.items() if kk not in ("judge_scores", "judge_expected_scores")}
                    for k, v in summary.items()},
        "intervals": INTERVALS,
        "paired_curated_minus_uncurated": {
            "human_ppl_per_seed": list(d_ppl.differences) if d_ppl else [],
            "human_ppl_diff": _get(d_ppl, "estimate"), "human_ppl_diff_ci95": _get(d_ppl, "half_width"),
            "human_ppl_diff_p": _get(d_ppl, "p_value"),
            "judge_mean_diff": _get(d_judge, "estimate"), "judge_diff_ci95": _get(d_judge, "half_width"),
            "judge_diff_p": _get(d_judge, "p_value"), "judge_pairs": len(judge_pairs),
            "judge_expected_diff": _get(d_exp, "estimate"), "judge_expected_diff_ci95": _get(d_exp, "half_width"),
            "judge_expected_diff_p": _get(d_exp, "p_value"), "judge_expected_pairs": len(exp_pairs)},
        "seconds": seconds,
        "hardware": "2 shared CPU cores (about 6 other jobs running), torch threads 1, nice 5",
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "sft_curated_vs_raw.json").write_text(json.dumps(result, indent=2) + "\n")

    run = RunDir.create(args.out, kind="experiment", config={**vars(args), "steps": steps}, resume=False)
    run.result(**{f"{c}_human_ppl": v["human_ppl_mean"] for c, v in summary.items()},
               **{f"{c}_judge": v["judge_mean"] for c, v in summary.items()})
    headers, rows = TABLE_HEADERS, table_rows(result["summary"])
    run.table("Held-out human tasks: perplexity and judge score", headers, rows,
              note="Perplexity of the 175 human-written reference answers (assistant tokens only). Judge: SmolLM2-135M "
                   f"scoring greedy answers to {len(judge_ids)} of the tasks; interval over prompts x seeds.")
    run.bars("Perplexity on human-written answers (lower is better)", list(summary),
             [v["human_ppl_mean"] for v in summary.values()], xlabel="perplexity")
    scored = {c: v["judge_mean"] for c, v in summary.items() if math.isfinite(v["judge_mean"])}
    if scored:
        run.bars("Judge score (higher is better)", list(scored), list(scored.values()),
                 xlabel="mean judge score 1-10 (answers the judge scored)")
    run.bars("Judge expected score from digit probabilities (higher is better)", list(summary),
             [v["judge_expected_mean"] for v in summary.values()], xlabel="mean expected score 1-9")
    for cond, v in summary.items():
        if v["judge_scores"]:
            run.histogram(f"Judge scores: {cond}", v["judge_scores"], xlabel="score", bins=10)
        run.histogram(f"Judge expected scores: {cond}", v["judge_expected_scores"], xlabel="expected score", bins=20)
    curves, bands = {}, {}
    for cond in ("uncurated", "curated"):
        keys = [k for k, v in per_model.items() if v["condition"] == cond and v.get("losses")]
        if not keys:
            continue
        n = min(len(per_model[k]["losses"]) for k in keys)
        xs = [per_model[keys[0]]["losses"][i][0] for i in range(n)]
        per_step = [[per_model[k]["losses"][i][1] for k in keys] for i in range(n)]
        cis = [stats.t_interval(p) for p in per_step]
        means = [c.estimate for c in cis]
        half = [c.half_width or 0.0 for c in cis]  # one seed: no band
        curves[cond] = (xs, means)
        bands[cond] = (xs, [m - h for m, h in zip(means, half)], [m + h for m, h in zip(means, half)])
    if curves:
        run.curve("Training loss (own data)", curves, xlabel="optimizer step", ylabel="nats per assistant token",
                  bands=bands, note="Mean over seeds, shaded 95% t-interval over seeds. Each on its own training "
                                    "set, so levels are not comparable across sets.")
    samples = []
    for i, tid in enumerate(judge_ids[:5]):
        samples.append(("prompt", as_chat(tasks[tid], False)[0]["content"][:400]))
        for key in [k for k in per_model if k == "base" or k.endswith(f"-s{args.seeds[0]}")]:
            sc = per_model[key]["judge"][i]
            samples.append((f"{key} (judge {sc}, expected {per_model[key]['judge_expected'][i]:.2f})",
                            per_model[key]["answers"][i][:400]))
    run.samples("Answers to held-out prompts", samples)
    run.finish(title="SFT on raw vs curated generated data")
    write_md(result, args.results)
    print((args.results / "sft_curated_vs_raw.md").read_text())


def reading(result) -> str:
    """A verdict from the figures: is the curated-vs-uncurated difference larger than the seed-to-seed spread?"""
    sm, p = result["summary"], result["paired_curated_minus_uncurated"]
    if "curated" not in sm or "uncurated" not in sm:
        return "Not enough models to compare."
    d_ppl = sm["curated"]["human_ppl_mean"] - sm["uncurated"]["human_ppl_mean"]
    spread = max(max(v["human_ppl_per_seed"]) - min(v["human_ppl_per_seed"]) for k, v in sm.items()
                 if k != "base")
    base = sm.get("base", {}).get("human_ppl_mean")
    half = p.get("human_ppl_diff_ci95")
    paired = (f" ± {half:.3f} (95% t-interval over {len(p['human_ppl_per_seed'])} paired seeds"
              + (f", p = {p['human_ppl_diff_p']:.2f}" if p.get("human_ppl_diff_p") is not None else "") + "; "
              if half is not None else " (")
    lines = [f"Perplexity on the human-written answers: curated minus uncurated = {d_ppl:+.3f}{paired}"
             f"per seed {', '.join(f'{x:+.3f}' for x in p['human_ppl_per_seed'])}), against a seed-to-seed spread "
             f"within one condition of up to {spread:.3f}"
             + (f"; both moved from the base model's {base:.3f} by "
                f"{sm['uncurated']['human_ppl_mean'] - base:+.3f} (uncurated) and "
                f"{sm['curated']['human_ppl_mean'] - base:+.3f} (curated)" if base else "") + "."]
    # with an interval, it decides; with one seed, only the spread can
    resolved = abs(d_ppl) > half if half is not None else abs(d_ppl) > spread
    verdict = ("so curation made no difference this experiment can resolve" if not resolved
               else ("so the curated data gave the lower perplexity" if d_ppl < 0
                     else "so the uncurated data gave the lower perplexity"))
    where = "the interval" if half is not None else "the seed spread"
    lines.append(f"The difference is {'beyond' if resolved else 'within'} {where}, {verdict}.")
    unscored = sum(v["judge_unscored"] for v in sm.values())
    total = result["eval"]["judge_prompts"] * sum(len(v["models"]) for v in sm.values())
    lines.append(f"The judge (SmolLM2-135M) wrote a parsable score for only {total - unscored} of {total} answers, "
                 "so its free-text scores say nothing here; its expected score read from the digit probabilities "
                 f"differs by {pm(p['judge_expected_diff'], p['judge_expected_diff_ci95'], 3, '+')}"
                 " (curated - uncurated, paired) on a 1-9 scale, and in a manual check on one prompt it scored the "
                 "one-word answer 'banana' above a correct one: a 135M judge does not rank answers usefully.")
    return " ".join(lines)


def write_md(result, results_dir: Path) -> None:
    d, t, p = result["data"], result["training"], result["paired_curated_minus_uncurated"]
    headers, rows = TABLE_HEADERS, table_rows(result["summary"])
    lines = ["# SFT on raw vs curated generated instruction data", "",
             f"Data: `{d['recipe']}` (Self-Instruct from gristmill's 38 seed tasks, SmolLM2-135M-Instruct writing): "
             f"{d['uncurated_rows']} rows out of the generation step (uncurated), {d['curated_rows']} after curation.",
             f"Training: LoRA ({t['method']}), {t['steps']} steps x batch {t['batch_size']} for every model, "
             f"max length {t['max_length']}, lr {t['lr']}, bf16, seeds {t['seeds']}.",
             f"Evaluation: the {result['eval']['human_tasks']} human-written Self-Instruct seed tasks (never seen by "
             f"the generator): perplexity of the reference answers; judge.score (SmolLM2-135M as judge) of greedy "
             f"answers to {result['eval']['judge_prompts']} of them.",
             f"Intervals: {result.get('intervals', INTERVALS)}.", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    def with_p(key: str) -> str:
        return "" if p.get(key) is None else f", p = {p[key]:.2f}"

    lines += ["", f"Paired (same seed / same prompt) curated - uncurated: perplexity per seed "
                  f"{[round(x, 3) for x in p['human_ppl_per_seed']]}"
                  + (f", mean {pm(p['human_ppl_diff'], p['human_ppl_diff_ci95'], 3, '+')}{with_p('human_ppl_diff_p')}"
                     if p.get("human_ppl_diff") is not None else "")
                  + "; judge "
                  + (f"{pm(p['judge_mean_diff'], p['judge_diff_ci95'], 2, '+')} over {p['judge_pairs']} pairs"
                     f"{with_p('judge_diff_p')}" if p["judge_mean_diff"] is not None
                     else "n/a (no pair scored by both)")
                  + "; judge expected score "
                  + (f"{pm(p['judge_expected_diff'], p['judge_expected_diff_ci95'], 3, '+')} over "
                     f"{p['judge_expected_pairs']} pairs{with_p('judge_expected_diff_p')}"
                     if p["judge_expected_diff"] is not None else "n/a"), "",
              f"Hardware: {result['hardware']}; {result['seconds'] / 60:.1f} min of training and evaluation in all (sequential sum).", "", "## Reading", "",
              reading(result), "",
              "Limitations: the judge is SmolLM2-135M itself (the same model family that was fine-tuned and that "
              "wrote the data), a weak and biased grader; few seeds; a short training budget.", ""]
    (results_dir / "sft_curated_vs_raw.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
