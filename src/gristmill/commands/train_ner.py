"""``gristmill train ner`` and ``gristmill train classify``: fine-tune a BERT-style encoder.

``ner`` tags words (CoNLL or JSONL tokens/tags), selects the epoch on dev entity micro F1
and scores test with seqeval (entity level) and scikit-learn (token level). ``classify``
labels texts (JSONL), selects on dev macro-F1 and scores test with scikit-learn. Both write
a run directory: config, metrics (train loss per step, dev scores per epoch), results.json,
report.html, quarantine.jsonl (skipped input records) and, unless ``--no-save-model``, the
best model in ``model/``. With ``--checkpoint-every N`` they checkpoint every N steps, and
``--resume`` continues a killed run from its last complete checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from gristmill import extras
from gristmill.commands.common import (EXIT_INTERRUPTED, Dev, InputFormat, Model, Out, Quiet, Resume,
                                       config_command, create_run, described, fail, out)
from gristmill.train.config import FitConfig

EncoderModel = described(Model, "Model to start from: a BERT-style encoder directory with its tokenizer (default: "
                                "all-MiniLM-L6-v2 from its package).")
NerOut = described(Out, "Run directory (default runs/train-ner-<train name>); a non-empty directory gristmill did "
                        "not make is refused untouched.")
ClassifyOut = described(Out, "Run directory (default runs/train-classify-<train name>); a non-empty directory "
                             "gristmill did not make is refused untouched.")
NerDev = described(Dev, "Dev data (same formats): picks the best epoch and stops early.")
ClassifyDev = described(Dev, "Dev data (JSONL): picks the best epoch and stops early.")
NerFormat = described(InputFormat, "Input format: conll or jsonl (default: from the file names).")
ENCODER_HELP = {"lr": "Peak learning rate (AdamW, 10% warmup then linear decay).",
                "seed": "Seed of every random choice the command makes: the head's initialisation and the batch "
                        "order.",
                "epochs": "Passes over the training data: the most epochs to train (a fraction ends the last one "
                          "early)."}
NER_HELP = {**ENCODER_HELP, "batch_size": "Examples per batch: sentences per update.",
            "max_length": "Tokens per sequence the model sees at once: subwords per sentence; words past it are "
                          "predicted O.",
            "patience": "Stop after this many epochs without a better dev entity F1."}
CLASSIFY_HELP = {**ENCODER_HELP, "batch_size": "Examples per batch: texts per update.",
                 "max_length": "Tokens per sequence the model sees at once: subwords per text; the rest is cut.",
                 "patience": "Stop after this many epochs without a better dev macro-F1."}


def _check_files(**files: Path | None) -> None:
    for option, path in files.items():
        if path is not None and not Path(path).is_file():
            fail(f"--{option.replace('_', '-')} {path}: no such file")


def _model_dir(model: str | None) -> str:
    from gristmill.models.locate import ModelNotInstalled, minilm_dir

    if model:
        if not (Path(model) / "config.json").is_file():
            fail(f"--model {model}: not a model directory (no config.json)")
        return model
    try:
        return str(minilm_dir())
    except ModelNotInstalled as exc:
        fail(f"--model not given and the default model is missing: {exc}")


def _report_bad(name: str, path: Path, bad: Sequence[Any]) -> None:
    if bad:
        first = bad[0]
        out.print(f"{name}: skipped {len(bad)} malformed record(s) in {path} "
                  f"(first: line {first.line}: {first.reason}); see quarantine.jsonl", highlight=False)


def _write_quarantine(run_path: Path, bad: Sequence[Any]) -> None:
    with (run_path / "quarantine.jsonl").open("w", encoding="utf-8") as f:
        for b in bad:
            f.write(json.dumps(b.to_json(), ensure_ascii=False) + "\n")


def _progress_hooks(bars: Any, run: Any, steps_total: int, unit: str) -> tuple[Any, Any, Any]:
    """``on_step`` (progress bar, ``train`` metrics) and ``on_resume`` (drops the points logged after the
    checkpoint, which the resumed run logs again, and moves the bar to it)."""
    task = bars.add_task("train", total=steps_total, unit=unit)

    def on_step(step: int, loss: float, n: int) -> None:
        bars.update(task, advance=1, description=f"train loss {loss:.3f}")
        run.log("train", step, loss=loss)

    def on_resume(step: int, epochs_done: int) -> None:
        run.forget_after(step, series=("train",))
        run.forget_after(epochs_done, series=("dev",))
        bars.update(task, completed=step)

    return task, on_step, on_resume


def _fit(trainer: Any, run: Any, config_before: bytes | None, checkpoint_every: int, resume: bool,
         **kw: Any) -> Any:
    """Run ``trainer(..., checkpoints=..., resume=...)``; an interruption or a checkpoint of another model
    ends the command with its exit code (``config_before``: the run's config.json to put back then)."""
    from gristmill.commands.train import note, refuse_resume
    from gristmill.train.checkpoint import ResumeMismatch

    try:
        return trainer(checkpoints=run.path / "checkpoints", resume=resume, notify=note, **kw)
    except KeyboardInterrupt:
        fail("interrupted; run the same command with --resume to continue from the last checkpoint" if checkpoint_every
             else "interrupted (no checkpoints were written: --checkpoint-every N makes a run resumable)",
             EXIT_INTERRUPTED)
    except ResumeMismatch as exc:
        refuse_resume(run.path, config_before, exc)


def _setup_torch(threads: int | None, seed: int) -> None:
    import torch
    import transformers

    from gristmill.models.runtime import set_torch_threads

    transformers.logging.set_verbosity_error()
    set_torch_threads(threads)
    torch.manual_seed(seed)


@config_command(FitConfig, help=NER_HELP, bf16_flag=True)
def train_ner(
    *,
    train: Path = typer.Option(..., "--train", help="Training data: CoNLL (token<TAB>tag) or JSONL with tokens/tags."),
    dev: NerDev,
    test: Path | None = typer.Option(None, "--test", help="Test data, scored once with the best weights."),
    data_format: NerFormat = None,
    model: EncoderModel = None,
    config: FitConfig,
    save_model: bool = typer.Option(True, "--save-model/--no-save-model", help="Save the best model in <out>/model."),
    out_dir: NerOut = None,
    resume: Resume = False,
    quiet: Quiet = False,
) -> None:
    """Fine-tune an encoder for named-entity recognition (BIO tags) with early stopping on dev entity F1."""
    extras.require("train ner", "torch", "transformers", "seqeval", "sklearn")
    from gristmill.io.base import InputError
    from gristmill.train.labels import bio_labels, read_tagged

    _check_files(train=train, dev=dev, test=test)
    if data_format not in (None, "conll", "jsonl"):
        fail(f"--format {data_format!r}: expected conll or jsonl")
    model_dir = _model_dir(model)
    data: dict[str, Any] = {}
    for name, path in (("train", train), ("dev", dev), ("test", test)):
        if path is None:
            continue
        try:
            data[name] = read_tagged(path, data_format)
        except InputError as exc:
            fail(f"--{name} {exc}")
        d = data[name]
        if not d.rows:
            if d.untagged:
                fail(f"--{name} {path}: no tags ({d.untagged} record(s) without them); expected CoNLL lines "
                     "'token<TAB>tag' or JSONL rows with 'tokens' and 'tags' lists")
            reason = f" (first problem: line {d.bad[0].line}: {d.bad[0].reason})" if d.bad else ""
            fail(f"--{name} {path}: no usable tagged sentences{reason}")
    labels = bio_labels(s.tags for s in data["train"].rows)
    if len(labels) < 2:
        fail(f"--train {train}: no entity tags (every tag is O); nothing to learn")

    import time

    from gristmill.commands.train import config_before
    from gristmill.progress import progress_bars
    from gristmill.train.token_classify import evaluate_tagged, fit_steps, load_token_model, train_token_classifier

    cfg = config
    out_dir = out_dir or Path("runs") / f"train-ner-{train.name.split('.')[0]}"
    config = {"train": str(train), "dev": str(dev), "test": str(test) if test else None, "format": data_format,
              "model": model_dir, "labels": labels, "save_model": save_model, **cfg.to_dict()}
    before = config_before(out_dir, resume)
    run = create_run(out_dir, kind="train-ner", config=config, resume=resume)
    bad = [b for d in data.values() for b in d.bad]
    _write_quarantine(run.path, bad)
    for name, path in (("train", train), ("dev", dev), ("test", test)):
        if name in data:
            _report_bad(name, path, data[name].bad)
    unseen = sorted({t for n in ("dev", "test") if n in data for s in data[n].rows for t in s.tags} - set(labels))
    if unseen:
        out.print(f"note: tags not in the training data are never predicted: {', '.join(unseen)}", highlight=False)

    _setup_torch(cfg.threads, cfg.seed)
    model_obj, tokenizer = load_token_model(model_dir, labels)
    trn, dv = data["train"].rows, data["dev"].rows
    steps = fit_steps(len(trn), cfg)[1]
    out.print(f"train {len(trn)} / dev {len(dv)}" + (f" / test {len(data['test'].rows)}" if test else "")
              + f" sentences; {len(labels)} labels; up to {cfg.epochs:g} epoch(s)", highlight=False)
    with progress_bars(not quiet) as bars:
        _, on_step, on_resume = _progress_hooks(bars, run, steps, "step")

        def on_epoch(rec: Any) -> None:
            run.log("dev", rec.epoch, f1=rec.score, precision=rec.dev["precision"], recall=rec.dev["recall"],
                    train_loss=rec.train_loss)
            out.print(f"epoch {rec.epoch}: train loss {rec.train_loss:.4f}, dev entity F1 {rec.score:.4f} "
                      f"({rec.seconds:.0f}s)", highlight=False)

        fitted = _fit(train_token_classifier, run, before, cfg.checkpoint_every, resume, model=model_obj,
                      tokenizer=tokenizer, train=trn, dev=dv, labels=labels, config=cfg, on_step=on_step,
                      on_epoch=on_epoch, on_resume=on_resume)
    why = f"stopped early after {len(fitted.history)} epochs" if fitted.stopped_early else \
        f"ran {len(fitted.history)} epochs"
    out.print(f"best dev entity F1 {fitted.best_score:.4f} at epoch {fitted.best_epoch} ({why})", highlight=False)
    ep = [r.epoch for r in fitted.history]
    run.curve("Dev entity F1 per epoch", {"dev F1": (ep, [r.score for r in fitted.history]),
                                          "dev precision": (ep, [r.dev["precision"] for r in fitted.history]),
                                          "dev recall": (ep, [r.dev["recall"] for r in fitted.history])},
              "epoch", "entity-level (seqeval)")
    run.curve("Training loss per step", {"loss": (list(range(1, len(fitted.step_losses) + 1)), fitted.step_losses)},
              "step", "cross-entropy", logy=True)
    run.result(best_epoch=fitted.best_epoch, dev_f1=fitted.best_score, epochs_run=len(fitted.history),
               stopped_early=fitted.stopped_early, train_seconds=round(fitted.seconds, 1),
               train_sentences=len(trn), skipped_records=len(bad))
    if test:
        t0 = time.perf_counter()
        scores = evaluate_tagged(model_obj, tokenizer, data["test"].rows, dict(enumerate(labels)), cfg.max_length,
                                 cfg.eval_batch_size, cfg.uses_bf16(), with_tables=True)
        out.print("\nTest, entity level (seqeval):\n" + scores["entity_table"], highlight=False, markup=False)
        out.print("Test, token level (scikit-learn):\n" + scores["token_table"], highlight=False, markup=False)
        run.result(test_precision=scores["precision"], test_recall=scores["recall"], test_f1=scores["f1"],
                   test_macro_f1=scores["macro_f1"], test_per_type=scores["per_type"],
                   test_seconds=round(time.perf_counter() - t0, 1))
        per = scores["per_type"]
        run.bars("Test entity F1 per type", list(per), [v["f1"] for v in per.values()], "F1")
        run.table("Test entity scores per type", ["type", "precision", "recall", "F1", "support"],
                  [[k, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", v["support"]]
                   for k, v in per.items()] + [["micro avg", f"{scores['precision']:.4f}", f"{scores['recall']:.4f}",
                                                f"{scores['f1']:.4f}", sum(v["support"] for v in per.values())]])
        run.text("Test classification report, entity level (seqeval)", scores["entity_table"])
        run.text("Test classification report, token level (scikit-learn)", scores["token_table"])
        wrong = [(s, p) for s, p in zip(data["test"].rows, scores["predictions"]) if p != s.tags][:10]
        run.samples("Test sentences with errors (word/gold, or word/gold→predicted)",
                    [(s.id, " ".join(f"{w}/{g}" if g == q else f"{w}/{g}→{q}"
                                     for w, g, q in zip(s.tokens, s.tags, p))) for s, p in wrong])
    if save_model:
        model_obj.save_pretrained(run.path / "model")
        tokenizer.save_pretrained(run.path / "model")
    report = run.finish(f"train ner: {train.name}")
    out.print(f"run directory: {run.path} (report: {report})", highlight=False)


@config_command(FitConfig, help=CLASSIFY_HELP, bf16_flag=True)
def train_classify(
    *,
    train: Path = typer.Option(..., "--train", help="Training data: JSONL with a text and a label field."),
    dev: ClassifyDev,
    test: Path | None = typer.Option(None, "--test", help="Test data (JSONL), scored once with the best weights."),
    text_field: str = typer.Option("text", "--text-field", help="Field holding the text."),
    label_field: str = typer.Option("label", "--label-field", help="Field holding the class label."),
    model: EncoderModel = None,
    config: FitConfig,
    save_model: bool = typer.Option(True, "--save-model/--no-save-model", help="Save the best model in <out>/model."),
    out_dir: ClassifyOut = None,
    resume: Resume = False,
    quiet: Quiet = False,
) -> None:
    """Fine-tune an encoder for text classification with early stopping on dev macro-F1."""
    extras.require("train classify", "torch", "transformers", "sklearn")
    from gristmill.io.base import InputError
    from gristmill.train.labels import read_labelled_text

    _check_files(train=train, dev=dev, test=test)
    model_dir = _model_dir(model)
    data: dict[str, Any] = {}
    for name, path in (("train", train), ("dev", dev), ("test", test)):
        if path is None:
            continue
        try:
            data[name] = read_labelled_text(path, text_field, label_field)
        except InputError as exc:
            fail(f"--{name} {exc}")
        d = data[name]
        if not d.rows:
            if d.untagged:
                fail(f"--{name} {path}: no labels ({d.untagged} record(s) without a {label_field!r} field); "
                     "set --label-field")
            reason = f" (first problem: line {d.bad[0].line}: {d.bad[0].reason})" if d.bad else ""
            fail(f"--{name} {path}: no usable labelled texts{reason}")

    from gristmill.train.seq_classify import class_labels, evaluate_labelled, load_sequence_model, \
        train_sequence_classifier

    labels = class_labels(data["train"].rows)
    if len(labels) < 2:
        fail(f"--train {train}: only one label ({labels[0]!r}); a classifier needs two or more")

    from gristmill.commands.train import config_before
    from gristmill.progress import progress_bars
    from gristmill.train.token_classify import fit_steps

    cfg = config
    out_dir = out_dir or Path("runs") / f"train-classify-{train.name.split('.')[0]}"
    config = {"train": str(train), "dev": str(dev), "test": str(test) if test else None, "text_field": text_field,
              "label_field": label_field, "model": model_dir, "labels": labels,
              "save_model": save_model, **cfg.to_dict()}
    before = config_before(out_dir, resume)
    run = create_run(out_dir, kind="train-classify", config=config, resume=resume)
    bad = [b for d in data.values() for b in d.bad]
    _write_quarantine(run.path, bad)
    for name, path in (("train", train), ("dev", dev), ("test", test)):
        if name in data:
            _report_bad(name, path, data[name].bad)
    _setup_torch(cfg.threads, cfg.seed)
    model_obj, tokenizer = load_sequence_model(model_dir, labels)
    trn, dv = data["train"].rows, data["dev"].rows
    run.bars("Training labels", labels, [sum(r.label == lab for r in trn) for lab in labels], "texts")
    steps = fit_steps(len(trn), cfg)[1]
    with progress_bars(not quiet) as bars:
        _, on_step, on_resume = _progress_hooks(bars, run, steps, "step")

        def on_epoch(rec: Any) -> None:
            run.log("dev", rec.epoch, macro_f1=rec.score, accuracy=rec.dev["accuracy"], train_loss=rec.train_loss)
            out.print(f"epoch {rec.epoch}: train loss {rec.train_loss:.4f}, dev macro-F1 {rec.score:.4f} "
                      f"({rec.seconds:.0f}s)", highlight=False)

        fitted = _fit(train_sequence_classifier, run, before, cfg.checkpoint_every, resume, model=model_obj,
                      tokenizer=tokenizer, train=trn, dev=dv, labels=labels, config=cfg, on_step=on_step,
                      on_epoch=on_epoch, on_resume=on_resume)
    out.print(f"best dev macro-F1 {fitted.best_score:.4f} at epoch {fitted.best_epoch}"
              + (" (stopped early)" if fitted.stopped_early else ""), highlight=False)
    ep = [r.epoch for r in fitted.history]
    run.curve("Dev scores per epoch", {"macro-F1": (ep, [r.score for r in fitted.history]),
                                       "accuracy": (ep, [r.dev["accuracy"] for r in fitted.history])},
              "epoch", "score")
    run.result(best_epoch=fitted.best_epoch, dev_macro_f1=fitted.best_score, epochs_run=len(fitted.history),
               stopped_early=fitted.stopped_early, train_seconds=round(fitted.seconds, 1), train_texts=len(trn),
               skipped_records=len(bad))
    if test:
        scores = evaluate_labelled(model_obj, tokenizer, data["test"].rows, dict(enumerate(labels)),
                                   cfg.max_length, cfg.eval_batch_size, cfg.uses_bf16(), with_table=True)
        out.print("\nTest (scikit-learn):\n" + scores["table"], highlight=False, markup=False)
        run.result(test_accuracy=scores["accuracy"], test_macro_f1=scores["macro_f1"],
                   test_micro_f1=scores["micro_f1"], test_per_class=scores["per_class"])
        run.text("Test classification report (scikit-learn)", scores["table"])
        per = scores["per_class"]
        run.bars("Test F1 per class", list(per), [v["f1"] for v in per.values()], "F1")
    if save_model:
        model_obj.save_pretrained(run.path / "model")
        tokenizer.save_pretrained(run.path / "model")
    report = run.finish(f"train classify: {train.name}")
    out.print(f"run directory: {run.path} (report: {report})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``ner`` and ``classify`` to ``app`` (the ``train`` group)."""
    app.command("ner")(train_ner)
    app.command("classify")(train_classify)
