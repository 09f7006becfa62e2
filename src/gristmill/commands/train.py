"""What the ``gristmill train`` commands (lm, sft, ner, classify) share: notes, and refusing a resume.

The commands themselves live in ``train_lm``, ``train_sft`` and ``train_ner`` and are
registered by :mod:`gristmill.cli`; this module imports none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

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
