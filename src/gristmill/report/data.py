"""Read what a report needs from a run directory, and nothing else.

Every reader tolerates a missing optional file (``rejected/``, ``quarantine.jsonl``,
``recipe.yaml``) and reads big files lazily: rejected samples read the ``_reason``
column first and then only the row groups that hold the chosen rows; the quarantine file
is streamed line by line, counting every entry and keeping only the first few.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from gristmill.records import ID, REASON, TEXT

NO_REASON = "(no reason)"


def rule_of(reason: str | None) -> str:
    """The rule a reason belongs to: the part before the first ``:`` ("min_words: 12 < 50" -> "min_words")."""
    if not reason:
        return NO_REASON
    return reason.split(":", 1)[0].strip() or NO_REASON


def cut(value: Any, limit: int) -> str:
    """``value`` as text, cut to ``limit`` characters with an ellipsis when longer."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass
class QuarantineSummary:
    """All quarantined records counted by rule, and the first few kept whole."""

    total: int = 0
    by_rule: Counter = field(default_factory=Counter)
    first: list[dict[str, Any]] = field(default_factory=list)


def scan_quarantine(path: Path, keep: int = 20, raw_limit: int = 200) -> QuarantineSummary:
    """Stream ``quarantine.jsonl``: count every entry by rule and keep the first ``keep``.

    A line that is not a JSON object still counts, under the rule "unreadable entry".
    """
    summary = QuarantineSummary()
    if not path.is_file():
        return summary
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                entry = {"source": None, "line": None, "reason": "unreadable entry", "raw": line.rstrip("\n")}
            summary.total += 1
            reason = entry.get("reason")
            summary.by_rule[rule_of(reason if isinstance(reason, str) else None)] += 1
            if len(summary.first) < keep:
                summary.first.append(
                    {
                        "source": entry.get("source"),
                        "line": entry.get("line"),
                        "reason": reason,
                        "raw": cut(entry.get("raw"), raw_limit),
                    }
                )
    return summary


def rejected_samples(
    path: Path,
    per_rule: int = 5,
    expected_rules: Iterable[str] = (),
    text_limit: int = 300,
) -> dict[str, list[dict[str, Any]]]:
    """Up to ``per_rule`` rejected rows per rule from one ``rejected/<step>.parquet``.

    Reads ``_reason`` alone to choose rows (stopping early once every rule in
    ``expected_rules`` has enough), then ``id``, ``text`` and the ``_*`` columns of only
    the row groups that hold the chosen rows. Values are cut to ``text_limit`` characters.
    Rules come out in order of first appearance.
    """
    if not path.is_file():
        return {}
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    if REASON not in names:
        return {}
    expected = set(expected_rules)
    chosen: dict[str, list[int]] = {}
    offset = 0
    for batch in pf.iter_batches(columns=[REASON], batch_size=65536):
        for i, reason in enumerate(batch.column(0).to_pylist()):
            rows = chosen.setdefault(rule_of(reason), [])
            if len(rows) < per_rule:
                rows.append(offset + i)
        offset += batch.num_rows
        if expected and expected <= chosen.keys() and all(len(v) >= per_rule for v in chosen.values()):
            break

    columns = [c for c in (ID, REASON, TEXT) if c in names] + [c for c in names if c.startswith("_") and c != REASON]
    rows_by_index = _read_rows(pf, sorted(i for idx in chosen.values() for i in idx), columns)
    return {
        rule: [{c: cut(rows_by_index[i].get(c), text_limit) for c in columns} for i in idx]
        for rule, idx in chosen.items()
    }


def _read_rows(pf: pq.ParquetFile, indices: list[int], columns: list[str]) -> dict[int, dict[str, Any]]:
    """Rows at global ``indices`` (sorted), reading only the row groups that contain them."""
    out: dict[int, dict[str, Any]] = {}
    start = 0
    pos = 0
    for group in range(pf.metadata.num_row_groups):
        end = start + pf.metadata.row_group(group).num_rows
        wanted = []
        while pos < len(indices) and indices[pos] < end:
            wanted.append(indices[pos])
            pos += 1
        if wanted:
            table = pf.read_row_group(group, columns=columns).take([i - start for i in wanted])
            for i, row in zip(wanted, table.to_pylist()):
                out[i] = row
        if pos == len(indices):
            break
        start = end
    return out


@dataclass
class RunData:
    """A run directory, read lazily: each property reads its file once, on first use."""

    run_dir: Path

    @cached_property
    def stats(self) -> dict[str, Any]:
        """``stats.json`` as a dict; ``{}`` when missing or unreadable (e.g. a killed run)."""
        path = self.run_dir / "stats.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def name(self) -> str:
        return str(self.stats.get("run") or self.run_dir.name)

    @property
    def input(self) -> dict[str, Any]:
        return self.stats.get("input") or {}

    @property
    def output(self) -> dict[str, Any]:
        return self.stats.get("output") or {}

    @property
    def steps(self) -> list[dict[str, Any]]:
        """Step stats in run order."""
        steps = [s for s in self.stats.get("steps") or [] if isinstance(s, dict)]
        return sorted(steps, key=lambda s: s.get("index", 0))

    @cached_property
    def recipe_text(self) -> str | None:
        """The resolved recipe exactly as saved, or ``None`` when missing."""
        path = self.run_dir / "recipe.yaml"
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None

    def rejected_files(self) -> list[tuple[str, Path]]:
        """``(step, path)`` for every ``rejected/<step>.parquet``, in step order."""
        folder = self.run_dir / "rejected"
        if not folder.is_dir():
            return []
        return [(p.stem, p) for p in sorted(folder.glob("*.parquet"))]

    @cached_property
    def quarantine(self) -> QuarantineSummary:
        return scan_quarantine(self.run_dir / "quarantine.jsonl")
