"""``gristmill train sft``: supervised fine-tuning of a causal LM on chat data (LoRA or full)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gristmill import extras
from gristmill.commands.common import (BatchSize, CheckpointEvery, DevFraction, EvalEvery, EXIT_INTERRUPTED,
                                       EXIT_INVALID, Lr, Out, Quiet, Resume, Seed, Threads, create_run, described, err,
                                       fail, out)
from gristmill.commands.train import config_before, note, refuse_resume

SftOut = described(Out, "Run directory (default runs/train-sft-<data>); a non-empty directory gristmill did not "
                        "make is refused untouched.")
SftDevFraction = described(DevFraction, "Share of DATA held out for dev loss when --dev is not given.")
SftLr = described(Lr, "Peak learning rate (default 2e-4 LoRA, 2e-5 full).")
SftBatchSize = described(BatchSize, "Rows per micro-batch.")
SftEvalEvery = described(EvalEvery, "Dev loss every N optimizer steps (0: at the end).")


def train_sft_command(
    data: Annotated[Path, typer.Argument(help="Training chat data, JSONL: OpenAI messages, ShareGPT, Alpaca or "
                                              "instruction/input/output rows (a gristmill run's output).")],
    dev: Annotated[Optional[Path], typer.Option(help="Held-out chat data (default: --dev-fraction of DATA).")] = None,
    dev_fraction: SftDevFraction = 0.05,
    model: Annotated[Optional[str], typer.Option(help="Transformers directory or .gguf file (default: the packaged "
                                                      "SmolLM2-135M-Instruct).")] = None,
    method: Annotated[str, typer.Option(help="lora (peft adapters) or full (every weight).")] = "lora",
    lora_r: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha (scale = alpha / r).")] = 16,
    lora_dropout: Annotated[float, typer.Option(help="Dropout on the LoRA input.")] = 0.05,
    target_modules: Annotated[str, typer.Option(help="Comma-separated module names LoRA adapts.")] =
        "q_proj,k_proj,v_proj,o_proj",
    dtype: Annotated[str, typer.Option(help="auto (bf16 where the CPU supports it), bfloat16 or float32.")] = "auto",
    lr: SftLr = None,
    epochs: Annotated[float, typer.Option(help="Passes over the training rows.")] = 1.0,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps (overrides --epochs).")] = None,
    batch_size: SftBatchSize = 8,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    max_length: Annotated[int, typer.Option(help="Tokens per row; longer rows are cut on the right.")] = 512,
    warmup_ratio: Annotated[float, typer.Option(help="Share of steps with linear warmup.")] = 0.05,
    schedule: Annotated[str, typer.Option(help="Decay after warmup: cosine, linear or constant.")] = "cosine",
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay (matrices only).")] = 0.0,
    max_grad_norm: Annotated[float, typer.Option(help="Clip the gradient norm to this (0: no clipping).")] = 1.0,
    eval_every: SftEvalEvery = 0,
    checkpoint_every: CheckpointEvery = 0,
    samples: Annotated[int, typer.Option(help="Dev prompts answered by the trained model in the report.")] = 3,
    threads: Threads = None,
    no_merge: Annotated[bool, typer.Option("--no-merge", help="Save only the adapter, not merged/.")] = False,
    seed: Seed = 0,
    out_dir: SftOut = None,
    resume: Resume = False,
    quiet: Quiet = False,
) -> None:
    """Fine-tune a causal LM on chat data; loss on assistant tokens only. Writes adapter/, merged/, report.html."""
    extras.require("train sft", "torch", "transformers", "gguf", "peft", "scipy")
    from gristmill.train.chat_data import load_chat_rows
    from gristmill.train.sft import SFTConfig

    try:
        config = SFTConfig(model=model, method=method, lora_r=lora_r, lora_alpha=lora_alpha,
                           lora_dropout=lora_dropout,
                           target_modules=tuple(t.strip() for t in target_modules.split(",") if t.strip()),
                           dtype=dtype, learning_rate=lr, weight_decay=weight_decay, epochs=epochs,
                           max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
                           warmup_ratio=warmup_ratio, schedule=schedule, max_grad_norm=max_grad_norm, seed=seed,
                           eval_every=eval_every, checkpoint_every=checkpoint_every, threads=threads,
                           save_merged=not no_merge)
    except ValueError as exc:
        fail(f"--{str(exc).split()[0].replace('_', '-')}: {exc}", EXIT_INVALID)
    if model is not None and not Path(model).exists():
        fail(f"--model: {model}: no such file or directory", EXIT_INVALID)
    if model is not None and Path(model).is_dir() and not (Path(model) / "config.json").is_file():
        fail(f"--model: {model} has no config.json (not a transformers model directory)", EXIT_INVALID)
    try:
        rows, bad = load_chat_rows(data)
        dev_rows, dev_bad = load_chat_rows(dev) if dev is not None else ([], [])
    except FileNotFoundError as exc:
        fail(f"{'DATA' if not Path(data).is_file() else '--dev'}: {exc}", EXIT_INVALID)
    bad = bad + dev_bad
    for b in bad[:5]:
        err.print(f"skipped {b}", highlight=False, markup=False)
    if len(bad) > 5:
        err.print(f"... {len(bad) - 5} more skipped lines (listed in bad_rows.json)", highlight=False)
    if not rows:
        fail(f"{data}: no usable chat rows ({len(bad)} lines skipped)", EXIT_INVALID)

    from gristmill.progress import progress_bars
    from gristmill.train.checkpoint import ResumeMismatch
    from gristmill.train.sft import split_dev, train_sft
    from gristmill.train.sft_report import generate_answers, report_sft

    if dev is None:
        rows, dev_rows = split_dev(rows, dev_fraction, seed)
    run_path = out_dir or Path("runs") / f"train-sft-{Path(data).stem}"
    settings = {**config.to_dict(), "data": str(data), "dev": str(dev) if dev else None,
                "dev_fraction": dev_fraction if dev is None else None}
    before = config_before(run_path, resume)
    run = create_run(run_path, kind="train-sft", config=settings, resume=resume)
    run.save_json("bad_rows.json", [{"file": b.file, "line": b.line, "reason": b.reason} for b in bad])
    run.result(skipped_lines=len(bad))
    try:
        with progress_bars(not quiet) as bars:
            result = train_sft(rows, dev_rows, config, run=run, progress=bars, resume=resume, notify=note)
    except KeyboardInterrupt:
        fail("interrupted; run the same command with --resume to continue from the last checkpoint",
             EXIT_INTERRUPTED)
    except ResumeMismatch as exc:
        refuse_resume(run_path, before, exc)
    except ValueError as exc:
        fail(str(exc), EXIT_INVALID)
    shown = []
    if samples > 0 and dev_rows:
        prompts = dev_rows[:samples]
        answers = generate_answers(result.model, result.tokenizer, prompts, max_new_tokens=96)
        shown = [(next(m["content"] for m in p if m["role"] == "user")[:300], a) for p, a in zip(prompts, answers)]
    report_sft(run, result, config, samples=shown, bad=bad)
    report = run.finish(title=f"SFT ({config.method}) on {Path(data).name}")
    dev_text = (f", dev loss {result.dev_loss:.4f} (perplexity {result.dev_perplexity:.2f})"
                if result.dev_loss is not None else "")
    out.print(f"trained {result.steps} steps on {result.train_rows} rows, {result.train_tokens:,} tokens at "
              f"{result.tokens_per_s:,.0f} tokens/s ({result.dtype}){dev_text}; {len(bad)} lines skipped, "
              f"{result.dropped_no_assistant} rows with no assistant token within --max-length dropped",
              highlight=False)
    out.print(f"model: {result.merged_dir or result.adapter_dir}  report: {report}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``sft`` to ``app`` (``gristmill train``)."""
    app.command("sft")(train_sft_command)
