"""``gristmill train sft``: supervised fine-tuning of a causal LM on chat data (LoRA or full)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gristmill import extras
from gristmill.commands.common import (EXIT_INTERRUPTED, EXIT_INVALID, Dev, Out, Quiet, Resume, config_command,
                                       create_run, described, err, fail, out)
from gristmill.commands.train import config_before, note, refuse_resume
from gristmill.train.config import SFTConfig

SftOut = described(Out, "Run directory (default runs/train-sft-<data>); a non-empty directory gristmill did not "
                        "make is refused untouched.")
SftDev = described(Dev, "Dev data: held-out chat data (default: --dev-fraction of DATA).")
HELP = {
    "model": "Model to start from: a transformers directory or .gguf file (default: the packaged "
             "SmolLM2-135M-Instruct).",
    "dev_fraction": "Share of the data held out as the dev set: of DATA, when --dev is not given.",
    "lr": "Peak learning rate (default 2e-4 LoRA, 2e-5 full).",
    "batch_size": "Examples per batch: rows per micro-batch.",
    "max_length": "Tokens per sequence the model sees at once: longer rows are cut on the right.",
    "epochs": "Passes over the training rows (a fraction ends the last pass early).",
}


@config_command(SFTConfig, help=HELP)
def train_sft_command(
    data: Annotated[Path, typer.Argument(help="Training chat data, JSONL: OpenAI messages, ShareGPT, Alpaca or "
                                              "instruction/input/output rows (a gristmill run's output).")],
    *,
    dev: SftDev = None,
    config: SFTConfig,
    samples: Annotated[int, typer.Option(help="Dev prompts answered by the trained model in the report.")] = 3,
    out_dir: SftOut = None,
    resume: Resume = False,
    quiet: Quiet = False,
) -> None:
    """Fine-tune a causal LM on chat data; loss on assistant tokens only. Writes adapter/, merged/, report.html."""
    extras.require("train sft", "torch", "transformers", "gguf", "peft", "scipy")
    from gristmill.train.chat_data import load_chat_rows

    model = config.model
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
        rows, dev_rows = split_dev(rows, config.dev_fraction, config.seed)
    run_path = out_dir or Path("runs") / f"train-sft-{Path(data).stem}"
    settings = {**config.to_dict(), "data": str(data), "dev": str(dev) if dev else None,
                "dev_fraction": config.dev_fraction if dev is None else None}
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
