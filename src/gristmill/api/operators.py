"""Operators on data in memory: :func:`op` builds one by its registered name, :func:`apply` runs
one or a chain of them over a list of dicts, a pandas ``DataFrame``, a pyarrow ``Table`` or a
Hugging Face ``Dataset`` and gives back the kept and the rejected rows in the same kind.

:func:`apply` drives an operator the way a run does (:mod:`gristmill.runner`,
:mod:`gristmill.pipeline.worker`): ``setup`` once, then for a global operator ``summarize``
each batch and ``fit`` on the summaries before ``process``-ing each batch; a batch is what a
shard is in a run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import pyarrow as pa
from pydantic import ValidationError

from gristmill import extras, registry
from gristmill.api.data import batches, from_table, kind_of, to_table, with_ids
from gristmill.ops.base import GlobalOp, Operator
from gristmill.pipeline.run_reader import WHERE, concat_tables
from gristmill.pipeline.worker import reason_counts
from gristmill.recipe import RecipeError, pydantic_messages
from gristmill.records import ID, REASON, concat, set_column

StepLike = Union[Operator, str, tuple, Mapping[str, Any]]
"""A step: an operator object, a registered name, ``(name, params)`` or ``{"op": name, "params": params}``."""


def op(name: str, params: Mapping[str, Any] | None = None, /, *, base_dir: str | Path | None = None,
       **kwargs: Any) -> Operator:
    """The operator registered as ``name`` (built-in or third party), built with ``params`` and ``kwargs``.

    The parameters are validated by the operator's own model, as in a recipe: a wrong one raises
    :class:`~gristmill.recipe.RecipeError` with one located line per problem
    (``params.min_words: must be >= 0``), an unknown name
    :class:`~gristmill.registry.UnknownOperator` with the closest names, a missing extra
    :class:`~gristmill.extras.MissingExtra` (an ``ImportError``) with the ``pip install`` line.
    Relative paths in the parameters resolve against ``base_dir`` (default: the working directory).
    Nothing heavy is loaded yet: models load on the first :func:`apply` (the operator's ``setup``).
    """
    cls = registry.get(name)
    values = {**(params or {}), **kwargs}
    try:
        operator = cls(**values)
    except ValidationError as exc:
        raise RecipeError(pydantic_messages(exc, "params", list(cls.Params.model_fields)), name) from None
    extras.check(name, operator.required_modules())
    operator.bind(base_dir=Path(base_dir).resolve() if base_dir is not None else Path.cwd())
    return operator


def step_spec(step: Any) -> Any:
    """``step`` in a recipe's form, ``{"op": name, "params": {...}}``. An operator object gives its
    name and the parameters it was given. A value of no known form is returned as it is, so recipe
    validation reports it at its location (``steps[2]: ...``)."""
    if isinstance(step, Operator):
        return {"op": step.name, "params": step.params.model_dump(mode="json", exclude_unset=True)}
    if isinstance(step, str):
        return {"op": step}
    if isinstance(step, tuple) and len(step) in (1, 2) and isinstance(step[0], str):
        params = step[1] if len(step) == 2 else {}
        return {"op": step[0], "params": dict(params) if isinstance(params, Mapping) else params}
    if isinstance(step, Mapping):
        return dict(step)
    return step


def as_operators(ops: StepLike | Sequence[StepLike], base_dir: str | Path | None = None) -> list[Operator]:
    """Operator objects for ``ops``: one step, or a list of steps (a chain). Operator objects are
    used as they are (a global one is fitted again by each :func:`apply`)."""
    steps = list(ops) if isinstance(ops, list) else [ops]
    out = []
    for i, step in enumerate(steps):
        if isinstance(step, Operator):
            out.append(step)
            continue
        spec = step_spec(step)
        if (not isinstance(spec, dict) or not isinstance(spec.get("op"), str) or set(spec) - {"op", "params"}
                or not isinstance(spec.get("params") or {}, Mapping)):
            raise TypeError(f"step {i}: expected an operator, a name, (name, params) or "
                            f"{{'op': name, 'params': {{...}}}}, got {step!r}")
        out.append(op(spec["op"], spec.get("params") or {}, base_dir=base_dir))
    return out


@dataclass
class Result:
    """What :func:`apply` made of the data, in the kind it was given.

    ``kept``: the rows every step kept, with the columns the steps wrote (and ``id``).
    ``rejected``: every dropped row as it was when dropped, with ``_reason`` (``rule: detail``,
    parsed by :meth:`gristmill.records.Reason.parse`) and ``_where`` (the step, ``01-dedup.exact``);
    a generator's rejected rows are its failed generations. ``steps``: per step, rows in and out,
    the dropped rows counted by rule, seconds, and LLM usage where there was some.
    ``kept, rejected = gristmill.apply(...)`` unpacks it.
    """

    kept: Any
    rejected: Any
    steps: list[dict[str, Any]] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        yield self.kept
        yield self.rejected


def apply(ops: StepLike | Sequence[StepLike], data: Any, *, batch_size: int | None = None,
          base_dir: str | Path | None = None) -> Result:
    """Run ``ops`` (one step, or a list of steps in order) over ``data``; ``Pipeline.apply`` runs a pipeline's.

    ``data`` is a list of dicts, a pandas ``DataFrame``, a pyarrow ``Table`` or a
    ``datasets.Dataset``; :attr:`Result.kept` and :attr:`Result.rejected` are of the same kind.
    Rows get an ``id`` by the readers' rule when they have none (``row:1``, ``row:2``, ...; a
    repeated id gets ``~2``), and ids are text. Each operator's ``setup`` runs once (models load
    then); a global operator (``dedup.*``, ``split.*``) summarises every batch and is fitted on
    them all before it processes each batch, and keeps that fit (a later :func:`apply` fits it
    again). ``batch_size`` cuts the data into batches as a run cuts its input into shards (default:
    one batch). What is dropped: the rows an operator rejects, each with its reason, in
    ``rejected``; the index of a DataFrame and the features of a Dataset (class labels) are not kept.
    Whatever an operator raises propagates, with a note naming the step.
    """
    operators = as_operators(ops, base_dir)
    kind = kind_of(data)
    parts = batches(with_ids(to_table(data, kind)), batch_size)
    rejected: list[pa.Table] = []
    steps: list[dict[str, Any]] = []
    for index, operator in enumerate(operators):
        label = f"{index:02d}-{operator.name}"
        t0 = time.perf_counter()
        try:
            operator.ensure_setup()
            if isinstance(operator, GlobalOp):
                for part in parts:
                    operator.check_columns(part)
                operator.fit([operator.summarize(part) for part in parts])
            results = [operator.process(part) for part in parts]
        except Exception as exc:
            exc.add_note(f"in step {label} of gristmill.apply")
            raise
        dropped = [r.rejected for r in results if r.rejected is not None and r.rejected.num_rows]
        rejected += [set_column(t, WHERE, pa.array([label] * t.num_rows, pa.string())) for t in dropped]
        stats: dict[str, Any] = {"step": label, "op": operator.name, "rows_in": sum(p.num_rows for p in parts),
                                 "rows_out": sum(r.kept.num_rows for r in results),
                                 "dropped": reason_counts(concat(dropped)) if dropped else {},
                                 "seconds": time.perf_counter() - t0}
        usage = operator.take_usage()
        if usage is not None:
            stats["llm"] = usage
        steps.append(stats)
        parts = [r.kept for r in results]
    kept = concat(parts) if len(parts) > 1 else parts[0]
    gone = concat_tables(rejected) if rejected else pa.table(
        {c: pa.array([], pa.string()) for c in (ID, REASON, WHERE)})
    return Result(from_table(kept, kind), from_table(gone, kind), steps)
