"""Run a recipe into a run directory: plan, ingest, run steps over shards, finalise.

The plan gives each step a fingerprint chained from the input's fingerprint, its
operator name, parameters and version; a step's per-shard outputs live under that
fingerprint, so a second run reuses whatever is unchanged and a killed run resumes.
"""

from __future__ import annotations

import fcntl
import pickle
import time
from collections.abc import Sequence
from concurrent.futures import Future, wait, FIRST_COMPLETED
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from gristmill.audit import write_audit
from gristmill.executors import Executor, get_executor
from gristmill.io.metadata import run_provenance
from gristmill.ops.base import GlobalOp
from gristmill.pipeline import finalize, ownership, store
from gristmill.pipeline.ingest import IngestedShard, ingest, payload_columns
from gristmill.pipeline.worker import (SegmentTask, StepRef, SummaryTask, check_llm_failures, loadable,
                                       prepare_retries, run_segment, run_summary)
from gristmill.progress import progress_bars
from gristmill.recipe import Recipe, Step, load_recipe


class RunBusy(Exception):
    """Another process holds the run directory."""


@dataclass
class PlannedStep:
    step: Step
    fingerprint: str
    dir: Path

    @property
    def ref(self) -> StepRef:
        return StepRef(self.fingerprint, self.dir / "op.pkl", self.dir)


@dataclass
class RunSummary:
    run_dir: Path
    stats: dict[str, Any]
    outputs: list[Path] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)  # audit.json: metrics, gates (``audit["passed"]``)
    # Set when every request of some LLM step failed: the run finished, but its output is not what was asked for.
    llm_failed: str | None = None


def plan(recipe: Recipe, cache: Path) -> tuple[str, list[PlannedStep]]:
    """The input fingerprint and each step's fingerprint and cache directory."""
    opts = recipe.input_options.model_dump(mode="json")
    input_fp = store.fingerprint([store.file_identity(p) for p in recipe.input_paths], opts, recipe.shard_rows,
                                 *filter(None, [payload_columns(s.op for s in recipe.steps)]))
    planned, prev = [], input_fp
    for step in recipe.steps:
        files = [store.file_identity(f) for f in step.op.input_files() if f.exists()]
        fp = store.fingerprint(prev, step.op.name, step.op.params.model_dump(mode="json"), step.op.version, files)
        planned.append(PlannedStep(step, fp, cache / f"step-{step.label}-{fp}"))
        prev = fp
    return input_fp, planned


def segments(planned: list[PlannedStep]) -> list[list[PlannedStep]]:
    """Consecutive steps that run together on a shard; a global step starts a new segment."""
    out: list[list[PlannedStep]] = []
    for p in planned:
        if not out or isinstance(p.step.op, GlobalOp):
            out.append([p])
        else:
            out[-1].append(p)
    return out


def _describe(seg: list[PlannedStep]) -> str:
    return seg[0].step.label if len(seg) == 1 else f"steps {seg[0].step.index:02d}-{seg[-1].step.index:02d}"


def _lock(run_dir: Path) -> Any:
    fh = open(run_dir / ".lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise RunBusy(f"{run_dir}: in use by another gristmill run") from None
    return fh


def _wait_all(futures: dict[Future, Any], bars: Any, task_id: int) -> dict[Any, Any]:
    results = {}
    pending = set(futures)
    llm_bars: dict[str, int] = {}
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            key, rows = futures[fut]
            results[key] = fut.result()
            bars.advance(task_id, rows)
            _advance_llm(bars, llm_bars, results[key])
    return results


def _advance_llm(bars: Any, llm_bars: dict[str, int], shard_steps: Any) -> None:
    """LLM steps: show requests/s and tokens/s as shards finish (bars appear on first use)."""
    if not isinstance(shard_steps, list):
        return
    for st in shard_steps:
        usage = st.get("llm") if isinstance(st, dict) and not st.get("cached") else None
        if not usage:
            continue
        for key, unit, label in (("requests", "req", "llm requests"), ("tokens_out", "tok", "llm tokens out")):
            if key not in llm_bars:
                llm_bars[key] = bars.add_task(f"  {label}", total=None, unit=unit)
            bars.advance(llm_bars[key], usage.get(key, 0))


def _note_computed(seg: list[PlannedStep], results: dict[Any, Any], computed: set[int]) -> None:
    for shard_steps in results.values():
        for p, st in zip(seg, shard_steps):
            if not st["cached"]:
                computed.add(p.step.index)


def _fit_global(p: PlannedStep, inputs: list[Path], rows: list[int], executor: Executor, bars: Any) -> float:
    """Summarise every shard, fit the operator, pickle it fitted; return fit seconds."""
    unfitted = p.dir / "op.unfitted.pkl"
    p.step.op.bind(scratch=p.dir / "scratch")
    (p.dir / "scratch").mkdir(exist_ok=True)
    store.write_bytes_atomic(unfitted, pickle.dumps(p.step.op))
    ref = StepRef(p.fingerprint + "-unfitted", unfitted, p.dir)
    tid = bars.add_task(f"{p.step.label} scan", total=sum(rows), unit="rows")
    t0 = time.perf_counter()
    futures = {executor.submit(run_summary, SummaryTask(i, d, ref)): (i, rows[i]) for i, d in enumerate(inputs)}
    summaries = _wait_all(futures, bars, tid)
    p.step.op.fit([summaries[i] for i in range(len(inputs))])
    store.write_bytes_atomic(p.dir / "op.pkl", pickle.dumps(p.step.op))
    seconds = time.perf_counter() - t0
    store.write_json_atomic(p.dir / "fit.json", {"seconds": seconds})
    return seconds


def run_recipe(recipe: Recipe | dict[str, Any] | str | Path, runs_dir: str | Path = "runs",
               name: str | None = None, overrides: Sequence[str] = (), workers: int | None = None,
               progress: bool = True, fresh: bool = False, strict: bool | None = None,
               report: bool = True, fresh_cache: bool = False, overwrite: bool = False) -> RunSummary:
    """Run ``recipe`` into ``runs_dir/<name>`` and return the run's stats and output files.

    ``fresh`` discards this run's cached steps and outputs (not the LLM response cache,
    unless ``fresh_cache``); ``overwrite`` lets an ``output.path`` outside the run directory
    that holds other files receive the output (files of the same names are replaced).
    Raises :class:`~gristmill.pipeline.ownership.RunDirError` before any change when the run
    directory or output path cannot be used, and :class:`RunBusy` when another run holds it.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    run_dir = ownership.run_dir_for(runs_dir, recipe.name if name is None else name)
    ownership.open_run_dir(run_dir)
    lock = _lock(run_dir)
    try:
        if recipe.output.get("path"):
            ownership.check_output_path(Path(recipe.output["path"]), run_dir, overwrite)
        if fresh or fresh_cache:
            ownership.clear_run(run_dir, keep_llm_cache=not fresh_cache)
        return _run(recipe, run_dir, workers or recipe.spec.executor.workers, progress,
                    recipe.spec.strict if strict is None else strict, report)
    finally:
        lock.close()


def _run(recipe: Recipe, run_dir: Path, workers: int, progress: bool, strict: bool, report: bool) -> RunSummary:
    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    cache = run_dir / "cache"
    ownership.mark_incomplete(run_dir, recipe.source)
    cache.mkdir(exist_ok=True)
    store.remove_stale_tmp(run_dir)
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.resolved(), sort_keys=False, allow_unicode=True))

    input_fp, planned = plan(recipe, cache)
    for p in planned:
        p.dir.mkdir(exist_ok=True)
        p.step.op.bind(cache_dir=run_dir, workers=workers)  # LLM operators keep their response cache there
        if not isinstance(p.step.op, GlobalOp):
            store.write_bytes_atomic(p.dir / "op.pkl", pickle.dumps(p.step.op))
    prepare_retries(planned)  # shards with transient LLM failures are redone: later global fits are stale
    segs = segments(planned)
    input_dir = cache / f"input-{input_fp}"
    fit_seconds: dict[int, float] = {}
    computed: set[int] = set()

    with progress_bars(progress) as bars, get_executor(recipe.spec.executor.type)(workers) as executor:
        # ingestion; the first segment starts on each shard as soon as it is committed
        t_in = time.perf_counter()
        total_bytes = sum(r.stat().st_size if r.is_file() else 0 for r in recipe.input_paths)
        read_task = bars.add_task("read input", total=max(total_bytes, 1) / 1e6, unit="MB")
        first = segs[0] if segs and not isinstance(segs[0][0].step.op, GlobalOp) else None
        first_task = bars.add_task(_describe(first), total=None) if first else None
        futures: dict[Future, Any] = {}
        shards: list[IngestedShard] = []

        def on_bytes(done: int, total: int) -> None:
            bars.update(read_task, completed=done / 1e6, total=max(total, 1) / 1e6)

        for shard in ingest(recipe.input_paths, recipe.input_options, recipe.shard_rows, input_dir,
                            strict=strict, on_bytes=on_bytes, payload=payload_columns(s.op for s in recipe.steps)):
            shards.append(shard)
            if first:
                task = SegmentTask(shard.index, shard.path, tuple(p.ref for p in first))
                futures[executor.submit(run_segment, task)] = (shard.index, shard.rows)
        input_seconds = time.perf_counter() - t_in
        rows = [s.rows for s in shards]
        inputs = [s.path for s in shards]
        if first:
            bars.update(first_task, total=sum(rows))
            _note_computed(first, _wait_all(futures, bars, first_task), computed)
            inputs = [first[-1].dir / store.shard_name(i) for i in range(len(shards))]
            rows = [store.read_json(d / "stats.json")["rows_out"] for d in inputs]

        for seg in segs[1:] if first else segs:
            head = seg[0]
            if isinstance(head.step.op, GlobalOp):
                all_done = all((head.dir / store.shard_name(i)).is_dir() for i in range(len(shards)))
                # an op.pkl that no longer unpickles (pickled by an older code layout) is not fitted: fit again
                op_pkl = head.dir / "op.pkl"
                if loadable(op_pkl) or (all_done and not op_pkl.exists()):
                    fit_seconds[head.step.index] = (store.read_json(head.dir / "fit.json")["seconds"]
                                                    if (head.dir / "fit.json").exists() else 0.0)
                else:
                    fit_seconds[head.step.index] = _fit_global(head, inputs, rows, executor, bars)
            tid = bars.add_task(_describe(seg), total=sum(rows))
            futs = {executor.submit(run_segment, SegmentTask(i, d, tuple(p.ref for p in seg))): (i, rows[i])
                    for i, d in enumerate(inputs)}
            _note_computed(seg, _wait_all(futs, bars, tid), computed)
            inputs = [seg[-1].dir / store.shard_name(i) for i in range(len(shards))]
            rows = [store.read_json(d / "stats.json")["rows_out"] for d in inputs]

        outputs, out_stats = finalize.write_outputs(run_dir, inputs, recipe.output, bars,
                                                    provenance=run_provenance(recipe.resolved()))

    finalize.write_rejected(run_dir, planned, len(shards))
    finalize.write_scores(run_dir, planned, len(shards))
    finalize.write_summaries(run_dir, planned)
    input_stats = finalize.write_quarantine(run_dir, [s.path for s in shards])
    input_stats.update({"paths": [str(p) for p in recipe.input_paths],
                        "format": recipe.input_options.format, "shards": len(shards), "seconds": input_seconds})
    stats = {
        "run": run_dir.name, "recipe": recipe.source, "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - t_start, "workers": workers,
        "input": input_stats,
        "steps": finalize.step_stats(planned, len(shards), fit_seconds, computed),
        "output": {**out_stats, "files": [str(p.relative_to(run_dir)) if p.is_relative_to(run_dir) else str(p)
                                          for p in outputs]},
    }
    store.write_json_atomic(run_dir / "stats.json", stats)
    finalize.prune_cache(cache, keep={input_dir, *(p.dir for p in planned)})
    audit = write_audit(run_dir)  # audit.json with the gates evaluated, DATASET_CARD.md; callers act on failures
    if report:
        from gristmill.report import write_report
        write_report(run_dir)
    ownership.mark_complete(run_dir)
    return RunSummary(run_dir, stats, outputs, audit, check_llm_failures(stats["steps"]))
