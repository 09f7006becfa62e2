"""``gristmill train``: registers the training commands (lm, sft, ner, classify); what they share."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from gristmill.commands.common import EXIT_INVALID, err, fail


def note(message: str) -> None:
    """One line of news on stderr (skipped checkpoints, where a resumed run starts)."""
    err.print(message, highlight=False, markup=False, soft_wrap=True)


def config_before(run_path: Path, resume: bool) -> bytes | None:
    """The ``config.json`` of a run about to be resumed, for :func:`refuse_resume` to put back."""
    f = Path(run_path) / "config.json"
    return f.read_bytes() if resume and f.is_file() else None


def refuse_resume(run_path: Path, config: bytes | None, exc: Exception) -> NoReturn:
    """Exit 2 with the reason a checkpoint cannot be resumed, leaving the run's ``config.json`` as it was."""
    if config is not None:
        (Path(run_path) / "config.json").write_bytes(config)
    fail(str(exc), EXIT_INVALID)


def register(app: typer.Typer) -> None:
    from gristmill.commands import train_lm, train_ner, train_sft

    train_lm.register(app)
    train_sft.register(app)
    train_ner.register(app)
