"""Helpers shared by the command modules: failing with an exit code, consoles."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Print ``message`` as an error and exit with ``code`` (2: invalid input, nothing ran)."""
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
