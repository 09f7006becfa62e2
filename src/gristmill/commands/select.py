"""``gristmill select``: choose a training subset under a row budget (baselines and bandits)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from gristmill import extras
from gristmill.commands.common import (BatchSize, Data, Dev, InputFormat, MaxLength, Out, Quiet, Seed, Threads,
                                       deprecated, described, err, fail, out)

SelectOut = described(Out, "Run directory (default runs/select-<selector>); a non-empty directory gristmill did not "
                           "make is refused untouched.")
PullRows = described(BatchSize, "Examples per batch: bandit, rows per pull.")
Candidates = described(Data, "Input data: the candidate rows (jsonl, csv, parquet, alpaca, self_instruct, ...).")
RewardDev = described(Dev, "Dev data: bandit, dev rows for the reward (default: held out).")
ExampleTokens = described(MaxLength, "Tokens per sequence the model sees at once: ifd/bandit, tokens per example.")


class Reward(str, Enum):
    drop = "drop"
    relative = "relative"


class Strategy(str, Enum):
    random = "random"
    quality = "quality"
    ifd = "ifd"
    kcenter = "kcenter"
    judge = "judge"
    bandit_exp3 = "bandit-exp3"
    bandit_ucb = "bandit-ucb"


def select(
    data: Candidates,
    budget: Annotated[int, typer.Option("--budget", min=1, help="Rows to select.")],
    selector: Annotated[Optional[Strategy], typer.Option("--selector", help="How to choose (required).")] = None,
    out_dir: SelectOut = None,
    fmt: InputFormat = None,
    seed: Seed = 0,
    score_field: Annotated[Optional[str], typer.Option(
        "--score-field", help="quality/judge: the score column (e.g. quality.gopher.n_words, judge.score). "
        "quality without it uses a built-in length x distinct-word heuristic.")] = None,
    instruction_fields: Annotated[str, typer.Option(
        "--instruction-fields", help="Comma-separated columns joined as the instruction.")] = "instruction,input",
    response_field: Annotated[str, typer.Option("--response-field", help="The response column.")] = "output",
    lm: Annotated[Optional[str], typer.Option("--lm", help="ifd: causal LM directory (default SmolLM2-135M).")] = None,
    keep_ifd_over_1: Annotated[bool, typer.Option("--keep-ifd-over-1", help="ifd: keep rows with IFD > 1.")] = False,
    embed_model: Annotated[Optional[str], typer.Option(
        "--embed-model", help="kcenter/bandit clusters: encoder directory (default all-MiniLM-L6-v2).")] = None,
    arm_field: Annotated[Optional[str], typer.Option(
        "--arm-field", help="bandit: arms are this column's values (default: k-means clusters).")] = None,
    clusters: Annotated[int, typer.Option("--clusters", min=1, help="bandit: k-means clusters as arms.")] = 8,
    batch_size: PullRows = 8,
    steps_per_pull: Annotated[int, typer.Option("--steps-per-pull", min=1, help="bandit: train steps per pull.")] = 1,
    gamma: Annotated[float, typer.Option("--gamma", min=0.0001, max=1.0, help="EXP3 exploration rate.")] = 0.1,
    ucb_c: Annotated[float, typer.Option("--ucb-c", min=0.0, help="UCB1 exploration weight.")] = 1.0,
    reward: Annotated[Reward, typer.Option(
        "--reward", help="bandit: dev-loss drop of a pull, or that drop minus the recent average drop.")] = Reward.drop,
    learner_model: Annotated[Optional[str], typer.Option(
        "--learner-model", help="bandit: causal LM trained while selecting (default SmolLM2-135M).")] = None,
    learner_lr: Annotated[float, typer.Option("--learner-lr", min=0.0, help="bandit: learner learning rate.")] = 5e-5,
    dev: RewardDev = None,
    dev_size: Annotated[int, typer.Option("--dev-size", min=1, help="bandit: rows held out as dev without --dev.")] = 32,
    max_length: ExampleTokens = 256,
    threads: Threads = None,
    quiet: Quiet = False,
    strategy: Annotated[Optional[Strategy], typer.Option("--strategy", hidden=True, help="Deprecated: --selector.")]
    = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", hidden=True, help="Deprecated: --max-length.")]
    = None,
) -> None:
    """Choose up to BUDGET training rows and write them (subset.jsonl) with a report of why."""
    extras.require("select", "torch", "transformers", "gguf", "sklearn")
    from gristmill.io.base import InputError
    from gristmill.rundir import NotARunDirectory
    from gristmill.select.runner import SelectConfig, SelectionError, run_selection

    if strategy is not None:
        deprecated("--strategy", "--selector (--strategy names a decoding strategy in generate and experiments)")
        selector = selector or strategy
    if max_tokens is not None:
        deprecated("--max-tokens", "--max-length")
        if max_tokens < 8:
            fail(f"--max-tokens must be >= 8, not {max_tokens}")
        max_length = max_tokens
    if selector is None:
        fail("--selector is required: one of " + ", ".join(s.value for s in Strategy))
    strategy = selector
    if not data.exists():
        fail(f"--data {data}: no such file or directory")
    if dev is not None and not dev.exists():
        fail(f"--dev {dev}: no such file or directory")
    from gristmill.models.runtime import set_torch_threads

    if strategy.value in ("ifd", "kcenter", "bandit-exp3", "bandit-ucb"):
        set_torch_threads(threads)
    cfg = SelectConfig(
        data=str(data), budget=budget, strategy=strategy.value,
        out=str(out_dir or Path("runs") / f"select-{strategy.value}"), format=fmt, seed=seed,
        score_field=score_field, instruction_fields=[f.strip() for f in instruction_fields.split(",") if f.strip()],
        response_field=response_field, lm=lm, drop_ifd_over_1=not keep_ifd_over_1, embed_model=embed_model,
        arm_field=arm_field, clusters=clusters, batch_size=batch_size, steps_per_pull=steps_per_pull, gamma=gamma,
        ucb_c=ucb_c, reward=reward.value, learner_model=learner_model, learner_lr=learner_lr, dev=str(dev) if dev else None,
        dev_size=dev_size, max_tokens=max_length)
    try:
        res = run_selection(cfg, progress=not quiet, log=lambda s: err.print(s, highlight=False, markup=False))
    except (SelectionError, InputError, NotARunDirectory) as exc:
        fail(str(exc))
    out.print(f"[bold green]done[/] {res['selected']:,} of {res['candidates']:,} rows ({res['strategy']}) "
              f"in {res['seconds']:.1f}s → {cfg.out}/subset.jsonl"
              + (f"\n  {res['malformed_records']} malformed records skipped" if res["malformed_records"] else "")
              + f"\n  report: {cfg.out}/report.html")


def register(app: typer.Typer) -> None:
    """Add ``select`` to ``app``."""
    app.command("select")(select)
