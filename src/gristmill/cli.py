"""The ``gristmill`` command: thin commands over library functions.

The pipeline commands (run, validate, report, card, ops) live here; the others in
:mod:`gristmill.commands`. Exit codes, :func:`~gristmill.commands.common.fail` and the
options every command shares come from :mod:`gristmill.commands.common`: 0 success; 1 the
run failed (an operator error, or bad input under ``--strict``); 2 the recipe, an input
path or the command line is invalid and nothing ran; 3 the run finished and wrote
everything, but a gate of the recipe failed (the message names each failed gate, its
measured value and its worst records); 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from gristmill import registry
from gristmill.commands.common import EXIT_FAILED, EXIT_GATE, EXIT_INTERRUPTED, EXIT_INVALID, Quiet, fail, out
from gristmill.recipe import RecipeError, load_recipe

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Build fine-tuning data for language models and measure how far it can be trusted.")
ops_app = typer.Typer(help="List operators, or show one operator's parameters.", invoke_without_command=True)
app.add_typer(ops_app, name="ops")
eval_app = typer.Typer(help="Evaluate models and datasets: perplexity, generation metrics, diversity, "
                       "divergence, bias benchmarks.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
train_app = typer.Typer(help="Train models on built data: causal-LM SFT, NER, classification, a small LM from "
                        "scratch.", no_args_is_help=True)
app.add_typer(train_app, name="train")
experiment_app = typer.Typer(help="Experiments on the risks of generated data: model collapse, bias "
                             "amplification.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@app.command()
def run(recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
        set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a value: steps.2.params.min_words=10")] = None,
        name: Annotated[Optional[str], typer.Option(help="Run name (default: the recipe's name).")] = None,
        runs_dir: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("runs"),
        workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes (default: the recipe's).")] = None,
        strict: Annotated[bool, typer.Option("--strict", help="Fail at the first bad input record.")] = False,
        fresh: Annotated[bool, typer.Option("--fresh", help="Discard this run's cached steps and outputs "
                                            "(the LLM response cache is kept).")] = False,
        fresh_cache: Annotated[bool, typer.Option("--fresh-cache", help="With --fresh, also discard the LLM "
                                                  "response cache (every answer is paid for again).")] = False,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Let output.path be a directory that holds "
                                                "other files; files of the same names are replaced, nothing "
                                                "else is touched.")] = False,
        quiet: Quiet = False) -> None:
    """Run a recipe into runs/<name>/ (resumes and reuses unchanged steps)."""
    from gristmill.api import run as run_api  # the function Python code calls as gristmill.run
    from gristmill.pipeline.ingest import StrictInputError
    from gristmill.pipeline.ownership import RunDirError
    from gristmill.pipeline.worker import StepFailed
    from gristmill.runner import RunBusy

    if fresh_cache and not fresh:
        fail("--fresh-cache only goes with --fresh", EXIT_INVALID)
    try:
        summary = run_api(recipe, overrides=set_ or [], runs_dir=runs_dir, name=name, workers=workers,
                          progress=not quiet, fresh=fresh, strict=strict or None, fresh_cache=fresh_cache,
                          overwrite=overwrite)
    except RecipeError as exc:
        fail(str(exc) if len(exc.errors) > 1 else f"{exc.source}: {exc.errors[0]}", EXIT_INVALID)
    except RunDirError as exc:
        fail(str(exc), EXIT_INVALID)
    except StrictInputError as exc:
        fail(f"bad input (--strict): {exc}", EXIT_FAILED)
    except (StepFailed, RunBusy) as exc:
        fail(disk_message(exc) or str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume", EXIT_INTERRUPTED)
    except OSError as exc:
        message = disk_message(exc)
        if message is None:
            raise
        fail(message, EXIT_FAILED)
    s = summary.stats
    renamed = s["input"].get("ids_renamed", 0)
    out.print(f"[bold green]done[/] {s['input']['rows']:,} rows read, {s['input']['quarantined']:,} quarantined, "
              f"{s['output']['rows']:,} written in {s['seconds']:.1f}s → {summary.run_dir}"
              + (f"\n  {renamed:,} repeated input ids got a ~N suffix" if renamed else ""))
    for st in s["steps"]:
        drops = ", ".join(f"{k} {v:,}" for k, v in st["dropped"].items())
        out.print(f"  {st['step']:<28} {st['rows_in']:>9,} → {st['rows_out']:>9,}"
                  f"{'  (cached)' if st['cached'] else ''}{'  dropped: ' + drops if drops else ''}")
    out.print(f"  report: {summary.run_dir / 'report.html'}")
    from gristmill.audit import failure_message

    if summary.llm_failed:
        fail(summary.llm_failed, EXIT_FAILED)
    failed = failure_message(summary.audit)
    if failed:
        fail(f"{failed}\n  details: {summary.run_dir / 'audit.json'}", EXIT_GATE)


def disk_message(exc: BaseException) -> str | None:
    """One line for a full or read-only disk met anywhere in a run (also inside a worker's error)."""
    import errno
    import os

    texts = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
             errno.EROFS: "read-only file system"}
    seen: BaseException | None = exc
    while seen is not None:
        code = seen.errno if isinstance(seen, OSError) else None
        if code not in texts:  # pyarrow and worker tracebacks may carry the reason only in the text
            code = next((c for c in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) if os.strerror(c) in str(seen)), None)
        if code in texts:
            what = texts[code]
            where = f" writing {seen.filename}" if getattr(seen, "filename", None) else ""
            return (f"{what}{where}; the shards committed so far are kept: free space and run the same command "
                    "again to resume")
        seen = seen.__cause__ or seen.__context__
    return None


@app.command()
def validate(recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
             set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a value.")] = None,
             quiet: Quiet = False) -> None:
    """Check a recipe completely without running it."""
    try:
        spec = load_recipe(recipe, set_ or [])
    except RecipeError as exc:
        fail(str(exc), EXIT_INVALID)
    out.print(f"ok: {spec.name}: {len(spec.steps)} steps over {len(spec.input_paths)} input path(s)")


RunDirArg = Annotated[Path, typer.Argument(help="A run directory (runs/<name>).")]


@app.command()
def report(run_dir: RunDirArg, quiet: Quiet = False) -> None:
    """Rebuild a run's report.html from its files."""
    from gristmill.pipeline.run_reader import RunReader
    from gristmill.report import write_report

    if not (run_dir / "stats.json").exists() and (run_dir / "config.json").is_file():
        from gristmill.rundir import RunDir  # a train / eval / experiment / select run

        out.print(str(RunDir(run_dir, "").finish()))
        return
    problem = RunReader(run_dir).incomplete
    if problem:
        fail(problem, EXIT_INVALID)
    out.print(str(write_report(run_dir)))


@app.command()
def card(run_dir: RunDirArg, quiet: Quiet = False) -> None:
    """Rebuild a run's DATASET_CARD.md from its files."""
    from gristmill.audit import write_card
    from gristmill.pipeline.run_reader import RunReader

    run = RunReader(run_dir)
    if run.incomplete:
        fail(run.incomplete, EXIT_INVALID)
    out.print(str(write_card(run)))


@ops_app.callback()
def ops_list(ctx: typer.Context) -> None:
    """List every registered operator with its kind and one-line doc."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table("name", "kind", "what it does", box=None, pad_edge=False)
    for n in registry.names():
        cls = registry.get(n)
        table.add_row(n, cls.kind, cls.summary())
    out.print(table)


def describe_params(cls: Any) -> list[tuple[str, str, str, str]]:
    """(name, type, default, doc) for each parameter of an operator class."""
    rows = []
    for pname, f in cls.Params.model_fields.items():
        ann = f.annotation
        tname = getattr(ann, "__name__", None) if isinstance(ann, type) else None
        tname = tname or str(ann).replace("typing.", "")
        default = "required" if f.is_required() else repr(f.get_default(call_default_factory=True))
        limits = [f"{k} {getattr(m, a)}" for m in f.metadata for k, a in
                  ((">=", "ge"), (">", "gt"), ("<=", "le"), ("<", "lt")) if getattr(m, a, None) is not None]
        doc = (f.description or "") + (f" ({', '.join(limits)})" if limits else "")
        rows.append((pname, tname, default, doc))
    return rows


def reflow(doc: str) -> str:
    """Join the lines of each prose paragraph so the terminal wraps them; keep lists and code as they are."""
    paras = []
    for para in doc.split("\n\n"):
        lines = para.splitlines()
        structured = any(ln.startswith((" ", "-", "*", "|")) or ln.rstrip().endswith("::") for ln in lines)
        paras.append(para if structured else " ".join(ln.strip() for ln in lines))
    return "\n\n".join(paras)


@ops_app.command("show")
def ops_show(name: Annotated[str, typer.Argument(help="Operator name, e.g. filter.length")]) -> None:
    """Show an operator's documentation and parameters (types, defaults, docs)."""
    import inspect

    try:
        cls = registry.get(name)
    except registry.UnknownOperator as exc:
        fail(str(exc), EXIT_INVALID)
    out.print(f"[bold]{cls.name}[/]  ({cls.kind}, version {cls.version})\n")
    out.print(reflow(inspect.getdoc(cls) or ""), highlight=False)
    table = Table("parameter", "type", "default", "description", title="parameters", title_justify="left")
    for row in describe_params(cls):
        table.add_row(*row)
    out.print()
    out.print(table)
    if cls.overrides("describe_extra"):
        out.print(cls().describe_extra())


def _register_commands() -> None:
    """Commands that live in :mod:`gristmill.commands` (each module owns its command's options; the
    options several commands share are declared once in :mod:`gristmill.commands.common`)."""
    from gristmill.commands import (batch, crawl, eval_cmds, experiment, generate, review, select, train_lm,
                                    train_ner, train_sft)

    for trainer in (train_lm, train_sft, train_ner):
        trainer.register(train_app)
    eval_cmds.register(eval_app)
    experiment.register(experiment_app)
    generate.register(app)
    select.register(app)
    crawl.register(app)
    review.register(app)
    batch.register(app)


_register_commands()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
