"""Reading a finished run directory for the audit: its files, each read once, and column helpers.

The output rows are read from the last step's committed shards in ``cache/`` (Parquet with
every column, whatever the output format); a run directory without them falls back to
``data/*.parquet`` or JSON Lines. Only ``id``, ``source``, ``license``, ``_reason`` and the
audit namespaces (:data:`AUDIT_PREFIXES`) are read, never the text, except for the few
worst records shown (:meth:`RunFiles.snippets`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from gristmill.records import ID, LICENSE, REASON, SOURCE, TEXT

__all__ = ["AUDIT_PREFIXES", "OUTPUT", "WHERE", "RunFiles", "mask_secrets", "floats", "strings", "number",
           "worst_rows", "output_and_rejected", "cut", "concat_tables"]

AUDIT_PREFIXES = ("pii.", "toxicity.", "bias.", "decontam.", "copyright.")
WORST = 5
SNIPPET = 200
OUTPUT = "output"
WHERE = "_where"
_SECRET = re.compile(r"salt|secret|token|password|api_key", re.I)


def mask_secrets(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the values of secret-looking keys (salt, token, ...) replaced by ``***``."""
    return {k: "***" if _SECRET.search(str(k)) and not str(k).endswith("_env") and v is not None else v
            for k, v in params.items()}


# ---- reading the run directory ---------------------------------------------------------

def _read_columns(path: Path, wanted: Callable[[str], bool]) -> pa.Table:
    names = pq.read_schema(path).names
    return pq.read_table(path, columns=[c for c in names if wanted(c)])


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t is not None]
    if not tables:
        return pa.table({ID: pa.array([], pa.string())})
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column typed differently in some shards: keep the common ones
        common = set.intersection(*(set(t.column_names) for t in tables))
        return pa.concat_tables([t.select([c for c in t.column_names if c in common]) for t in tables],
                                promote_options="permissive")


def _is_audit_column(name: str) -> bool:
    return name in (ID, SOURCE, LICENSE, REASON) or name.startswith(AUDIT_PREFIXES)


@dataclass
class RunFiles:
    """The files of one run directory an audit reads, each read once, on first use."""

    run_dir: Path

    @cached_property
    def stats(self) -> dict[str, Any]:
        try:
            data = json.loads((self.run_dir / "stats.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @cached_property
    def recipe(self) -> dict[str, Any]:
        try:
            data = yaml.safe_load((self.run_dir / "recipe.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def steps(self) -> list[dict[str, Any]]:
        """Step stats in run order."""
        return sorted((s for s in self.stats.get("steps") or [] if isinstance(s, dict)),
                      key=lambda s: s.get("index", 0))

    @property
    def recipe_steps(self) -> list[dict[str, Any]]:
        """The resolved recipe's steps (``op``, ``params``) in order."""
        return [s for s in self.recipe.get("steps") or [] if isinstance(s, dict)]

    def ops(self) -> list[str]:
        return [str(s.get("op")) for s in self.recipe_steps]

    def last_step(self, op: str) -> tuple[int, dict[str, Any]] | None:
        """Index and params of the last step running ``op``."""
        found = None
        for i, s in enumerate(self.recipe_steps):
            if s.get("op") == op:
                found = (i, s.get("params") or {})
        return found

    def step_rules(self, op: str) -> list[dict[str, Any]]:
        """The rules stats.json recorded for the last step running ``op``."""
        rules: list[dict[str, Any]] = []
        for s in self.steps:
            if s.get("op") == op:
                rules = [r for r in s.get("rules") or [] if isinstance(r, dict)]
        return rules

    @cached_property
    def output_files(self) -> list[Path]:
        """The output rows as Parquet files with every column: the last step's committed shards."""
        cache = self.run_dir / "cache"
        steps = self.steps
        if steps and steps[-1].get("fingerprint"):
            d = cache / f"step-{steps[-1]['step']}-{steps[-1]['fingerprint']}"
            files = sorted(d.glob("shard-*/data.parquet"))
            if files:
                return files
        elif not steps:
            inputs = sorted(cache.glob("input-*"))
            if len(inputs) == 1:
                files = sorted(inputs[0].glob("shard-*/data.parquet"))
                if files:
                    return files
        return sorted((self.run_dir / "data").glob("*.parquet"))

    @cached_property
    def output_source(self) -> str:
        """Where the output rows were read from, for the audit's notes."""
        files = self.output_files
        if files:
            return "cache" if "cache" in files[0].parts else "data"
        return "data-jsonl" if self._jsonl_files() else "none"

    def _jsonl_files(self) -> list[Path]:
        return sorted(p for p in (self.run_dir / "data").glob("*.jsonl*") if p.is_file())

    def jsonl_records(self) -> Iterator[dict[str, Any]]:
        """Every JSON object of the output's JSONL files, as written (unparseable lines skipped)."""
        from gristmill.io.base import Opened

        for f in self._jsonl_files():  # the output's own columns, source included (a reader would reset it)
            with Opened(f) as fh:
                for line in fh.stream:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(rec, dict):
                        yield rec

    @cached_property
    def output(self) -> pa.Table:
        """``id``, ``source``, ``license`` and the audit columns of every output row (no text)."""
        if self.output_files:
            return concat_tables([_read_columns(f, _is_audit_column) for f in self.output_files])
        rows = [{k: v for k, v in rec.items() if _is_audit_column(k)} for rec in self.jsonl_records()]
        return pa.Table.from_pylist(rows) if rows else concat_tables([])

    @cached_property
    def rejected(self) -> pa.Table:
        """The audit columns of every rejected row, with ``_where`` = the step that dropped it."""
        parts = []
        for path in sorted((self.run_dir / "rejected").glob("*.parquet")):
            t = _read_columns(path, _is_audit_column)
            parts.append(t.append_column(WHERE, pa.array([path.stem] * t.num_rows, pa.string())))
        return concat_tables(parts)

    def quarantine_first(self, k: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        path = self.run_dir / "quarantine.jsonl"
        if not path.is_file():
            return out
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if len(out) >= k:
                    break
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if isinstance(e, dict):
                    out.append({"id": f"{e.get('source')}:{e.get('line')}", "value": e.get("reason"),
                                "where": "quarantine", "source": e.get("source"), "text": cut(e.get("raw"))})
        return out

    def snippets(self, wanted: dict[str, set[str]]) -> dict[tuple[str, str], str]:
        """Start of the text of rows by (where, id): ``where`` is ``output`` or a rejected step."""
        out: dict[tuple[str, str], str] = {}
        sources: list[tuple[str, Path]] = []
        if wanted.get(OUTPUT):
            sources += [(OUTPUT, f) for f in self.output_files]
        sources += [(w, self.run_dir / "rejected" / f"{w}.parquet") for w in wanted if w != OUTPUT]
        for where, path in sources:
            ids = wanted[where]
            if not path.is_file() or TEXT not in pq.read_schema(path).names:
                continue
            t = pq.read_table(path, columns=[ID, TEXT])
            t = t.filter(pc.is_in(t.column(ID), value_set=pa.array(sorted(ids), pa.string())))
            for rid, text in zip(t.column(ID).to_pylist(), t.column(TEXT).to_pylist()):
                out[(where, rid)] = cut(text)
        return out


def cut(text: Any, limit: int = SNIPPET) -> str | None:
    if text is None:
        return None
    s = text if isinstance(text, str) else str(text)
    return s if len(s) <= limit else s[:limit] + "…"


# ---- column helpers ------------------------------------------------------------------

def floats(table: pa.Table, column: str) -> np.ndarray:
    if column not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = table.column(column)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
        return np.full(table.num_rows, np.nan)
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def strings(table: pa.Table, column: str) -> list[Any]:
    return table.column(column).to_pylist() if column in table.column_names else [None] * table.num_rows


def number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(float(x), 6)


def worst_rows(table: pa.Table, mask: np.ndarray, key: np.ndarray, where: Iterable[str] | None = None,
           detail: Iterable[str] = (), k: int = WORST) -> list[dict[str, Any]]:
    """Up to ``k`` rows of ``table`` where ``mask``, highest ``key`` first (stable on ties)."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    vals = np.nan_to_num(key[idx], nan=-np.inf)
    idx = idx[np.argsort(-vals, kind="stable")][:k]
    ids, sources = strings(table, ID), strings(table, SOURCE)
    wheres = list(where) if where is not None else strings(table, WHERE)
    extra = {c: strings(table, c) for c in detail}
    out = []
    for i in idx.tolist():
        rec = {"id": ids[i], "value": number(key[i]) if not math.isnan(key[i]) else None,
               "where": wheres[i] or OUTPUT, "source": sources[i]}
        rec.update({c: v[i] for c, v in extra.items() if v[i] is not None})
        out.append(rec)
    return out


def output_and_rejected(run: RunFiles) -> tuple[pa.Table, list[str]]:
    """Output and rejected rows together, and where each is."""
    out, rej = run.output, run.rejected
    where = [OUTPUT] * out.num_rows + (strings(rej, WHERE) if rej.num_rows else [])
    both = concat_tables([out.drop_columns([c for c in [WHERE] if c in out.column_names]),
                    rej.drop_columns([c for c in [WHERE, REASON] if c in rej.column_names])])
    return both, where


