"""``gristmill train``: registers the training commands (lm, sft, ner, classify)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from gristmill.commands import train_lm, train_ner, train_sft

    train_lm.register(app)
    train_sft.register(app)
    train_ner.register(app)
