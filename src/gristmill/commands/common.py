"""What every command shares: exit codes, :func:`fail`, the consoles, the common options, run directories.

Exit codes (the README's table): 0 success; 1 the run failed (an operator error, bad input
under ``--strict``, a full disk, every LLM request failed); 2 nothing ran: the recipe, an
input path or the command line is invalid; 3 the run finished and wrote everything, but a
gate failed; 130 interrupted.

Options that several commands take are declared here once, as ``Annotated`` aliases, so
each means the same everywhere (name, short flag, type, validation): :data:`Quiet`,
:data:`Out`, :data:`OutFile`, :data:`Seed`, :data:`Threads`, :data:`Resume`,
:data:`Json`, :data:`Limit`, and the training settings several trainers share
(:data:`BatchSize`, :data:`Lr`, :data:`CheckpointEvery`, :data:`EvalEvery`,
:data:`Bf16`, :data:`DevFraction`). A command may say more in the help of one
(:func:`described`), never change what it is.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional, get_args

import typer
from rich.console import Console
from rich.markup import escape

__all__ = ["EXIT_FAILED", "EXIT_GATE", "EXIT_INTERRUPTED", "EXIT_INVALID", "EXIT_OK", "BatchSize", "Bf16",
           "CheckpointEvery", "DevFraction", "EvalEvery", "Json", "Limit", "Lr", "Out", "OutFile", "Quiet", "Resume",
           "Seed", "Threads", "create_run", "described", "err", "fail", "out"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_GATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Print ``message`` as one error line on stderr and exit with ``code`` (default 2: invalid input,
    nothing ran)."""
    if sys.stderr.isatty():  # escaped: messages quote values such as "[a, b]", which are not markup
        err.print(f"[bold red]error[/]: {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    else:
        print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def create_run(path: Path, kind: str, config: dict[str, Any], resume: bool = False) -> Any:
    """:meth:`gristmill.rundir.RunDir.create`, failing with one line (exit 2) on a directory gristmill
    did not make or cannot write."""
    from gristmill.rundir import RunDir

    try:
        return RunDir.create(path, kind=kind, config=config, resume=resume)
    except OSError as exc:
        fail(str(exc) if exc.filename is None else f"--out {path}: cannot create the run directory ({exc.strerror})")


# ---- the common options -----------------------------------------------------------------------

def described(option: Any, help: str) -> Any:
    """``option`` (one of the aliases below) with another help text: the same flag, type and checks."""
    base, info = get_args(option)
    info = copy.copy(info)
    info.help = help
    return Annotated[base, info]


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be > 0, not {value}")
    return value


def _fraction(value: float) -> float:
    if not 0 <= value < 1:
        raise typer.BadParameter(f"must be in [0, 1), not {value}")
    return value


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (errors and results still print).")]
Out = Annotated[Optional[Path], typer.Option("--out", help="Run directory (default: runs/<command>-<input name>); "
                                             "a non-empty directory gristmill did not make is refused untouched.")]
OutFile = Annotated[Optional[Path], typer.Option("--out", help="Write the result to this file.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of every random choice the command makes (splits, "
                                   "order, initialisation, sampling, bootstrap); the same seed gives the same "
                                   "result.")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, help="torch CPU threads (default: all cores).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out where it stopped (its newest "
                                      "complete checkpoint, or the parts already finished); without it, the run "
                                      "starts over.")]
Json = Annotated[bool, typer.Option("--json", help="Print only the figures, as JSON, to stdout.")]
Limit = Annotated[Optional[int], typer.Option("--limit", min=1, help="Read only the first N records.")]

# Training settings that several trainers share (each trainer's config object keeps the rest).
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Examples per batch.")]
Lr = Annotated[Optional[float], typer.Option("--lr", callback=_positive, help="Peak learning rate.")]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", min=0, help="Checkpoint every N optimizer steps "
                                              "into <out>/checkpoints (0: none).")]
EvalEvery = Annotated[int, typer.Option("--eval-every", min=0, help="Dev evaluation every N optimizer steps.")]
Bf16 = Annotated[bool, typer.Option("--bf16/--fp32", help="bfloat16 autocast for training (about 2x faster on CPUs "
                                    "with bf16); --fp32: float32 throughout.")]
DevFraction = Annotated[float, typer.Option("--dev-fraction", callback=_fraction, help="Share of the data held out "
                                            "as the dev set (0: none).")]
