"""``gristmill train lm``: train a small transformer LM from scratch on text files.

Reads documents from ``--data`` files: a ``.txt`` file is cut on blank lines into
documents of 1-2 KB; a JSONL (or csv/parquet) file gives one document per record, its
text in ``--field``. Malformed records are skipped and counted (file, line, reason).
The last ``--dev-fraction`` of the documents, in file order, is the dev set (neighbouring
text does not leak into it). Writes a run directory (kind ``train-lm``): config.json,
metrics.jsonl, checkpoints/, model/ (weights, tokenizer.json, config.json), results.json
(final dev perplexity over every dev token) and report.html (loss and perplexity curves,
samples under each decoding strategy).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import typer

from gristmill import extras
from gristmill.commands.common import (EXIT_FAILED, EXIT_INTERRUPTED, Data, Field, Out, Quiet, Resume,
                                       config_command, create_run, described, err, fail, out)
from gristmill.train.config import LMConfig

__all__ = ["read_documents", "register"]

LmData = described(Data, "Input data: training text, .txt (cut on blank lines) or .jsonl; repeatable.",
                   repeatable=True)
LmOut = described(Out, "Run directory (default runs/train-lm-<first data file>); a non-empty directory gristmill "
                       "did not make is refused untouched.")
HELP = {
    "dev_fraction": "Share of the data held out as the dev set: the last documents, for dev perplexity (0: none).",
    "lr": "Peak learning rate (warmup, then cosine to lr/10).",
    "batch_size": "Examples per batch: windows of --context tokens per micro-batch.",
    "warmup": "Warmup steps (default: min(100, steps / 10)).",
}

SAMPLE_STRATEGIES: dict[str, dict[str, Any]] = {
    "greedy": {"strategy": "greedy"},
    "sample (t=1.0)": {"strategy": "sample"},
    "temperature 0.7": {"strategy": "sample", "temperature": 0.7},
    "top-k 40": {"strategy": "sample", "top_k": 40},
    "top-p 0.9": {"strategy": "sample", "top_p": 0.9},
    "beam 4": {"strategy": "beam", "num_beams": 4},
}


def read_documents(paths: list[Path], field: str) -> tuple[list[str], list[str]]:
    """Documents of ``paths`` and a located message per skipped record (``file:line: reason``)."""
    from gristmill.io.base import BadRecord, InputError, ReaderOptions
    from gristmill.io.readers import open_reader
    from gristmill.train.lm import split_documents

    docs: list[str] = []
    skipped: list[str] = []
    for path in paths:
        try:
            reader = open_reader(path, ReaderOptions(text_column=field))
        except InputError as exc:
            fail(f"--data: {exc}")
        for rec in reader:
            if isinstance(rec, BadRecord):
                where = f"{rec.source}:{rec.line}" if rec.line is not None else rec.source
                skipped.append(f"{where}: {rec.reason}")
                continue
            text = rec.get("text")
            if not isinstance(text, str) or not text.strip():
                skipped.append(f"{rec.get('source', path)}: record {rec.get('id')}: no text in field {field!r}")
                continue
            docs.extend(split_documents(text) if reader.format == "txt" else [text])
    return docs, skipped


def _check(cond: bool, message: str) -> None:
    if not cond:
        fail(message)


@config_command(LMConfig, help=HELP, skip=("warmup_ratio",), defaults={"warmup": None}, bf16_flag=True)
def train_lm_cmd(
    data: LmData,
    *,
    field: Field = "text",
    config: LMConfig,
    out_dir: LmOut = None,
    resume: Resume = False,
    quiet: Quiet = False,
) -> None:
    """Train a small decoder-only transformer from scratch; write a train-lm run directory."""
    extras.require("train lm", "torch", "tokenizers")
    for p in data:
        _check(p.exists(), f"--data: {p}: no such file or directory")
    cfg = config if config.warmup is not None else replace(config, warmup=min(100, max(1, config.steps // 10)))
    dev_fraction = cfg.dev_fraction
    docs, skipped = read_documents(list(data), field)
    for line in skipped[:10]:
        err.print(f"skipped {line}", markup=False, highlight=False)
    if len(skipped) > 10:
        err.print(f"... {len(skipped) - 10} more skipped records", markup=False)
    n_dev = max(1, round(len(docs) * dev_fraction)) if dev_fraction > 0 and len(docs) >= 2 else 0
    train_docs, dev_docs = docs[:len(docs) - n_dev], docs[len(docs) - n_dev:]
    if not train_docs:
        fail(f"--data: no documents to train on ({len(skipped)} records skipped)")
    if dev_fraction > 0 and not dev_docs:
        err.print(f"note: {len(docs)} document is too few for a dev set", markup=False)

    from gristmill.commands.train import config_before, refuse_resume
    from gristmill.train.checkpoint import ResumeMismatch

    out_dir = out_dir or Path("runs") / f"train-lm-{data[0].name.split('.')[0]}"
    before = config_before(out_dir, resume)
    run = create_run(out_dir, kind="train-lm", resume=resume, config={
        **asdict(cfg), "data": [str(p) for p in data], "field": field, "dev_fraction": dev_fraction,
        "train_documents": len(train_docs), "dev_documents": len(dev_docs), "skipped_records": len(skipped)})
    if skipped:
        run.table("skipped input records", ["record", "reason"],
                  [s.rsplit(": ", 1) if ": " in s else [s, ""] for s in skipped[:200]],
                  note=f"{len(skipped)} skipped" + (" (first 200 shown)" if len(skipped) > 200 else ""))
    try:
        lm = _train_and_report(run, train_docs, dev_docs, cfg, resume, quiet)
    except ResumeMismatch as exc:  # nothing ran: the command line asks for another model than the checkpoint's
        refuse_resume(out_dir, before, exc)
    except ValueError as exc:
        fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        fail(f"interrupted; run again with --resume --out {out_dir} to continue from the last checkpoint",
             EXIT_INTERRUPTED)
    res = run.results()
    ppl = res.get("dev_perplexity")
    out.print(f"[bold green]done[/] {lm.model.num_parameters():,} parameters, {cfg.steps} steps, "
              f"{res.get('train_tokens_per_s', 0):,.0f} tokens/s"
              + (f", dev perplexity {ppl:.2f}" if ppl is not None else "")
              + f"\n  model: {run.path / 'model'}\n  report: {run.path / 'report.html'}")


def _train_and_report(run: Any, train_docs: list[str], dev_docs: list[str], cfg: Any, resume: bool,
                      quiet: bool) -> Any:
    import statistics

    from gristmill.train.decoding import DecodeConfig, generate
    from gristmill.train.lm import perplexity, train_lm

    from gristmill.commands.train import note

    lm = train_lm(train_docs, dev_docs or None, cfg, run=run, resume=resume, progress=not quiet, notify=note)
    lm.save(run.path / "model")
    tps = [p["tokens_per_s"] for p in run.metrics("train") if p.get("tokens_per_s")]
    results: dict[str, Any] = {"parameters": lm.model.num_parameters(), "vocab_size": lm.config.vocab_size,
                               "steps": cfg.steps, "train_tokens": cfg.steps * cfg.batch_size * cfg.context,
                               "train_tokens_per_s": statistics.median(tps) if tps else None,
                               "train_documents": len(train_docs), "dev_documents": len(dev_docs)}
    train = run.metrics("train")
    if train:
        results["final_train_loss"] = train[-1]["loss"]
    if dev_docs:
        results["dev_perplexity"] = perplexity(lm, dev_docs)
    run.result(**results)
    prompts = [""]
    if dev_docs:
        prompts.append(" ".join(dev_docs[0].split(" ")[:4]))
    new_tokens = min(96, cfg.context)
    items = []
    for name, kw in SAMPLE_STRATEGIES.items():
        decode = DecodeConfig(max_new_tokens=new_tokens, seed=cfg.seed, **kw)
        for p, text in zip(prompts, generate(lm, prompts, decode)):
            items.append((f"{name} | prompt {p!r}", p + text))
    run.samples("samples by decoding strategy", items,
                note=f"up to {new_tokens} new tokens; the empty prompt starts a document")
    run.table("model", ["field", "value"], [[k, v] for k, v in {**asdict(lm.config), **results}.items()])
    run.finish("train lm")
    return lm


def register(app: typer.Typer) -> None:
    """Add ``lm`` to ``app`` (``gristmill train``)."""
    app.command("lm")(train_lm_cmd)
