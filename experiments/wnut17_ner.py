"""WNUT-17 NER with all-MiniLM-L6-v2: does gristmill's augmentation help?

Fine-tunes MiniLM (token classification) on WNUT-17 train, selects the epoch on dev entity
micro F1 (early stopping, best weights kept) and scores test with seqeval (entity level,
micro F1, per type). Two training sets, the same seeds:

* ``baseline``: the 3,394 training sentences;
* ``augmented``: the same plus copies made by gristmill's operators: ``augment.entity_swap``
  (each sentence with entities, its spans replaced by others of the same type from the
  training set's own inventory), ``augment.noise`` (typos and word drops/duplicates/swaps on
  non-entity words, for a share of the originals and swapped copies) and
  ``bias.counterfactual`` on the original sentences (gender swaps; the entity tags stay,
  since a swapped first name stays a person).

Paraphrasing is left out: a paraphrase moves words, and the tags would have to be
re-projected onto it; nothing here does that reliably.

What was run (each variant in its own process; the committed results come from these)::

    nice -n 5 .venv/bin/python experiments/wnut17_ner.py --variant baseline --seeds 0 1 2 --epochs 3
    nice -n 5 .venv/bin/python experiments/wnut17_ner.py --variant augmented --seeds 0 2 --epochs 2
    nice -n 5 .venv/bin/python experiments/wnut17_ner.py --variant augmented --seeds 1 --epochs 2
    # a compute control: the original data for 4 epochs (13.6k sentence passes), one process per seed
    nice -n 5 .venv/bin/python experiments/wnut17_ner.py --variant baseline_long --seeds 0 --epochs 4
    .venv/bin/python experiments/wnut17_ner.py --summarize

The augmented set is 1.74x the original, so it gets 2 epochs to 3: about the same number of
sentence passes (11.8k vs 10.2k) and the whole experiment fits in the time the shared CPU
allowed (an epoch took 2-10 minutes on 2 cores shared with other jobs, not the 1 minute it
takes on idle cores).

Per-run figures go to ``experiments/out/wnut17_ner/runs/``; ``--summarize`` writes the run
directory's report and ``experiments/results/wnut17_ner.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from gristmill import stats

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/wnut17")
OUT = ROOT / "experiments" / "out" / "wnut17_ner"
RESULTS = ROOT / "experiments" / "results"


def data_dir() -> Path:
    try:
        sys.path.insert(0, str(ROOT))
        from tests.conftest import SHARED_DATA  # type: ignore[import-not-found]

        return Path(SHARED_DATA) / "wnut17"
    except Exception:  # noqa: BLE001 - the default place
        return DATA


def augment(train: list[Any], seed: int, noise_rows: float) -> tuple[list[Any], dict[str, int]]:
    """``train`` plus gristmill's augmented copies (entity swap, noise, gender counterfactual)."""
    import pyarrow as pa

    from gristmill.ops.augment import EntitySwap, NoiseInjection
    from gristmill.ops.bias.counterfactual import GenderCounterfactual
    from gristmill.train.labels import TaggedSentence

    table = pa.table({"id": [s.id for s in train], "tokens": [s.tokens for s in train],
                      "tags": [s.tags for s in train]})
    swap = EntitySwap(seed=seed, copies=1)
    swap.ensure_setup()
    swap.fit([swap.summarize(table)])
    swapped = swap.process(table).kept
    noisy = NoiseInjection(seed=seed, row_rate=noise_rows).process(swapped).kept
    # bias.counterfactual rewrites strings, not token lists: run it on the original sentences'
    # tokens joined by spaces and split its copies back (a swap replaces one word by one word,
    # so the tags still align; a copy whose word count changed is dropped).
    text = table.append_column("text", pa.array([" ".join(s.tokens) for s in train]))
    cf_rows = []
    for r in GenderCounterfactual(columns=["text"]).process(text).kept.to_pylist():
        if r["id"].endswith("~cf") and len(r["text"].split(" ")) == len(r["tags"]):
            cf_rows.append({"id": r["id"], "tokens": r["text"].split(" "), "tags": r["tags"]})
    rows = noisy.select(["id", "tokens", "tags"]).to_pylist() + cf_rows
    counts = {"original": len(train),
              "entity_swap": sum(1 for r in rows if "~swap" in r["id"] and "~noise" not in r["id"]
                                 and not r["id"].endswith("~cf")),
              "noise": sum(1 for r in rows if "~noise" in r["id"] and not r["id"].endswith("~cf")),
              "counterfactual": sum(1 for r in rows if r["id"].endswith("~cf")),
              "total": len(rows)}
    return [TaggedSentence(r["id"], r["tokens"], r["tags"]) for r in rows], counts


def run_one(variant: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import transformers

    from gristmill.models.locate import minilm_dir
    from gristmill.train.labels import bio_labels, read_tagged
    from gristmill.train.token_classify import FitConfig, evaluate_tagged, load_token_model, train_token_classifier

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(1)
    d = data_dir()
    train = read_tagged(d / "wnut17train.conll").rows
    dev = read_tagged(d / "emerging.dev.conll").rows
    test = read_tagged(d / "emerging.test.annotated", fmt="conll").rows
    if args.limit:
        train, dev, test = train[:args.limit], dev[:args.limit], test[:args.limit]
    counts = {"original": len(train), "total": len(train)}
    t0 = time.perf_counter()
    if variant == "augmented":
        train, counts = augment(train, seed, args.noise_rows)
    aug_s = time.perf_counter() - t0
    labels = bio_labels(s.tags for s in train)
    torch.manual_seed(seed)
    model, tok = load_token_model(str(minilm_dir()), labels)
    cfg = FitConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, patience=args.patience, seed=seed,
                    bf16=args.bf16, max_length=128)

    def on_epoch(rec: Any) -> None:
        print(f"  {variant} seed {seed} epoch {rec.epoch}: loss {rec.train_loss:.4f} dev F1 {rec.score:.4f} "
              f"({rec.seconds:.0f}s)", flush=True)

    fitted = train_token_classifier(model, tok, train, dev, labels, cfg, on_epoch=on_epoch)
    scores = evaluate_tagged(model, tok, test, dict(enumerate(labels)), 128, 64, args.bf16, with_tables=True)
    out = {"variant": variant, "seed": seed, "train_sentences": counts, "augment_seconds": aug_s,
           "config": cfg.to_dict(), "best_epoch": fitted.best_epoch, "stopped_early": fitted.stopped_early,
           "train_seconds": fitted.seconds,
           "epochs": [{"epoch": r.epoch, "train_loss": r.train_loss, "dev_f1": r.score,
                       "dev_precision": r.dev["precision"], "dev_recall": r.dev["recall"], "seconds": r.seconds}
                      for r in fitted.history],
           "test": {k: scores[k] for k in ("precision", "recall", "f1", "macro_f1", "per_type")},
           "test_entity_table": scores["entity_table"], "test_token_table": scores["token_table"]}
    (OUT / "runs").mkdir(parents=True, exist_ok=True)
    (OUT / "runs" / f"{variant}_seed{seed}.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"{variant} seed {seed}: test F1 {out['test']['f1']:.4f} (best epoch {fitted.best_epoch}, "
          f"{fitted.seconds:.0f}s)", flush=True)
    return out


def _mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and standard deviation over seeds (a description of the spread, not an interval)."""
    if not xs:
        return float("nan"), 0.0
    ci = stats.t_interval(xs)
    return ci.estimate, ci.sd or 0.0


def add_intervals(summary: dict[str, Any]) -> dict[str, Any]:
    """Add the 95% t-interval of each variant's test F1 and the paired test of each augmented-minus comparison,
    from the per-seed figures in ``summary`` (so it also recomputes a committed summary)."""
    for r in summary["variants"].values():
        ci = stats.t_interval(r["test_f1"])
        r["test_f1_ci95"], r["test_f1_half_width"] = ci.bounds, ci.half_width
    for other in ("baseline", "baseline_long"):
        d = summary.get(f"augmented_minus_{other}")
        if not d:
            continue
        a, b = summary["variants"]["augmented"], summary["variants"][other]
        pd = stats.paired_difference([a["test_f1"][a["seeds"].index(x)] for x in d["seeds"]],
                                     [b["test_f1"][b["seeds"].index(x)] for x in d["seeds"]])
        d.update({"mean": pd.estimate, "std": pd.sd or 0.0, "ci95": pd.bounds, "half_width": pd.half_width,
                  "t": pd.t, "p_value": pd.p_value})
    summary["intervals"] = ("95% Student-t over seeds (n - 1 degrees of freedom; gristmill.stats); differences "
                            "paired by seed with a paired t-test")
    return summary


def kept_reading(path: Path) -> str:
    """The hand-written "## Reading" section of an existing summary ('' when none)."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    return text[text.index("## Reading"):] if "## Reading" in text else ""


def summarize() -> dict[str, Any]:
    from gristmill.rundir import RunDir

    runs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((OUT / "runs").glob("*.json"))]
    variants = [v for v in ("baseline", "augmented", "baseline_long") if any(r["variant"] == v for r in runs)]
    summary: dict[str, Any] = {"experiment": "wnut17_ner", "model": "all-MiniLM-L6-v2 (token classification)",
                               "hardware": f"2 shared CPU cores ({platform.processor() or platform.machine()}), "
                                           "1 torch thread, bf16 autocast",
                               "variants": {}}
    types: set[str] = set()
    for v in variants:
        rs = sorted((r for r in runs if r["variant"] == v), key=lambda r: r["seed"])
        f1 = [r["test"]["f1"] for r in rs]
        per_type: dict[str, Any] = {}
        for t in sorted({t for r in rs for t in r["test"]["per_type"]}):
            m, s = _mean_std([r["test"]["per_type"].get(t, {}).get("f1", 0.0) for r in rs])
            per_type[t] = {"f1_mean": m, "f1_std": s, "support": rs[0]["test"]["per_type"].get(t, {}).get("support")}
            types.add(t)
        summary["variants"][v] = {
            "seeds": [r["seed"] for r in rs],
            "test_f1": f1, "test_f1_mean": _mean_std(f1)[0], "test_f1_std": _mean_std(f1)[1],
            "test_precision_mean": _mean_std([r["test"]["precision"] for r in rs])[0],
            "test_recall_mean": _mean_std([r["test"]["recall"] for r in rs])[0],
            "test_macro_f1_mean": _mean_std([r["test"]["macro_f1"] for r in rs])[0],
            "best_epoch": [r["best_epoch"] for r in rs],
            "dev_f1_best": [max(e["dev_f1"] for e in r["epochs"]) for r in rs],
            "train_sentences": rs[0]["train_sentences"],
            "epoch_seconds_mean": statistics.mean(e["seconds"] for r in rs for e in r["epochs"]),
            "per_type": per_type, "config": rs[0]["config"]}
    for other in ("baseline", "baseline_long"):
        if "augmented" not in summary["variants"] or other not in summary["variants"]:
            continue
        b, a = summary["variants"][other], summary["variants"]["augmented"]
        common = sorted(set(b["seeds"]) & set(a["seeds"]))
        diffs = [a["test_f1"][a["seeds"].index(s)] - b["test_f1"][b["seeds"].index(s)] for s in common]
        summary[f"augmented_minus_{other}"] = {"seeds": common, "test_f1_diff": diffs}
    add_intervals(summary)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "wnut17_ner.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    run = RunDir.create(OUT / "report", kind="experiment", config={"runs": [r["variant"] + f"-{r['seed']}"
                                                                            for r in runs]})
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        n = max(len(r["epochs"]) for r in rs)
        xs, mean, lo, hi = [], [], [], []
        for e in range(n):
            vals = [r["epochs"][e]["dev_f1"] for r in rs if len(r["epochs"]) > e]
            ci = stats.t_interval(vals)
            m, half = ci.estimate, ci.half_width or 0.0  # one seed: no band
            xs.append(e + 1), mean.append(m), lo.append(m - half), hi.append(m + half)
        summary.setdefault("_curves", {})[v] = (xs, mean, lo, hi)
    curves = summary.pop("_curves", {})
    run.curve("Dev entity F1 per epoch (mean over seeds, 95% t-interval)", {v: (c[0], c[1]) for v, c in curves.items()},
              "epoch", "dev entity micro F1", bands={v: (c[0], c[2], c[3]) for v, c in curves.items()})
    tlist = sorted(types)
    for v in variants:
        run.bars(f"Test F1 per entity type: {v}", tlist,
                 [summary["variants"][v]["per_type"].get(t, {}).get("f1_mean", 0.0) for t in tlist], "F1")
    run.table("Test entity micro F1", ["variant", "seeds", "F1 mean", "F1 std", "P", "R", "train sentences"],
              [[v, str(s["seeds"]), f"{s['test_f1_mean']:.4f}", f"{s['test_f1_std']:.4f}",
                f"{s['test_precision_mean']:.4f}", f"{s['test_recall_mean']:.4f}", s["train_sentences"]["total"]]
               for v, s in summary["variants"].items()])
    for r in runs:
        run.text(f"seqeval report: {r['variant']} seed {r['seed']}", r["test_entity_table"])
    run.result(**{f"{v}_test_f1_mean": s["test_f1_mean"] for v, s in summary["variants"].items()})
    run.finish("WNUT-17 NER: MiniLM, baseline vs augmented")
    (RESULTS / "wnut17_ner.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    md = RESULTS / "wnut17_ner.md"
    md.write_text(markdown(summary, kept_reading(md)), encoding="utf-8")
    return summary


def markdown(s: dict[str, Any], reading: str = "") -> str:
    """The committed summary; ``reading`` (the hand-written "## Reading" section) is appended as it is."""
    lines = ["# WNUT-17 NER: MiniLM fine-tuned, baseline vs gristmill-augmented training set", "",
             f"Model: {s['model']}. Hardware: {s['hardware']}. Intervals: {s['intervals']}.", "",
             "| variant | seeds | train sentences | test entity micro F1 (mean ± 95% CI; std) | P | R | best epochs |",
             "|---|---|---|---|---|---|---|"]
    for v, r in s["variants"].items():
        lines.append(f"| {v} | {r['seeds']} | {r['train_sentences']['total']} | "
                     f"{stats.format_interval(r['test_f1_mean'], *(r['test_f1_ci95'] or (None, None)), 4)}; "
                     f"std {r['test_f1_std']:.4f} | {r['test_precision_mean']:.4f} | {r['test_recall_mean']:.4f} | "
                     f"{r['best_epoch']} |")
    types = sorted({t for r in s["variants"].values() for t in r["per_type"]})
    lines += ["", "Per-type test F1 (mean ± std over seeds: the spread, not an interval):", "",
              "| type | support | " + " | ".join(s["variants"]) + " |", "|---|---|" + "---|" * len(s["variants"])]
    for t in types:
        sup = next((r["per_type"][t]["support"] for r in s["variants"].values() if t in r["per_type"]), "")
        cells = [f"{r['per_type'].get(t, {}).get('f1_mean', 0):.4f} ± {r['per_type'].get(t, {}).get('f1_std', 0):.4f}"
                 for r in s["variants"].values()]
        lines.append(f"| {t} | {sup} | " + " | ".join(cells) + " |")
    for other in ("baseline", "baseline_long"):
        if f"augmented_minus_{other}" in s:
            d = s[f"augmented_minus_{other}"]
            ci = (f"{d['mean']:+.4f} ± {d['half_width']:.4f} (95% t-interval), paired t = {d['t']:.2f}, "
                  f"df {len(d['seeds']) - 1}, p = {d['p_value']:.3f}" if d.get("p_value") is not None
                  else f"{d['mean']:+.4f}")
            lines += ["", f"Augmented minus {other}, test F1 paired by seed: "
                          f"{', '.join(f'{x:+.4f}' for x in d['test_f1_diff'])}: mean {ci}; std {d['std']:.4f}."]
    lines += ["", "| variant | training sentences (original / entity swap / noise / counterfactual) | epochs | "
                  "sentence passes | mean epoch time (s) |", "|---|---|---|---|---|"]
    for v, r in s["variants"].items():
        c = r["train_sentences"]
        parts = " / ".join(str(c.get(k, 0)) for k in ("original", "entity_swap", "noise", "counterfactual"))
        lines.append(f"| {v} | {parts} (total {c['total']}) | {r['config']['epochs']} | "
                     f"{c['total'] * r['config']['epochs']} | {r['epoch_seconds_mean']:.0f} |")
    for v, r in s["variants"].items():
        lines += ["", f"Config ({v}): " + json.dumps(r["config"])]
    lines.append("")
    if reading:
        lines.append(reading.rstrip("\n"))
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", choices=["baseline", "augmented", "baseline_long", "both"], default="both",
                   help="baseline_long: the original data for more epochs (a compute control)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=8e-5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--noise-rows", type=float, default=0.2, help="share of rows that get a noisy copy")
    p.add_argument("--limit", type=int, default=0, help="use only the first N sentences of each split (smoke test)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false")
    p.add_argument("--summarize", action="store_true", help="only write the summary from the runs so far")
    p.add_argument("--out", type=Path, default=None, help="run directory (default experiments/out/wnut17_ner)")
    p.add_argument("--results", type=Path, default=None, help="summary folder (default experiments/results)")
    args = p.parse_args()
    global OUT, RESULTS
    OUT, RESULTS = args.out or OUT, args.results or RESULTS
    if not args.summarize:
        for v in (["baseline", "augmented"] if args.variant == "both" else [args.variant]):
            for seed in args.seeds:
                run_one(v, seed, args)
    s = summarize()
    print(markdown(s))


if __name__ == "__main__":
    main()
