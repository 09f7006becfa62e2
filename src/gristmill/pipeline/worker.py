"""Work on one shard, as run by any executor: a chain of steps, or a global step's summary.

A task names files only (the shard's input directory, each step's pickled operator and
cache directory), so it is small to send and the same under every executor. Each
step's output for the shard is committed atomically before the next step starts; a
step already committed is skipped, and its output is read only if a later step needs it.
"""

from __future__ import annotations

import json
import pickle
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.ops.base import Operator
from gristmill.pipeline import store
from gristmill.records import REASON

_OPS: dict[str, Operator] = {}


class StepFailed(RuntimeError):
    """An operator raised on a shard; the message names the step and the shard."""


@dataclass(frozen=True)
class StepRef:
    """A step as a worker sees it: its fingerprint, pickled operator and cache directory."""

    fingerprint: str
    op_path: Path
    step_dir: Path


@dataclass(frozen=True)
class SegmentTask:
    shard: int
    input_dir: Path
    steps: tuple[StepRef, ...]


@dataclass(frozen=True)
class SummaryTask:
    shard: int
    input_dir: Path
    step: StepRef


def load_op(ref: StepRef) -> Operator:
    """The step's operator, unpickled and set up once per worker process."""
    op = _OPS.get(ref.fingerprint)
    if op is None:
        with open(ref.op_path, "rb") as f:
            op = pickle.load(f)
        op.ensure_setup()
        _OPS.clear() if len(_OPS) > 32 else None
        _OPS[ref.fingerprint] = op
    return op


def reason_counts(rejected: pa.Table | None) -> dict[str, int]:
    """Dropped rows counted by rule (the part of ``_reason`` before the first ':')."""
    if rejected is None or rejected.num_rows == 0:
        return {}
    rules = Counter(r.split(":", 1)[0].strip() for r in rejected.column(REASON).to_pylist())
    return dict(rules)


def _commit_step(final: Path, kept: pa.Table, rejected: pa.Table | None, stats: dict[str, Any]) -> None:
    tmp = store.tmp_sibling(final)
    tmp.mkdir(parents=True)
    store.write_table(tmp / "data.parquet", kept)
    if rejected is not None and rejected.num_rows:
        store.write_table(tmp / "rejected.parquet", rejected)
    (tmp / "stats.json").write_text(json.dumps(stats))
    store.commit_dir(tmp, final)


def run_segment(task: SegmentTask) -> list[dict[str, Any]]:
    """Run the task's steps on one shard; return each step's shard stats (``cached`` if reused)."""
    source = task.input_dir
    batch: pa.Table | None = None
    out = []
    for ref in task.steps:
        final = ref.step_dir / store.shard_name(task.shard)
        if final.is_dir():
            stats = store.read_json(final / "stats.json")
            out.append({**stats, "cached": True})
            batch, source = None, final
            continue
        if batch is None:
            batch = store.read_table(source / "data.parquet")
        op = load_op(ref)
        t0 = time.perf_counter()
        try:
            result = op.process(batch)
        except Exception as exc:
            raise StepFailed(f"{ref.step_dir.name.rsplit('-', 1)[0].removeprefix('step-')} failed on "
                             f"{store.shard_name(task.shard)}: {type(exc).__name__}: {exc}") from exc
        seconds = time.perf_counter() - t0
        stats = {"rows_in": batch.num_rows, "rows_out": result.kept.num_rows,
                 "dropped": reason_counts(result.rejected), "seconds": seconds}
        usage = getattr(op, "take_usage", None)
        if callable(usage):
            stats["llm"] = usage()  # requests, cached, errors, tokens in/out of this shard
        _commit_step(final, result.kept, result.rejected, stats)
        out.append({**stats, "cached": False})
        batch, source = result.kept, final
    return out


def run_summary(task: SummaryTask) -> Any:
    """A global step's summary of one shard (computed in a worker)."""
    op = load_op(task.step)
    return op.summarize(store.read_table(task.input_dir / "data.parquet"))


def count_rows(table: pa.Table, column: str) -> dict[str, int]:
    """Row counts per value of ``column``."""
    vc = pc.value_counts(table.column(column))
    return {str(v["values"]): int(v["counts"]) for v in vc.to_pylist()}
