"""Writing a run's audit files: ``audit.json`` and, from it, ``DATASET_CARD.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.audit.audit import AUDIT_NAME, build_audit
from gristmill.audit.card import write_card
from gristmill.pipeline.run_reader import RunReader
from gristmill.pipeline.store import write_json_atomic

__all__ = ["write_audit"]


def write_audit(run_dir: Path) -> dict[str, Any]:
    """Write ``audit.json`` and ``DATASET_CARD.md`` into ``run_dir``; return the audit."""
    run = RunReader(run_dir)
    audit = build_audit(run)
    write_json_atomic(run.run_dir / AUDIT_NAME, audit)
    write_card(run, audit)
    return audit
