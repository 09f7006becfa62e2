"""Run directories for audit tests: real small runs, and hand-made ones laid out as the runner writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data"


def fake_run(run_dir: Path, steps: list[dict[str, Any]], output: list[dict[str, Any]],
             rejected: dict[str, list[dict[str, Any]]] | None = None, gates: list[str] | None = None,
             rules: dict[str, list[dict[str, Any]]] | None = None, rows_in: int | None = None,
             card: dict[str, Any] | None = None) -> Path:
    """A finished run directory: ``steps`` are ``{op, params}``; ``output`` the final rows;
    ``rejected`` rows per step label (with ``_reason``); ``rules`` the stats.json rules per op."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rejected = rejected or {}
    stats_steps = []
    for i, s in enumerate(steps):
        label = f"{i:02d}-{s['op']}"
        dropped: dict[str, int] = {}
        for r in rejected.get(label, []):
            rule = r["_reason"].split(":", 1)[0]
            dropped[rule] = dropped.get(rule, 0) + 1
        entry = {"index": i, "step": label, "op": s["op"], "kind": "filter", "rows_in": 0, "rows_out": 0,
                 "dropped": dropped, "seconds": 0.1, "rows_per_s": 1.0, "cached": False, "fingerprint": f"fp{i}"}
        if rules and s["op"] in rules:
            entry.update(score_columns=[r["column"] for r in rules[s["op"]]], rules=rules[s["op"]], drops=True)
        stats_steps.append(entry)
    n_dropped = sum(len(v) for v in rejected.values())
    stats = {"run": run_dir.name, "recipe": "r.yaml", "started": "2026-11-26T04:00:00+00:00",
             "finished": "2026-11-26T04:00:10+00:00", "seconds": 10.0,
             "input": {"rows": rows_in if rows_in is not None else len(output) + n_dropped, "quarantined": 0,
                       "paths": ["in.jsonl"], "format": "jsonl", "shards": 1},
             "steps": stats_steps, "output": {"rows": len(output), "format": "jsonl", "files": ["data/data.jsonl"]}}
    (run_dir / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    recipe = {"name": run_dir.name, "steps": [{"op": s["op"], "params": s.get("params", {})} for s in steps],
              "gates": gates or [], "card": card or {}}
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    last = stats_steps[-1]
    shard = run_dir / "cache" / f"step-{last['step']}-{last['fingerprint']}" / "shard-00000"
    shard.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(output) if output else pa.table({"id": pa.array([], pa.string())}),
                   shard / "data.parquet")
    (run_dir / "rejected").mkdir()
    for label, rows in rejected.items():
        pq.write_table(pa.Table.from_pylist(rows), run_dir / "rejected" / f"{label}.parquet")
    (run_dir / "quarantine.jsonl").write_text("", encoding="utf-8")
    return run_dir
