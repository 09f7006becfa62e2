"""The audit of a finished run: metrics, gates and risk summaries, as ``audit.json``.

Everything is read from the run directory, as the report is: ``stats.json`` (rows and drops
per step, the rules of scoring steps), ``recipe.yaml`` (steps with their parameters, the
gates), ``quarantine.jsonl``, ``rejected/*.parquet`` and the output rows. The output rows
are read from the last step's committed shards in ``cache/`` (Parquet with every column,
whatever the output format); a run directory without them falls back to ``data/*.parquet``
or JSON Lines. Only generic things are read: columns by their namespaced names
(``pii.*``, ``toxicity.*``, ``decontam.*``, ``copyright.*``, ``bias.*``), ``source`` and
``license``, and the steps' names and parameters, never an operator's code.

Metric definitions are in :data:`gristmill.audit.gates.METRICS`; in detail:

* ``pii.remaining``: for each output row, the spans in ``pii.spans`` whose type the last
  ``pii.redact`` step redacts (its ``types``; every type when no redact step ran). pii.redact
  replaces ``pii.spans`` by the spans it still detects after redacting (a redacted value,
  tag or pseudonym, is not detected again), so this counts PII the pipeline meant to remove
  and did not; types it keeps on purpose (by default dates and plain URLs) do not count.
  Without ``pii.spans`` the row's ``pii.remaining`` (all types), else ``pii.count``.
* ``toxicity.fraction``: output rows with ``toxicity.score`` strictly above the
  ``toxicity.score`` step's rule maximum (stats.json), else 0.5, over ``rows.out``.
* ``contamination.*``: rows with ``decontam.overlap >= min_overlap`` of the last
  ``decontam.ngram`` step (recipe.yaml; default 1).
* ``copyright.*``: rows whose ``copyright.*`` scores exceed a rule of the last
  ``copyright.overlap`` step (stats.json).

Each gate gets the measured value, whether it passed, and its worst records (up to 5:
id, the value, where the row is, its source and the start of its text).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from gristmill.audit.gates import DROPPED, Gate, GateError, compare, metric_info, parse_gate
from gristmill.records import ID, LICENSE, REASON, SOURCE, TEXT

__all__ = ["AUDIT_NAME", "RunFiles", "build_audit", "write_audit", "failure_message", "AUDIT_PREFIXES"]

AUDIT_NAME = "audit.json"
AUDIT_PREFIXES = ("pii.", "toxicity.", "bias.", "decontam.", "copyright.")
WORST = 5
SNIPPET = 200
DEFAULT_TOXICITY_THRESHOLD = 0.5
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


def _concat(tables: list[pa.Table]) -> pa.Table:
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

    @cached_property
    def output(self) -> pa.Table:
        """``id``, ``source``, ``license`` and the audit columns of every output row (no text)."""
        if self.output_files:
            return _concat([_read_columns(f, _is_audit_column) for f in self.output_files])
        from gristmill.io.base import Opened

        rows: list[dict[str, Any]] = []
        for f in self._jsonl_files():  # the output's own columns, source included (a reader would reset it)
            with Opened(f) as fh:
                for line in fh.stream:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(rec, dict):
                        rows.append({k: v for k, v in rec.items() if _is_audit_column(k)})
        return pa.Table.from_pylist(rows) if rows else _concat([])

    @cached_property
    def rejected(self) -> pa.Table:
        """The audit columns of every rejected row, with ``_where`` = the step that dropped it."""
        parts = []
        for path in sorted((self.run_dir / "rejected").glob("*.parquet")):
            t = _read_columns(path, _is_audit_column)
            parts.append(t.append_column(WHERE, pa.array([path.stem] * t.num_rows, pa.string())))
        return _concat(parts)

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
                                "where": "quarantine", "source": e.get("source"), "text": _cut(e.get("raw"))})
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
                out[(where, rid)] = _cut(text)
        return out


def _cut(text: Any, limit: int = SNIPPET) -> str | None:
    if text is None:
        return None
    s = text if isinstance(text, str) else str(text)
    return s if len(s) <= limit else s[:limit] + "…"


# ---- column helpers ------------------------------------------------------------------

def _floats(table: pa.Table, column: str) -> np.ndarray:
    if column not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = table.column(column)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
        return np.full(table.num_rows, np.nan)
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def _strings(table: pa.Table, column: str) -> list[Any]:
    return table.column(column).to_pylist() if column in table.column_names else [None] * table.num_rows


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(float(x), 6)


def _worst(table: pa.Table, mask: np.ndarray, key: np.ndarray, where: Iterable[str] | None = None,
           detail: Iterable[str] = (), k: int = WORST) -> list[dict[str, Any]]:
    """Up to ``k`` rows of ``table`` where ``mask``, highest ``key`` first (stable on ties)."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    vals = np.nan_to_num(key[idx], nan=-np.inf)
    idx = idx[np.argsort(-vals, kind="stable")][:k]
    ids, sources = _strings(table, ID), _strings(table, SOURCE)
    wheres = list(where) if where is not None else _strings(table, WHERE)
    extra = {c: _strings(table, c) for c in detail}
    out = []
    for i in idx.tolist():
        rec = {"id": ids[i], "value": _number(key[i]) if not math.isnan(key[i]) else None,
               "where": wheres[i] or OUTPUT, "source": sources[i]}
        rec.update({c: v[i] for c, v in extra.items() if v[i] is not None})
        out.append(rec)
    return out


def _both(run: RunFiles) -> tuple[pa.Table, list[str]]:
    """Output and rejected rows together, and where each is."""
    out, rej = run.output, run.rejected
    where = [OUTPUT] * out.num_rows + (_strings(rej, WHERE) if rej.num_rows else [])
    both = _concat([out.drop_columns([c for c in [WHERE] if c in out.column_names]),
                    rej.drop_columns([c for c in [WHERE, REASON] if c in rej.column_names])])
    return both, where


# ---- metrics -------------------------------------------------------------------------

@dataclass
class Measure:
    """A metric's value, the rows that push it the wrong way (worst first), and a note."""

    value: Any
    worst: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    rows: Callable[[Gate], list[dict[str, Any]]] | None = None  # gate-specific worst rows (set metrics)


def _dropped(run: RunFiles, target: str) -> Measure:
    steps = run.steps
    by_op = [s for s in steps if s.get("op") == target]
    if by_op:
        value = sum(sum((s.get("dropped") or {}).values()) for s in by_op)
        rej = run.rejected
        mask = np.isin(np.asarray(_strings(rej, WHERE), object), [s.get("step") for s in by_op])
        note = None
    else:
        value = sum(int((s.get("dropped") or {}).get(target, 0)) for s in steps)
        rej = run.rejected
        rules = [str(r).split(":", 1)[0].strip() for r in _strings(rej, REASON)]
        mask = np.asarray([r == target for r in rules], bool)
        seen = any(target in (s.get("dropped") or {}) for s in steps)
        note = None if seen else f"no step dropped rows under rule {target!r} in this run"
    worst = _worst(rej, mask, np.zeros(rej.num_rows), detail=[REASON]) if rej.num_rows else []
    for w in worst:
        w["value"] = w.pop(REASON, None)
    return Measure(value, worst, note)


def pii_types(run: RunFiles) -> set[str] | None:
    """The PII types that count as remaining: the last pii.redact step's ``types`` (None: all types)."""
    redact = run.last_step("pii.redact")
    types = redact[1].get("types") if redact is not None else None
    return set(map(str, types)) if isinstance(types, list) else None


def _pii_remaining(run: RunFiles) -> tuple[np.ndarray, list[dict[str, int]]]:
    """Remaining PII spans per output row (see the module doc), and their counts by type."""
    out = run.output
    counted = pii_types(run)
    if "pii.spans" in out.column_names:
        remaining, types = np.zeros(out.num_rows), []
        for i, spans in enumerate(_strings(out, "pii.spans")):
            kinds = Counter(t for t in map(_span_type, spans or []) if counted is None or t in counted)
            remaining[i] = sum(kinds.values())
            types.append(dict(kinds))
        return remaining, types
    for column in ("pii.remaining", "pii.count"):
        if column in out.column_names:
            return np.nan_to_num(_floats(out, column)), [{} for _ in range(out.num_rows)]
    return np.zeros(out.num_rows), [{} for _ in range(out.num_rows)]


def _span_type(span: Any) -> str:
    if isinstance(span, dict):
        for key in ("type", "entity_type", "label", "entity"):
            if span.get(key) is not None:
                return str(span[key])
    return "?"


def _threshold_rows(run: RunFiles, op: str, table: pa.Table) -> np.ndarray:
    """Rows of ``table`` over any max (or under any min) of ``op``'s rules in stats.json."""
    over = np.zeros(table.num_rows, bool)
    for r in run.step_rules(op):
        v = _floats(table, str(r.get("column")))
        with np.errstate(invalid="ignore"):
            if isinstance(r.get("max"), (int, float)):
                over |= v > r["max"]
            if isinstance(r.get("min"), (int, float)):
                over |= v < r["min"]
    return over


def toxicity_threshold(run: RunFiles) -> float:
    for r in run.step_rules("toxicity.score"):
        if r.get("column") == "toxicity.score" and isinstance(r.get("max"), (int, float)):
            return float(r["max"])
    return DEFAULT_TOXICITY_THRESHOLD


def measure(run: RunFiles, name: str) -> Measure:
    """The value of metric ``name`` for the run (``GateError`` for an unknown name)."""
    metric_info(name)
    stats, out = run.stats, run.output
    rows_out = int((stats.get("output") or {}).get("rows", out.num_rows))
    if name == "rows.in":
        return Measure(int((stats.get("input") or {}).get("rows", 0)))
    if name == "rows.out":
        return Measure(rows_out)
    if name == "rows.dropped":
        return Measure(sum(sum((s.get("dropped") or {}).values()) for s in run.steps))
    if name == "quarantine.count":
        return Measure(int((stats.get("input") or {}).get("quarantined", 0)), run.quarantine_first(WORST))
    if name.startswith(DROPPED):
        return _dropped(run, name[len(DROPPED):])
    if name.startswith("contamination."):
        step = run.last_step("decontam.ngram")
        if step is None:
            return Measure(None, note="no decontam.ngram step ran")
        threshold = int(step[1].get("min_overlap", 1))
        table, where = (_both(run) if name == "contamination.count" else (out, [OUTPUT] * out.num_rows))
        overlap = _floats(table, "decontam.overlap")
        with np.errstate(invalid="ignore"):
            flagged = overlap >= threshold
        return Measure(int(flagged.sum()), _worst(table, flagged, overlap, where,
                                                  ["decontam.benchmark", "decontam.item"]),
                       f"decontam.overlap >= {threshold}")
    if name in ("pii.remaining", "pii.rows"):
        if run.last_step("pii.detect") is None and run.last_step("pii.redact") is None:
            return Measure(None, note="no pii step ran")
        remaining, types = _pii_remaining(run)
        value = int(remaining.sum()) if name == "pii.remaining" else int((remaining > 0).sum())
        worst = _worst(out, remaining > 0, remaining, [OUTPUT] * out.num_rows)
        ids = _strings(out, ID)
        by_id = {ids[i]: types[i] for i in range(out.num_rows) if remaining[i] > 0}
        for w in worst:
            w["types"] = by_id.get(w["id"], {})
        return Measure(value, worst)
    if name.startswith("toxicity."):
        if run.last_step("toxicity.score") is None:
            return Measure(None, note="no toxicity.score step ran")
        threshold = toxicity_threshold(run)
        score = _floats(out, "toxicity.score")
        with np.errstate(invalid="ignore"):
            above = score > threshold
        count = int(above.sum())
        value = count if name == "toxicity.count" else (round(count / rows_out, 6) if rows_out else 0.0)
        return Measure(value, _worst(out, above, score, [OUTPUT] * out.num_rows),
                       f"toxicity.score > {threshold:g}")
    if name.startswith("copyright."):
        if run.last_step("copyright.overlap") is None:
            return Measure(None, note="no copyright.overlap step ran")
        if name == "copyright.max_span":
            span = _floats(out, "copyright.longest_span")
            finite = span[~np.isnan(span)]
            value = int(finite.max()) if finite.size else 0
            return Measure(value, _worst(out, span > 0, span, [OUTPUT] * out.num_rows, ["copyright.source"]))
        table, where = (_both(run) if name == "copyright.count" else (out, [OUTPUT] * out.num_rows))
        over = _threshold_rows(run, "copyright.overlap", table)
        span = _floats(table, "copyright.longest_span")
        return Measure(int(over.sum()), _worst(table, over, span, where, ["copyright.source",
                                                                           "copyright.overlap_ratio"]))
    if name == "license":
        values = _strings(out, LICENSE)
        distinct = sorted(set(values), key=lambda v: (v is not None, str(v)))

        def offenders(gate: Gate) -> list[dict[str, Any]]:
            want = set(gate.value) if isinstance(gate.value, list) else {gate.value}
            bad = (lambda v: v not in want) if gate.op in ("in", "==") else (lambda v: v in want)
            mask = np.asarray([bad(v) for v in values], bool)
            rows = _worst(out, mask, np.zeros(out.num_rows), [OUTPUT] * out.num_rows, [LICENSE])
            for r in rows:
                r["value"] = r.pop(LICENSE, None)
            return rows

        return Measure(distinct, rows=offenders)
    raise GateError(f"unknown metric {name!r}")  # pragma: no cover - metric_info knows every name


def applicable_metrics(run: RunFiles) -> list[str]:
    """The metrics that mean something for this run (its steps decide), in catalogue order."""
    from gristmill.audit.gates import METRICS

    ops = set(run.ops())
    names = [m.name for m in METRICS.values() if not m.needs or set(m.needs) & ops]
    rules: dict[str, None] = {}
    for s in run.steps:
        rules.update(dict.fromkeys(s.get("dropped") or {}))
    return names + [DROPPED + r for r in rules]


# ---- summaries -----------------------------------------------------------------------

def summarize_column(col: pa.ChunkedArray | pa.Array, top: int = 10) -> dict[str, Any]:
    """A short, JSON-able summary of any column: numbers get quantiles, strings and list items counts."""
    t = col.type
    n = len(col)
    nulls = col.null_count
    out: dict[str, Any] = {"rows": n, "nulls": nulls}
    if pa.types.is_boolean(t):
        out["true"] = int(pc.sum(col.cast(pa.int64())).as_py() or 0)
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        v = np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
        v = v[~np.isnan(v)]
        if v.size:
            q = np.percentile(v, [50, 90, 99])
            out.update(mean=_number(v.mean()), min=_number(v.min()), p50=_number(q[0]), p90=_number(q[1]),
                       p99=_number(q[2]), max=_number(v.max()), nonzero=int(np.count_nonzero(v)))
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        counts = Counter(x for x in col.to_pylist() if x is not None)
        out["distinct"] = len(counts)
        out["top"] = dict(counts.most_common(top))
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        values = col.to_pylist()
        items = [x for v in values if v for x in v]
        out["items"] = len(items)
        out["rows_with_items"] = sum(1 for v in values if v)
        keys = Counter(_span_type(x) if isinstance(x, dict) else str(x) for x in items)
        out["top"] = dict(keys.most_common(top))
    elif pa.types.is_struct(t) or pa.types.is_map(t):
        out["kind"] = str(t)
    return out


def _summaries(run: RunFiles, measures: dict[str, Measure]) -> dict[str, Any]:
    out, rej = run.output, run.rejected
    columns = {c: summarize_column(out.column(c)) for c in out.column_names if c.startswith(AUDIT_PREFIXES)}
    sections: dict[str, Any] = {}

    def steps_of(prefix: str) -> list[dict[str, Any]]:
        return [{"index": i, "op": s.get("op"), "params": mask_secrets(s.get("params") or {})}
                for i, s in enumerate(run.recipe_steps) if str(s.get("op", "")).startswith(prefix)]

    def dropped_by(prefix: str) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for s in run.steps:
            if str(s.get("op", "")).startswith(prefix):
                counts.update(s.get("dropped") or {})
        return dict(counts)

    for family, prefix, metrics in (
            ("pii", "pii.", ["pii.remaining", "pii.rows"]),
            ("toxicity", "toxicity.", ["toxicity.fraction", "toxicity.count"]),
            ("contamination", "decontam.", ["contamination.count", "contamination.remaining"]),
            ("copyright", "copyright.", ["copyright.count", "copyright.remaining", "copyright.max_span"]),
            ("bias", "bias.", [])):
        ran = steps_of(prefix)
        cols = {c: v for c, v in columns.items() if c.startswith(prefix)}
        if not ran and not cols:
            continue
        sections[family] = {"steps": ran, "dropped": dropped_by(prefix),
                            **{m: measures[m].value for m in metrics if m in measures}, "columns": cols}
    if "pii" in sections:
        counted = pii_types(run)
        sections["pii"]["types_counted"] = sorted(counted) if counted is not None else "all"
        if "pii.redacted" in out.column_names:
            sections["pii"]["spans_redacted"] = int(np.nansum(_floats(out, "pii.redacted")))
    if "toxicity" in sections:
        sections["toxicity"]["threshold"] = toxicity_threshold(run)
    if "contamination" in sections:
        bench = Counter(v for v in _strings(_both(run)[0], "decontam.benchmark") if v is not None)
        sections["contamination"]["matched_rows_by_benchmark"] = dict(bench.most_common())
    if "copyright" in sections:
        srcs = Counter(v for v in _strings(_both(run)[0], "copyright.source") if v is not None)
        sections["copyright"]["matched_rows_by_document"] = dict(srcs.most_common(20))
    if rej.num_rows:
        sections.setdefault("rejected", {})["rows"] = rej.num_rows
    return sections


def sources_and_licenses(run: RunFiles) -> list[dict[str, Any]]:
    """Output rows per (source, license), most rows first."""
    out = run.output
    pairs = Counter(zip(_strings(out, SOURCE), _strings(out, LICENSE)))
    return [{"source": s, "license": lic, "rows": n}
            for (s, lic), n in sorted(pairs.items(), key=lambda kv: (-kv[1], str(kv[0][0]), str(kv[0][1])))]


# ---- the audit -----------------------------------------------------------------------

def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def evaluate_gates(run: RunFiles, measures: dict[str, Measure]) -> list[dict[str, Any]]:
    """Each gate of the run's recipe with its measured value, pass/fail and worst records."""
    results = []
    for expr in run.recipe.get("gates") or []:
        entry: dict[str, Any] = {"expr": str(expr)}
        try:
            gate = parse_gate(expr)
            m = measures.get(gate.metric) or measure(run, gate.metric)
            measures.setdefault(gate.metric, m)
        except GateError as exc:
            entry.update(passed=False, error=str(exc), measured=None, worst=[])
            results.append(entry)
            continue
        passed = m.value is not None and compare(gate, m.value)
        worst = m.rows(gate) if m.rows is not None else m.worst
        entry.update(metric=gate.metric, op=gate.op, value=gate.value, measured=_json_value(m.value),
                     passed=bool(passed), worst=[] if passed else worst)
        if m.note:
            entry["note"] = m.note
        results.append(entry)
    return results


def _fill_snippets(run: RunFiles, groups: Iterable[list[dict[str, Any]]]) -> None:
    groups = list(groups)
    wanted: dict[str, set[str]] = {}
    for g in groups:
        for w in g:
            if w.get("where") != "quarantine" and w.get("id") is not None:
                wanted.setdefault(str(w["where"]), set()).add(str(w["id"]))
    if not wanted:
        return
    texts = run.snippets(wanted)
    for g in groups:
        for w in g:
            if (str(w.get("where")), w.get("id")) in texts:
                w["text"] = texts[(str(w["where"]), w["id"])]


def build_audit(run_dir: Path) -> dict[str, Any]:
    """The audit of the run in ``run_dir`` as a JSON-able dict (see the module doc)."""
    run = RunFiles(Path(run_dir))
    measures = {name: measure(run, name) for name in applicable_metrics(run)}
    gates = evaluate_gates(run, measures)
    metrics = {name: {"value": _json_value(m.value), **({"note": m.note} if m.note else {})}
               for name, m in measures.items()}
    worst = {name: m.worst for name, m in measures.items()
             if m.worst and not name.startswith(("rows.", DROPPED))}
    _fill_snippets(run, [*(g["worst"] for g in gates), *worst.values()])
    return {
        "run": run.stats.get("run", run.run_dir.name),
        "passed": all(g["passed"] for g in gates),
        "gates": gates,
        "metrics": metrics,
        "worst": worst,
        "summaries": _summaries(run, measures),
        "sources": sources_and_licenses(run),
        "output_read_from": run.output_source,
    }


def write_audit(run_dir: Path) -> dict[str, Any]:
    """Write ``audit.json`` and ``DATASET_CARD.md`` into ``run_dir``; return the audit."""
    from gristmill.audit.card import write_card
    from gristmill.pipeline.store import write_json_atomic

    audit = build_audit(Path(run_dir))
    write_json_atomic(Path(run_dir) / AUDIT_NAME, audit)
    write_card(Path(run_dir), audit)
    return audit


def failure_message(audit: dict[str, Any]) -> str | None:
    """One paragraph per violated gate: the gate, the measured value and its worst records; None if all pass."""
    failed = [g for g in audit.get("gates") or [] if not g.get("passed")]
    if not failed:
        return None
    lines = [f"{len(failed)} of {len(audit['gates'])} gate(s) failed:"]
    for g in failed:
        if g.get("error"):
            lines.append(f"  {g['expr']}: {g['error']}")
            continue
        measured = g.get("measured")
        shown = ", ".join(map(str, measured)) if isinstance(measured, list) else measured
        lines.append(f"  {g['expr']}: measured {shown}" + (f" ({g['note']})" if g.get("note") else ""))
        worst = g.get("worst") or []
        if worst:
            lines.append("    worst records:")
            lines += [f"      {_describe(w)}" for w in worst]
    return "\n".join(lines)


def _describe(w: dict[str, Any]) -> str:
    """``id (value, where, detail=...)`` of one worst record."""
    parts = [str(w.get("value"))]
    if w.get("where") not in (OUTPUT, None):
        parts.append(f"in {w['where']}")
    for k, v in w.items():
        if k not in ("id", "value", "where", "source", "text"):
            parts.append(f"{k}={_short(v)}")
    return f"{w.get('id')} ({', '.join(parts)})"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {x}" for k, x in v.items()) + "}"
    return str(v)
