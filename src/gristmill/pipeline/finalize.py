"""Turn committed shards into the run directory's files: data, rejected rows, quarantine, stats.

Everything here is rebuilt from the cache on every run, written to temporary names and
renamed into place, so a run killed while finalising is finalised again on resume.
"""

from __future__ import annotations

import pickle
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.io import open_writer
from gristmill.io.writers import RECORD_FORMATS, finish_output
from gristmill.pipeline import ownership, store
from gristmill.records import join_types, json_text_array, json_text_field, json_text_reason, type_kind

EXTENSIONS = {"jsonl": ".jsonl", "parquet": ".parquet", "csv": ".csv", "hf": "", "hub": "",
              "openai": ".jsonl", "sharegpt": ".jsonl", "alpaca": ".jsonl", "prompt_completion": ".jsonl",
              "preference": ".jsonl"}


def unified_schema(files: list[Path]) -> pa.Schema:
    """One schema that every file's rows can be conformed to, without losing a value.

    A column takes the type its types join to (all-null columns promoted, int to float,
    structs to the union of their fields; see :func:`~gristmill.records.join_types`). A
    column that is JSON text in any file (``gristmill.json`` field metadata), or whose
    types join to nothing (``int64`` in one shard, ``string`` in another), is JSON text
    in the result: a string column whose metadata gives the reasons (``int vs string``),
    which :func:`conform` fills with the JSON text of each value.
    """
    schemas = [pq.read_schema(f) for f in files]
    by_name: dict[str, list[pa.Field]] = {}
    for schema in schemas:
        for field in schema:
            by_name.setdefault(field.name, []).append(field)
    fields = []
    for name, found in by_name.items():
        reasons = list(dict.fromkeys(r for f in found if (r := json_text_reason(f)) is not None))
        native = [f.type for f in found if json_text_reason(f) is None and not pa.types.is_null(f.type)]
        joined = join_types(native) if native else pa.null()
        if joined is None:
            reasons.append(" vs ".join(dict.fromkeys(type_kind(t) for t in native)) + " in different shards")
        if reasons:
            fields.append(json_text_field(name, "; ".join(reasons)))
        else:
            fields.append(pa.field(name, joined, metadata=found[0].metadata))
    return pa.schema(fields)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in its order; missing columns become nulls.

    A column the schema holds as JSON text that is not JSON text in ``table`` gets the JSON
    text of each of its values (``json.loads`` gives them back); others are cast.
    """
    cols = []
    for f in schema:
        if f.name not in table.column_names:
            cols.append(pa.nulls(table.num_rows, f.type))
            continue
        col = table.column(f.name)
        here = table.schema.field(f.name)
        if json_text_reason(f) is not None and json_text_reason(here) is None and not pa.types.is_null(col.type):
            col = json_text_array(col.to_pylist())
        cols.append(col.cast(f.type) if col.type != f.type else col)
    return pa.Table.from_arrays(cols, schema=schema)


def concat_parquet(files: list[Path], dest: Path) -> int:
    """Stream ``files`` into one Parquet file at ``dest``; return the row count."""
    schema = unified_schema(files)
    tmp = store.tmp_sibling(dest)
    n = 0
    with pq.ParquetWriter(tmp, schema, **store.PARQUET_OPTIONS) as writer:
        for f in files:
            t = conform(pq.read_table(f), schema)
            writer.write_table(t)
            n += t.num_rows
    tmp.rename(dest)
    return n


def write_outputs(run_dir: Path, shard_dirs: list[Path], output: dict[str, Any], bars: Any,
                  provenance: dict[str, Any] | None = None) -> tuple[list[Path], dict[str, Any]]:
    """Write the final shards with the output writer, one file set per split value if present
    (``provenance``: the recipe fingerprint and operator versions the writers record)."""
    fmt = output.get("format", "jsonl")
    split_column = output.get("split_column") or None
    options = {k: v for k, v in output.items() if k not in ("format", "split_column", "path")}
    final = Path(output["path"]) if output.get("path") else run_dir / "data"
    tmp = ownership.output_tmp(final, run_dir)
    files = [d / "data.parquet" for d in shard_dirs]
    schema = unified_schema(files)
    by_split = split_column is not None and split_column in schema.names
    writers: dict[str, Any] = {}
    counts: Counter[str] = Counter()
    total_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    tid = bars.add_task("write output", total=total_rows)
    for f in files:
        table = conform(pq.read_table(f), schema)
        groups = ([(str(v), table.filter(pc.equal(table.column(split_column), v)))
                   for v in pc.unique(table.column(split_column)).to_pylist() if v is not None]
                  if by_split else [("data", table)])
        for key, part in groups:
            if key not in writers:
                writers[key] = open_writer(tmp / f"{key}{EXTENSIONS.get(fmt, '')}", fmt, provenance=provenance,
                                           **options)
            if part.num_rows:  # chat writers check their columns; an empty shard has nothing to check
                writers[key].write(part)
            counts[key] += part.num_rows
        bars.advance(tid, table.num_rows)
    if not writers:
        writers["data"] = open_writer(tmp / f"data{EXTENSIONS.get(fmt, '')}", fmt, provenance=provenance, **options)
        if fmt not in RECORD_FORMATS:
            writers["data"].write(schema.empty_table())
    written = {key: w.close()[0] for key, w in writers.items()}
    finish_output(tmp, fmt, {key: final / p.name for key, p in written.items()}, **options)  # axolotl.yaml
    outputs = ownership.place_output(tmp, final, run_dir)
    stats: dict[str, Any] = {"rows": sum(counts.values()), "format": fmt}
    if provenance:
        stats["provenance"] = provenance
    if by_split:
        stats["splits"] = dict(sorted(counts.items()))
    json_columns = {f.name: r for f in schema if (r := json_text_reason(f)) is not None}
    if json_columns:  # columns stored as JSON text, and why
        stats["json_columns"] = json_columns
    return outputs, stats


def write_rejected(run_dir: Path, planned: list[Any], n_shards: int) -> None:
    """Gather each step's rejected rows into ``rejected/<step>.parquet``."""
    tmp = store.tmp_sibling(run_dir / "rejected")
    tmp.mkdir()
    for p in planned:
        files = [p.dir / store.shard_name(i) / "rejected.parquet" for i in range(n_shards)]
        files = [f for f in files if f.exists()]
        if files:
            concat_parquet(files, tmp / f"{p.step.label}.parquet")
    store.replace_dir(tmp, run_dir / "rejected")


def _score_columns(op: Any) -> list[str]:
    return list(op.score_columns())


def write_scores(run_dir: Path, planned: list[Any], n_shards: int) -> None:
    """For steps that score rows, gather id, scores and kept/dropped of every row they saw
    into ``scores/<step>.parquet`` (small: numbers only), for distributions in the report."""
    tmp = store.tmp_sibling(run_dir / "scores")
    tmp.mkdir()
    for p in planned:
        cols = _score_columns(p.step.op)
        if not cols:
            continue
        parts = []
        for i in range(n_shards):
            shard = p.dir / store.shard_name(i)
            for name, kept in (("data.parquet", True), ("rejected.parquet", False)):
                f = shard / name
                if f.exists():
                    have = [c for c in ["id", *cols] if c in pq.read_schema(f).names]
                    t = pq.read_table(f, columns=have)
                    parts.append(t.append_column("_kept", pa.array([kept] * t.num_rows, pa.bool_())))
        if parts:
            table = pa.concat_tables(parts, promote_options="permissive")
            store.write_table(tmp / f"{p.step.label}.parquet", table)
    store.replace_dir(tmp, run_dir / "scores")


def write_summaries(run_dir: Path, planned: list[Any]) -> None:
    """For global steps whose operator has ``run_summary()`` (a JSON-ready dict computed by its
    ``fit``), write it to ``summaries/<step>.json``, for the report and the audit. The fitted
    operator is read back from the step's cache, so a resumed run that did not fit again has it too."""
    tmp = store.tmp_sibling(run_dir / "summaries")
    tmp.mkdir()
    for p in planned:
        if not type(p.step.op).overrides("run_summary") or not (p.dir / "op.pkl").exists():
            continue
        summary = pickle.loads((p.dir / "op.pkl").read_bytes()).run_summary()
        if summary is not None:
            store.write_json_atomic(tmp / f"{p.step.label}.json", summary)
    store.replace_dir(tmp, run_dir / "summaries")


def write_quarantine(run_dir: Path, shard_dirs: list[Path]) -> dict[str, Any]:
    """Gather the shards' quarantined records into ``quarantine.jsonl``; return input stats."""
    dest = run_dir / "quarantine.jsonl"
    tmp = store.tmp_sibling(dest)
    rows = quarantined = renamed = 0
    by_reason: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    with open(tmp, "wb") as out:
        for d in shard_dirs:
            s = store.read_json(d / "stats.json")
            rows += s["rows"]
            quarantined += s["quarantined"]
            by_reason.update(s["by_reason"])
            renamed += s.get("ids_renamed", 0)
            skipped.update(s.get("skipped", {}))
            with open(d / "quarantine.jsonl", "rb") as f:
                shutil.copyfileobj(f, out)
    tmp.rename(dest)
    out = {"rows": rows, "quarantined": quarantined, "quarantined_by_reason": dict(by_reason),
           "ids_renamed": renamed}
    if skipped:  # input records passed over by the web readers (WARC request records, ...), by reason
        out["skipped"] = dict(skipped)
    return out


def step_stats(planned: list[Any], n_shards: int, fit_seconds: dict[int, float],
               computed: set[int]) -> list[dict[str, Any]]:
    """Per-step totals over shards: rows in/out, dropped by rule, seconds, rows/s, cached."""
    out = []
    for p in planned:
        shard = [store.read_json(p.dir / store.shard_name(i) / "stats.json") for i in range(n_shards)]
        dropped: Counter[str] = Counter()
        for s in shard:
            dropped.update(s["dropped"])
        seconds = sum(s["seconds"] for s in shard) + fit_seconds.get(p.step.index, 0.0)
        llm: Counter[str] = Counter()
        for s in shard:
            llm.update({k: v for k, v in (s.get("llm") or {}).items() if isinstance(v, (int, float))})
        rows_in = sum(s["rows_in"] for s in shard)
        out.append({"index": p.step.index, "step": p.step.label, "op": p.step.op.name, "kind": p.step.op.kind,
                    "rows_in": rows_in, "rows_out": sum(s["rows_out"] for s in shard),
                    "dropped": dict(dropped.most_common()), "seconds": round(seconds, 4),
                    "rows_per_s": round(rows_in / seconds, 1) if seconds > 0 else None,
                    "cached": p.step.index not in computed, "fingerprint": p.fingerprint,
                    **_rules(p.step.op), **({"llm": dict(llm)} if llm else {})})
    return out


def _rules(op: Any) -> dict[str, Any]:
    cols = _score_columns(op)
    if not cols:
        return {}
    return {"score_columns": cols, "rules": [r.to_json() for r in op.rules()],
            "drops": bool(getattr(op.params, "drop", True))}


def prune_cache(cache: Path, keep: set[Path]) -> None:
    """Remove cache entries of earlier plans (other inputs, parameters or versions)."""
    for d in cache.iterdir():
        if d.is_dir() and d not in keep:
            shutil.rmtree(d, ignore_errors=True)
