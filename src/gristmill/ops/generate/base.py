"""Operator plumbing for LLM tasks: prompts out, completions back, rows or scores in.

A task is any object with ``format_prompt(row) -> Prompt`` and ``parse(text, row)``
(raising :class:`ParseError` with the reason when the text is unusable). Subclasses of
:class:`LLMGenerator` / :class:`LLMAnnotator` declare their ``Params`` (extending
:class:`LLMParams`) and build their task in ``make_task()``; the base classes create the
backend once per worker (wrapped in the SQLite response cache when the runner gives a
``cache_dir``), send a shard's prompts in one call, and turn each completion into rows:

* a row whose prompt cannot be built is rejected with ``prompt: ...``;
* a completion that failed after the backend's retries is rejected with ``backend: <kind>: ...``
  (``transient``, ``permanent`` or ``malformed response``; see
  :class:`~gristmill.llm.types.Completion`). Failures are never cached, and the shard's
  stats count the transient ones (``errors_transient``), so the next run of the same
  command sends those requests again and answers the rest from the cache;
* a completion the task cannot parse is rejected with ``parse: ...`` and its raw text
  in ``gen.raw``.

Generated rows carry ``gen.model``, ``gen.cached``, ``gen.tokens_in`` and ``gen.tokens_out``;
rejected rows carry the same. A completion's tokens are counted on one row only (the
reject, else the first row made from it; 0 on the others), so column sums over kept and
rejected rows are the tokens spent. ``take_usage()`` returns the backend usage of the
calls since it was last called (requests, cached, errors, truncated, tokens, seconds),
for the runner's stats. Nothing a model or a server says crashes the run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pyarrow as pa
from pydantic import Field

from gristmill.llm.backends.base import BackendSpec, backend_modules, create_backend
from gristmill.models.runtime import default_threads
from gristmill.llm.types import Completion, Decoding, ParseError, Prompt, TaskOutput
from gristmill.ops.base import Annotator, Context, Generator, Params
from gristmill.records import ID, LICENSE, REASON, SOURCE
from gristmill.records import reason as reason_text

CACHE_FILE = "llm-cache.sqlite"
RAW = "gen.raw"
GEN_COLUMNS = ("gen.model", "gen.tokens_in", "gen.tokens_out", "gen.cached")


class Task(Protocol):
    """What an LLM operator needs from a task; ``parse`` raises :class:`ParseError`."""

    def format_prompt(self, row: dict[str, Any]) -> Prompt: ...

    def parse(self, text: str, row: dict[str, Any]) -> Any: ...


class LLMParams(Params):
    """Parameters every LLM operator has."""

    backend: BackendSpec = Field(default_factory=BackendSpec,
                                 description="LLM backend: {type: llama_cpp|transformers|openai|mock, ...}.")
    decoding: Decoding = Field(default_factory=Decoding, description="Decoding settings (greedy by default).")
    cache: bool = Field(True, description="Keep completions in the run's SQLite response cache.")


class _LLMMixin:
    """Backend lifecycle shared by the generator and the annotator."""

    params: LLMParams
    backend: Any = None
    task: Any = None

    def make_task(self) -> Task:  # pragma: no cover - abstract
        raise NotImplementedError

    def required_modules(self) -> list[str]:
        """What the parameters' backend type imports (llama.cpp, torch; nothing for ``mock``)."""
        return backend_modules(self.params.backend)

    def make_backend(self, ctx: Context) -> Any:
        """The backend named by the parameters (its threads sized by ``ctx.workers`` unless set),
        behind the response cache in ``ctx.cache_dir`` when there is one (none outside a run)."""
        spec = self.params.backend
        if spec.threads is None and ctx.workers is not None:
            spec = spec.model_copy(update={"threads": default_threads(ctx.workers)})
        backend = create_backend(spec)
        if self.params.cache and ctx.cache_dir is not None:
            from gristmill.llm.cache import CachedBackend
            backend = CachedBackend(backend, Path(ctx.cache_dir) / CACHE_FILE)
        return backend

    def setup(self, ctx: Context) -> None:
        self.task = self.make_task()
        self.backend = self.make_backend(ctx)
        self.backend.check(self.params.decoding)  # unsupported decoding settings fail here, before any request

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"backend": None, "task": None, "_usage": Counter()}

    def complete(self, prompts: Sequence[Prompt], decoding: Decoding | None = None) -> list[Completion]:
        """Completions for ``prompts`` (one backend call; errors come back per prompt), counted in the usage."""
        if not prompts:
            return []
        t0 = time.perf_counter()
        out = self.backend.generate(list(prompts), decoding or self.params.decoding)
        u = self.__dict__.setdefault("_usage", Counter())
        u["seconds"] += time.perf_counter() - t0
        u["requests"] += len(out)
        for c in out:
            u["cached"] += c.cached
            u["errors"] += c.finish_reason == "error"
            u["errors_transient"] += c.transient
            u["truncated"] += c.finish_reason == "length"
            u["tokens_in"] += c.tokens_in
            u["tokens_out"] += c.tokens_out
        return out

    def take_usage(self) -> dict[str, float]:
        """Backend usage since the last call: requests, cached, errors (``errors_transient`` of them
        worth retrying: unreachable server, timeout, 429, 5xx), truncated, tokens in/out, seconds."""
        u = self.__dict__.pop("_usage", Counter())
        return {k: u.get(k, 0) for k in ("requests", "cached", "errors", "errors_transient", "truncated",
                                          "tokens_in", "tokens_out", "seconds")}

    def _prompts(self, rows: list[dict[str, Any]]) -> tuple[list[Prompt | None], list[str | None]]:
        prompts: list[Prompt | None] = []
        errors: list[str | None] = []
        for row in rows:
            try:
                prompt = self.task.format_prompt(row)
                if prompt is None or prompt == "" or prompt == []:
                    raise ParseError("no prompt for this row")
            except ParseError as exc:
                prompts.append(None)
                errors.append(reason_text("prompt", str(exc)))
            else:
                prompts.append(prompt)
                errors.append(None)
        return prompts, errors

    def _complete_some(self, prompts: list[Prompt | None]) -> list[Completion | None]:
        todo = [i for i, p in enumerate(prompts) if p is not None]
        done = self.complete([prompts[i] for i in todo])
        out: list[Completion | None] = [None] * len(prompts)
        for i, c in zip(todo, done):
            out[i] = c
        return out

    def _gen_columns(self, c: Completion | None) -> dict[str, Any]:
        return {"gen.model": self.backend.model if c is not None else None,
                "gen.tokens_in": c.tokens_in if c else 0, "gen.tokens_out": c.tokens_out if c else 0,
                "gen.cached": bool(c.cached) if c else False}


def _as_rows(parsed: Any) -> tuple[list[dict[str, Any]], str | None]:
    """A task's parse result as (rows, reject reason)."""
    if isinstance(parsed, TaskOutput):
        return list(parsed.rows), parsed.reason
    if isinstance(parsed, Mapping):
        return [dict(parsed)], None
    return [dict(r) for r in parsed], None


class LLMGenerator(_LLMMixin, Generator):
    """Base of LLM generators: each input row gives a prompt, each completion gives rows.

    A parse that yields no rows and no reason is a reject with ``parse: no rows``. New rows
    get ``id`` ``<parent id>-<n>`` and the parent's ``source``/``license`` unless the task
    sets them, plus ``gen.parent`` and the ``gen.*`` columns.
    """

    Params: ClassVar[type[LLMParams]] = LLMParams

    def writes(self) -> list[str]:
        return [*GEN_COLUMNS, "gen.parent"]

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = batch.to_pylist()
        prompts, errors = self._prompts(rows)
        completions = self._complete_some(prompts)
        out: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        for n, (row, err, c) in enumerate(zip(rows, errors, completions)):
            if err is not None or c is None:
                failures.append({**row, REASON: err or "prompt: none"})
                continue
            gen = self._gen_columns(c)
            if c.finish_reason == "error":
                failures.append({**row, **gen, RAW: None, REASON: reason_text("backend", c.error)})
                continue
            try:
                new, reason = _as_rows(self.task.parse(c.text, row))
            except ParseError as exc:
                new, reason = [], reason_text("parse", str(exc))
            if reason is None and not new:
                reason = "parse: no rows"
            if reason is not None:
                failures.append({**row, **gen, RAW: c.text,
                                 REASON: reason if ":" in reason else reason_text("parse", reason)})
            parent = row.get(ID) if row.get(ID) is not None else f"row{n}"
            if reason is not None:  # the reject carries the completion's tokens
                gen = {**gen, "gen.tokens_in": 0, "gen.tokens_out": 0}
            for k, r in enumerate(new):
                if k == 1:  # tokens are counted on the first row a completion made
                    gen = {**gen, "gen.tokens_in": 0, "gen.tokens_out": 0}
                r.setdefault(ID, f"{parent}-{k}")
                r.setdefault(SOURCE, row.get(SOURCE) or self.name)
                if row.get(LICENSE) is not None:
                    r.setdefault(LICENSE, row.get(LICENSE))
                r.setdefault("gen.parent", parent)
                out.append({**r, **gen})
        return out, failures


class LLMColumns(_LLMMixin):
    """Columns from an LLM for each row (judges): what :class:`LLMAnnotator` and ``judge.score`` share.

    ``parse`` returns a dict of column values (a subset of ``columns``). Rows whose prompt,
    request or parse failed get nulls in every column and the reason (``prompt: ...``,
    ``backend: ...``, ``parse: ...``) in ``<namespace>.error``; tokens spent go to
    ``<namespace>.tokens_in`` / ``.tokens_out``. Subclasses set ``columns`` and
    ``namespace`` (default: the part of the operator name before the dot).
    """

    columns: ClassVar[tuple[str, ...]] = ()
    namespace: ClassVar[str] = ""

    @property
    def ns(self) -> str:
        return self.namespace or self.name.split(".")[0]

    def writes(self) -> list[str]:
        return [*self.columns, *(f"{self.ns}.{c}" for c in ("error", "raw", "tokens_in", "tokens_out", "cached"))]

    def llm_columns(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        """The completion of each row's prompt, parsed into :meth:`writes`' columns."""
        rows = batch.to_pylist()
        prompts, errors = self._prompts(rows)
        completions = self._complete_some(prompts)
        ns = self.ns
        cols: dict[str, list[Any]] = {c: [] for c in self.writes()}
        for row, err, c in zip(rows, errors, completions):
            values: dict[str, Any] = {}
            reason = err
            if reason is None and c is not None:
                if c.finish_reason == "error":
                    reason = reason_text("backend", c.error)
                else:
                    try:
                        values = dict(self.task.parse(c.text, row))
                    except ParseError as exc:
                        reason = reason_text("parse", str(exc))
            for col in self.columns:
                cols[col].append(None if reason else values.get(col))
            cols[f"{ns}.error"].append(reason)
            cols[f"{ns}.raw"].append(c.text if c is not None and reason and c.finish_reason != "error" else None)
            cols[f"{ns}.tokens_in"].append(c.tokens_in if c else 0)
            cols[f"{ns}.tokens_out"].append(c.tokens_out if c else 0)
            cols[f"{ns}.cached"].append(bool(c.cached) if c else False)
        return cols


class LLMAnnotator(LLMColumns, Annotator):
    """Base of LLM annotators: adds :meth:`~LLMColumns.llm_columns` to every row, drops nothing."""

    Params: ClassVar[type[LLMParams]] = LLMParams

    def annotate(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        return self.llm_columns(batch)
