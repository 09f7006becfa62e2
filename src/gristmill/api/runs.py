"""Running a recipe (:func:`run`, which ``gristmill run`` calls too) and reading a run directory back
(:func:`load_run`, through :class:`~gristmill.pipeline.run_reader.RunReader`, the one reader of a run)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.pipeline.run_reader import RunReader, scan_quarantine
from gristmill.recipe import Recipe, load_recipe
from gristmill.runner import RunSummary, run_recipe


def run(recipe: Recipe | Mapping[str, Any] | str | Path, *, runs_dir: str | Path = "runs", name: str | None = None,
        overrides: Sequence[str] = (), base_dir: str | Path | None = None, workers: int | None = None,
        progress: bool = True, fresh: bool = False, strict: bool | None = None, report: bool = True,
        fresh_cache: bool = False, overwrite: bool = False) -> RunSummary:
    """Run a recipe (a YAML file, a dict in the same form, or a validated ``Recipe``) into
    ``runs_dir/<name>`` and return its :class:`~gristmill.runner.RunSummary` (run directory, stats,
    output files, ``audit``). This is what ``gristmill run`` calls; the keywords are its options.

    ``overrides`` are ``--set`` assignments; relative paths of a dict recipe resolve against
    ``base_dir`` (default: the working directory), those of a file against its folder. A run resumes
    and reuses unchanged steps; ``fresh`` discards its cached steps and outputs (not the LLM response
    cache, unless ``fresh_cache``). Raises :class:`~gristmill.recipe.RecipeError` (nothing ran),
    :class:`~gristmill.pipeline.ownership.RunDirError` (the run directory or ``output.path`` cannot
    be used), :class:`~gristmill.runner.RunBusy`, or the error of a failed step. A failed gate does
    not raise: ``summary.audit["passed"]`` is false (the CLI exits 3); nor do LLM requests that all
    failed: ``summary.llm_failed`` says which step (the CLI exits 1).
    """
    if isinstance(recipe, Recipe):
        if overrides:
            raise ValueError("overrides apply to a recipe file or dict, not to a validated Recipe")
    else:
        source = dict(recipe) if isinstance(recipe, Mapping) else recipe
        recipe = load_recipe(source, list(overrides), Path(base_dir).resolve() if base_dir is not None else None)
    return run_recipe(recipe, runs_dir=runs_dir, name=name, workers=workers, progress=progress, fresh=fresh,
                      strict=strict, report=report, fresh_cache=fresh_cache, overwrite=overwrite)


class RunIncomplete(ValueError):
    """The directory is not a finished pipeline run (missing, killed or failed, still running)."""


QUARANTINE_SCHEMA = pa.schema([("source", pa.string()), ("line", pa.int64()), ("reason", pa.string()),
                               ("raw", pa.string())])


class Run:
    """A finished pipeline run directory, read on first use of each part (see :func:`load_run`)."""

    def __init__(self, path: str | Path, *, pandas: bool = False) -> None:
        self.reader = RunReader(path)
        self.path = self.reader.run_dir
        self.pandas = pandas

    def __repr__(self) -> str:
        out = self.reader.output.get("rows")
        return f"Run({str(self.path)!r}, rows={out}, steps={len(self.reader.steps)})"

    def _as(self, table: pa.Table) -> Any:
        return table.to_pandas() if self.pandas else table

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def data(self) -> Any:
        """The output rows with every column the steps wrote (scores, annotations, ``split``) as one
        table; the files in ``data/`` hold the same rows in the output format."""
        return self._as(self.reader.output_table(lambda column: True))

    @property
    def rejected(self) -> Any:
        """Every dropped row as it was when dropped, with ``_reason`` (``rule: detail``) and ``_where``
        (the step that dropped it, ``02-filter.length``)."""
        return self._as(self.reader.rejected_table(lambda column: True))

    @cached_property
    def _quarantine(self) -> Any:
        return scan_quarantine(self.path / "quarantine.jsonl", keep=2**62, raw_limit=2**62)

    @property
    def quarantine(self) -> Any:
        """Every bad input record: ``source`` file, ``line`` (or row), ``reason``, ``raw`` text (cut to
        1000 characters when the run wrote it)."""
        return self._as(pa.Table.from_pylist(self._quarantine.first, schema=QUARANTINE_SCHEMA))

    @property
    def dropped(self) -> dict[str, int]:
        """Dropped rows counted by rule over every step (``{"min_words": 12, "duplicate": 3}``)."""
        total: Counter = Counter()
        for step in self.reader.steps:
            total.update(step.get("dropped") or {})
        return dict(total)

    @property
    def stats(self) -> dict[str, Any]:
        """``stats.json``: input, per-step rows in/out, drops by rule, seconds, output files."""
        return self.reader.stats

    @property
    def audit(self) -> dict[str, Any]:
        """``audit.json``: gates with their measured values (``audit["passed"]``), audit metrics, summaries."""
        return self.reader.audit or {}

    @property
    def recipe(self) -> dict[str, Any]:
        """The resolved recipe the run saved (defaults filled in, paths absolute)."""
        return self.reader.recipe

    @property
    def card(self) -> str | None:
        """The text of ``DATASET_CARD.md``, or None when the run has none."""
        from gristmill.audit.card import CARD_NAME

        path = self.path / CARD_NAME
        return path.read_text(encoding="utf-8") if path.is_file() else None

    @property
    def report(self) -> Path:
        """The path of the run's ``report.html`` (open it in a browser)."""
        return self.path / "report.html"


def load_run(path: str | Path, *, pandas: bool = False, incomplete: bool = False) -> Run:
    """The pipeline run directory ``path`` (``runs/<name>``) as a :class:`Run`: ``data``, ``rejected``,
    ``quarantine`` as pyarrow Tables (pandas DataFrames with ``pandas=True``), ``stats``, ``audit``,
    ``dropped``, ``recipe`` and ``card`` text. Raises :class:`RunIncomplete` for a directory that is no
    finished run (its files may mix two runs), unless ``incomplete`` is true."""
    found = Run(path, pandas=pandas)
    problem = found.reader.incomplete
    if problem and not (incomplete and found.path.is_dir()):
        raise RunIncomplete(problem)
    return found
