"""The one reader of a pipeline run directory: the report, the audit and the dataset card read through it.

A run directory (:mod:`gristmill.pipeline.store`, :mod:`gristmill.pipeline.finalize`) holds
``stats.json``, ``recipe.yaml``, ``quarantine.jsonl``, ``rejected/<step>.parquet``,
``scores/<step>.parquet``, ``summaries/*.json``, ``audit.json``, the output in ``data/`` and
each step's committed shards in ``cache/``. :class:`RunReader` reads each file once, on first
use, and tolerates a missing optional one (an empty value, not an error). :attr:`RunReader.incomplete`
says why a directory is not a finished run (an ``INCOMPLETE`` marker, no ``stats.json``),
so callers can refuse it.

Big files are read lazily: rejected samples read the ``_reason`` column first and then only
the row groups that hold the chosen rows (:func:`rejected_samples`); the quarantine file is
streamed line by line, counting every entry and keeping only the first few
(:func:`scan_quarantine`); output and rejected rows are read column-wise, only the columns
asked for (:meth:`RunReader.output_table`, :meth:`RunReader.rejected_table`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from gristmill.records import ID, NO_REASON, REASON, TEXT, rule_of

__all__ = ["AUDIT_FILE", "INCOMPLETE", "NO_REASON", "UNREADABLE", "WHERE", "QuarantineSummary", "RunReader", "concat_tables",
           "cut", "incomplete_reason", "rejected_samples", "rule_of", "scan_quarantine"]

# The marker a run keeps in its directory while it writes its outputs (set and cleared by
# gristmill.pipeline.ownership, which should import it from here: this module imports no
# other gristmill module that could lead back to the recipe, so the audit can use it).
INCOMPLETE = "INCOMPLETE"
AUDIT_FILE = "audit.json"  # written by gristmill.audit.write_audit

UNREADABLE = "unreadable entry"
WHERE = "_where"  # column added to rejected rows: the step that dropped the row

Columns = Callable[[str], bool] | Sequence[str]


def incomplete_reason(run_dir: Path) -> str | None:
    """Why ``run_dir`` is not a finished pipeline run, or None if it is."""
    if not run_dir.is_dir():
        return f"{run_dir}: no such run directory"
    if (run_dir / INCOMPLETE).exists():
        return (f"{run_dir}: the run is incomplete (interrupted, failed or still running), so its files may mix "
                "two runs; run the same `gristmill run` command again to finish it")
    if not (run_dir / "stats.json").is_file():
        return f"{run_dir}: not a finished run directory (no stats.json)"
    return None


def cut(value: Any, limit: int) -> str:
    """``value`` as text, cut to ``limit`` characters with an ellipsis when longer."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, default=str,
                                                                                     ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass
class QuarantineSummary:
    """All quarantined records counted by rule, and the first few kept whole."""

    total: int = 0
    by_rule: Counter = field(default_factory=Counter)
    first: list[dict[str, Any]] = field(default_factory=list)


def scan_quarantine(path: Path, keep: int = 20, raw_limit: int = 200) -> QuarantineSummary:
    """Stream ``quarantine.jsonl``: count every entry by rule and keep the first ``keep``.

    A line that is not a JSON object still counts, under the rule :data:`UNREADABLE`.
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
                entry = {"source": None, "line": None, "reason": UNREADABLE, "raw": line.rstrip("\n")}
            summary.total += 1
            reason = entry.get("reason")
            summary.by_rule[rule_of(reason if isinstance(reason, str) else None)] += 1
            if len(summary.first) < keep:
                first = {"source": entry.get("source"), "line": entry.get("line"), "reason": reason,
                         "raw": cut(entry.get("raw"), raw_limit)}
                if entry.get("offset") is not None:  # a WARC record's byte offset
                    first["offset"] = entry["offset"]
                summary.first.append(first)
    return summary


def rejected_samples(path: Path, per_rule: int = 5, expected_rules: Iterable[str] = (),
                     text_limit: int = 300) -> dict[str, list[dict[str, Any]]]:
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
    return {rule: [{c: cut(rows_by_index[i].get(c), text_limit) for c in columns} for i in idx]
            for rule, idx in chosen.items()}


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


def concat_tables(tables: Sequence[pa.Table | None]) -> pa.Table:
    """One table of ``tables`` (types promoted); a column typed differently somewhere keeps only the common ones."""
    kept = [t for t in tables if t is not None]
    if not kept:
        return pa.table({ID: pa.array([], pa.string())})
    try:
        return pa.concat_tables(kept, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        common = set.intersection(*(set(t.column_names) for t in kept))
        return pa.concat_tables([t.select([c for c in t.column_names if c in common]) for t in kept],
                                promote_options="permissive")


def _select(names: Sequence[str], columns: Columns) -> list[str]:
    if callable(columns):
        return [c for c in names if columns(c)]
    return [c for c in columns if c in names]


def _key(columns: Columns) -> Any:
    return columns if callable(columns) else ("names", tuple(columns))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class RunReader:
    """A pipeline run directory, read lazily: each file once, on first use."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._tables: dict[tuple[str, Any], pa.Table] = {}

    def __repr__(self) -> str:
        return f"RunReader({str(self.run_dir)!r})"

    # ---- state ---------------------------------------------------------------------------
    @property
    def incomplete(self) -> str | None:
        """Why the directory is not a finished pipeline run (missing, an ``INCOMPLETE`` marker, no
        ``stats.json``), or None if it is one."""
        return incomplete_reason(self.run_dir)

    # ---- stats.json and recipe.yaml -------------------------------------------------------
    @cached_property
    def stats(self) -> dict[str, Any]:
        """``stats.json`` as a dict; ``{}`` when missing or unreadable (e.g. a killed run)."""
        data = _read_json(self.run_dir / "stats.json")
        return data if isinstance(data, dict) else {}

    @property
    def name(self) -> str:
        return str(self.stats.get("run") or self.run_dir.name)

    @property
    def input(self) -> dict[str, Any]:
        """The ``input`` block of stats.json (rows, quarantined, paths, format)."""
        return self.stats.get("input") or {}

    @property
    def output(self) -> dict[str, Any]:
        """The ``output`` block of stats.json (rows, format, files, splits, json_columns)."""
        return self.stats.get("output") or {}

    @property
    def steps(self) -> list[dict[str, Any]]:
        """Step stats in run order."""
        steps = [s for s in self.stats.get("steps") or [] if isinstance(s, dict)]
        return sorted(steps, key=lambda s: s.get("index", 0))

    def step_rules(self, op: str) -> list[dict[str, Any]]:
        """The rules stats.json recorded for the last step running ``op``."""
        rules: list[dict[str, Any]] = []
        for s in self.steps:
            if s.get("op") == op:
                rules = [r for r in s.get("rules") or [] if isinstance(r, dict)]
        return rules

    @cached_property
    def recipe_text(self) -> str | None:
        """The resolved recipe exactly as saved, or ``None`` when missing."""
        path = self.run_dir / "recipe.yaml"
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None

    @cached_property
    def recipe(self) -> dict[str, Any]:
        """The resolved recipe as a dict; ``{}`` when missing or unreadable."""
        try:
            data = yaml.safe_load(self.recipe_text or "")
        except yaml.YAMLError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def recipe_steps(self) -> list[dict[str, Any]]:
        """The resolved recipe's steps (``op``, ``params``) in order."""
        return [s for s in self.recipe.get("steps") or [] if isinstance(s, dict)]

    def step_params(self, index: int) -> dict[str, Any]:
        """The parameters of the recipe's step ``index`` (``{}`` when unknown)."""
        steps = self.recipe_steps
        params = steps[index].get("params") if 0 <= index < len(steps) else None
        return params if isinstance(params, dict) else {}

    def ops(self) -> list[str]:
        return [str(s.get("op")) for s in self.recipe_steps]

    def last_step(self, op: str) -> tuple[int, dict[str, Any]] | None:
        """Index and params of the last step running ``op``."""
        found = None
        for i, s in enumerate(self.recipe_steps):
            if s.get("op") == op:
                found = (i, s.get("params") or {})
        return found

    # ---- other files ----------------------------------------------------------------------
    def read_json(self, relative: str | Path) -> Any:
        """A JSON file of the run directory, or None when missing or unreadable."""
        return _read_json(self.run_dir / relative)

    def summary(self, label: str) -> dict[str, Any] | None:
        """``summaries/<label>.json`` (a step's summary), or None."""
        data = self.read_json(Path("summaries") / f"{label}.json")
        return data if isinstance(data, dict) else None

    @cached_property
    def audit(self) -> dict[str, Any] | None:
        """``audit.json``, or None when missing or unreadable."""
        data = self.read_json(AUDIT_FILE)
        return data if isinstance(data, dict) else None

    def step_dir(self, step: dict[str, Any]) -> Path:
        """The committed shards of a step of stats.json: ``cache/step-<label>-<fingerprint>``."""
        return self.run_dir / "cache" / f"step-{step.get('step')}-{step.get('fingerprint')}"

    def scores_file(self, label: str) -> Path:
        return self.run_dir / "scores" / f"{label}.parquet"

    def rejected_file(self, label: str) -> Path:
        return self.run_dir / "rejected" / f"{label}.parquet"

    def rejected_files(self) -> list[tuple[str, Path]]:
        """``(step, path)`` for every ``rejected/<step>.parquet``, in step order."""
        folder = self.run_dir / "rejected"
        if not folder.is_dir():
            return []
        return [(p.stem, p) for p in sorted(folder.glob("*.parquet"))]

    @cached_property
    def quarantine(self) -> QuarantineSummary:
        """``quarantine.jsonl`` counted by rule, with the first entries."""
        return scan_quarantine(self.run_dir / "quarantine.jsonl")

    # ---- rows -----------------------------------------------------------------------------
    @cached_property
    def output_files(self) -> list[Path]:
        """The output rows as Parquet files with every column: the last step's committed shards, else
        the single input's shards of a run without steps, else ``data/*.parquet``."""
        steps = self.steps
        if steps and steps[-1].get("fingerprint"):
            files = sorted(self.step_dir(steps[-1]).glob("shard-*/data.parquet"))
            if files:
                return files
        elif not steps:
            inputs = sorted((self.run_dir / "cache").glob("input-*"))
            if len(inputs) == 1:
                files = sorted(inputs[0].glob("shard-*/data.parquet"))
                if files:
                    return files
        data = self.run_dir / "data"  # a hub output keeps its Parquet files in data/data/
        return sorted(data.glob("*.parquet")) or sorted((data / "data").glob("*.parquet"))

    @cached_property
    def output_source(self) -> str:
        """Where the output rows are read from: ``cache``, ``data``, ``data-jsonl`` or ``none``."""
        files = self.output_files
        if files:
            return "cache" if "cache" in files[0].parts else "data"
        return "data-jsonl" if self._jsonl_files() else "none"

    def _jsonl_files(self) -> list[Path]:
        return sorted(p for p in (self.run_dir / "data").glob("*.jsonl*") if p.is_file())

    def jsonl_records(self) -> Iterator[dict[str, Any]]:
        """Every JSON object of the output's JSONL files, as written (unparseable lines skipped), a record's
        ``metadata`` object (chat and trainer formats) spread into its columns."""
        from gristmill.io.base import Opened
        from gristmill.io.metadata import spread

        for f in self._jsonl_files():  # the output's own columns, source included (a reader would reset it)
            with Opened(f) as fh:
                for line in fh.stream:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(rec, dict):
                        yield spread(rec)  # a chat or trainer record's metadata object: its columns

    def output_table(self, columns: Columns) -> pa.Table:
        """The output rows with only ``columns`` (names, or a test of a name), from the Parquet output
        files, else from the JSONL output; read once per ``columns``."""
        key = ("output", _key(columns))
        if key not in self._tables:
            if self.output_files:
                table = concat_tables([pq.read_table(f, columns=_select(pq.read_schema(f).names, columns))
                                       for f in self.output_files])
            else:
                rows = [{k: rec[k] for k in _select(list(rec), columns)} for rec in self.jsonl_records()]
                table = pa.Table.from_pylist(rows) if rows else concat_tables([])
            self._tables[key] = table
        return self._tables[key]

    def rejected_table(self, columns: Columns) -> pa.Table:
        """Every rejected row with only ``columns``, and :data:`WHERE` = the step that dropped it."""
        key = ("rejected", _key(columns))
        if key not in self._tables:
            parts = []
            for step, path in self.rejected_files():
                t = pq.read_table(path, columns=_select(pq.read_schema(path).names, columns))
                parts.append(t.append_column(WHERE, pa.array([step] * t.num_rows, pa.string())))
            self._tables[key] = concat_tables(parts)
        return self._tables[key]

    def texts(self, wanted: dict[str, set[str]], output: str = "output") -> dict[tuple[str, str], Any]:
        """The ``text`` of rows by ``(where, id)``: ``where`` is ``output`` or a rejected step's label."""
        found: dict[tuple[str, str], Any] = {}
        sources: list[tuple[str, Path]] = []
        if wanted.get(output):
            sources += [(output, f) for f in self.output_files]
        sources += [(w, self.rejected_file(w)) for w in wanted if w != output]
        for where, path in sources:
            if not path.is_file() or TEXT not in pq.read_schema(path).names:
                continue
            t = pq.read_table(path, columns=[ID, TEXT])
            t = t.filter(pc.is_in(t.column(ID), value_set=pa.array(sorted(wanted[where]), pa.string())))
            for rid, text in zip(t.column(ID).to_pylist(), t.column(TEXT).to_pylist()):
                found[(where, rid)] = text
        return found
