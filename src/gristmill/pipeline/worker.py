"""Work on one shard, as run by any executor: a chain of steps, or a global step's summary.

A task names files only (the shard's input directory, each step's pickled operator and
cache directory), so it is small to send and the same under every executor. Each
step's output for the shard is committed atomically before the next step starts; a
step already committed is skipped, and its output is read only if a later step needs it,
unless its LLM requests had transient failures or its input shard changed since
(:func:`run_segment`, :func:`prepare_retries`). :func:`check_llm_failures` names the LLM
steps of a run whose every request failed.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.ops.base import GlobalOp, Operator
from gristmill.pipeline import store
from gristmill.records import REASON, rule_of

_OPS: dict[tuple[Any, ...], Operator] = {}


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
    """The step's operator, unpickled and set up once per worker process and pickle file.

    The key includes the file's identity, so an operator pickled again under the same
    fingerprint (a global step fitted again, a later run in the same process) is loaded again.
    """
    st = os.stat(ref.op_path)
    key = (ref.fingerprint, str(ref.op_path), st.st_ino, st.st_mtime_ns, st.st_size)
    op = _OPS.get(key)
    if op is None:
        with open(ref.op_path, "rb") as f:
            op = pickle.load(f)
        op.ensure_setup()
        _OPS.clear() if len(_OPS) > 32 else None
        _OPS[key] = op
    return op


def loadable(op_path: Path) -> bool:
    """Whether ``op_path`` holds an operator this code can unpickle. An ``op.pkl`` written by an
    older layout of the code (a class since moved to another module) does not: the runner counts
    such a global step as not fitted and fits it again, instead of crashing on the old pickle."""
    try:
        with open(op_path, "rb") as f:
            pickle.load(f)
    except Exception:  # missing, truncated, or naming a module or class that no longer exists
        return False
    return True


def reason_counts(rejected: pa.Table | None) -> dict[str, int]:
    """Dropped rows counted by rule (the part of ``_reason`` before the first ':')."""
    if rejected is None or rejected.num_rows == 0:
        return {}
    rules = Counter(rule_of(r) for r in rejected.column(REASON).to_pylist())
    return dict(rules)


def _commit_step(final: Path, kept: pa.Table, rejected: pa.Table | None, stats: dict[str, Any]) -> str | None:
    """Write a step's shard output under a temporary name and rename it into place; return the
    commit id now in place. A stale ``final`` (being recomputed) is replaced; if another process
    committed a missing ``final`` first, theirs is kept."""
    tmp = store.tmp_sibling(final)
    tmp.mkdir(parents=True)
    store.write_table(tmp / "data.parquet", kept)
    if rejected is not None and rejected.num_rows:
        store.write_table(tmp / "rejected.parquet", rejected)
    (tmp / "stats.json").write_text(json.dumps(stats))
    if final.is_dir():
        store.replace_dir(tmp, final)
    else:
        store.commit_dir(tmp, final)
    return _commit_of(final)


def _commit_of(shard_dir: Path) -> str | None:
    """The commit id a shard directory's stats.json records (None for input shards and old runs)."""
    try:
        return store.read_json(shard_dir / "stats.json").get("commit")
    except FileNotFoundError:
        return None


def reusable(stats: dict[str, Any], input_commit: str | None) -> bool:
    """Whether a committed step shard may be reused: it was made from the input shard that is
    there now, and none of its LLM requests failed for a transient reason (those are retried)."""
    return stats.get("input") == input_commit and not stats.get("transient_failures")


def run_segment(task: SegmentTask) -> list[dict[str, Any]]:
    """Run the task's steps on one shard; return each step's shard stats (``cached`` if reused).

    Each committed step shard records a commit id and the commit id of the shard it was made
    from. A committed shard is recomputed -- and with it every step after it, whose input it
    changes -- when its LLM requests had transient failures (unreachable server, timeout,
    429, 5xx: the cached answers cost nothing, the failed ones are sent again) or when its
    input shard was recomputed since.
    """
    source = task.input_dir
    source_commit = _commit_of(source)
    batch: pa.Table | None = None
    out = []
    for ref in task.steps:
        final = ref.step_dir / store.shard_name(task.shard)
        if final.is_dir():
            stats = store.read_json(final / "stats.json")
            if reusable(stats, source_commit):
                out.append({**stats, "cached": True})
                batch, source, source_commit = None, final, stats.get("commit")
                continue
        if batch is None:
            batch = store.read_table(source / "data.parquet")
        op = load_op(ref)
        t0 = time.perf_counter()
        try:
            result = op.process(batch)
        except Exception as exc:
            raise StepFailed(f"{_step_name(ref)} failed on "
                             f"{store.shard_name(task.shard)}: {type(exc).__name__}: {exc}") from exc
        seconds = time.perf_counter() - t0
        stats = {"rows_in": batch.num_rows, "rows_out": result.kept.num_rows,
                 "dropped": reason_counts(result.rejected), "seconds": seconds,
                 "commit": uuid.uuid4().hex, "input": source_commit}
        usage = op.take_usage()
        if usage is not None:
            stats["llm"] = usage  # requests, cached, errors, tokens in/out of this shard
            stats["transient_failures"] = int(stats["llm"].get("errors_transient", 0))
        source_commit = _commit_step(final, result.kept, result.rejected, stats)
        out.append({**stats, "cached": False})
        batch, source = result.kept, final
    return out


def _step_name(ref: StepRef) -> str:
    return ref.step_dir.name.rsplit("-", 1)[0].removeprefix("step-")


def prepare_retries(planned: Sequence[Any]) -> int:
    """Before a run: forget the global steps' work that retrying transient LLM failures makes stale.

    ``planned`` is the run's steps in order (each with ``.dir`` and ``.step.op``). When a
    shard of some step recorded transient failures, :func:`run_segment` recomputes it and
    the later steps of that shard; but a later global step (dedup, split) was fitted on all
    shards, so its fit and every one of its shards are removed here, to be fitted and
    applied again. Returns the number of step shards that will be retried. Safe to call on
    any run directory, and idempotent: the marked shards stay until they are recomputed, so
    after a kill the next call finds them again.
    """
    first: int | None = None
    retries = 0
    for k, p in enumerate(planned):
        for shard in sorted(Path(p.dir).glob("shard-*")):
            try:
                marked = bool(store.read_json(shard / "stats.json").get("transient_failures"))
            except (FileNotFoundError, ValueError):
                continue
            if marked:
                retries += 1
                first = k if first is None else first
    if first is None:
        return 0
    for p in planned[first + 1:]:
        if isinstance(p.step.op, GlobalOp):
            d = Path(p.dir)
            for name in ("op.pkl", "fit.json"):
                (d / name).unlink(missing_ok=True)
            for shard in d.glob("shard-*"):
                old = shard.parent / f".{shard.name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(shard, old)
                shutil.rmtree(old, ignore_errors=True)
    return retries


class LLMRequestsFailed(StepFailed):
    """Every request of an LLM step failed (the server unreachable, the model refusing, ...)."""


def check_llm_failures(step_stats: list[dict[str, Any]]) -> str | None:
    """One line naming each LLM step whose requests all failed, or None.

    ``step_stats`` is the run's per-step stats (:func:`gristmill.pipeline.finalize.step_stats`,
    each with an ``llm`` dict summed over shards). A step counts when it made requests and
    every one failed; the message says how many were transient, which the same command retries.
    """
    failed = []
    for s in step_stats:
        llm = s.get("llm") or {}
        requests, errors = int(llm.get("requests") or 0), int(llm.get("errors") or 0)
        if requests <= 0 or errors < requests:
            continue
        transient = int(llm.get("errors_transient") or 0)
        if transient == errors:
            why = "all transient (server unreachable, timeout, HTTP 429 or 5xx): the same command retries them"
        elif transient:
            why = f"{transient} transient, which the same command retries"
        else:
            why = "none transient: fix the backend or its settings"
        step = s.get("step", s.get("index"))
        where = f"rejected/{step}.parquet" if s.get("kind") == "generator" else "the step's .error column"
        failed.append(f"step {step}: all {requests} LLM requests failed, {why}; reasons in {where}")
    return "; ".join(failed) or None


def run_summary(task: SummaryTask) -> Any:
    """A global step's summary of one shard (computed in a worker)."""
    op = load_op(task.step)
    batch = store.read_table(task.input_dir / "data.parquet")
    op.check_columns(batch)
    return op.summarize(batch)
