"""A recipe built in code: :class:`Pipeline` holds what a recipe file holds and validates, runs or
applies it through the same functions as the YAML path (:func:`gristmill.recipe.load_recipe`,
:func:`gristmill.api.runs.run`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gristmill.api.operators import Result, StepLike, apply, step_spec
from gristmill.api.runs import run
from gristmill.recipe import Recipe, load_recipe
from gristmill.runner import RunSummary

InputLike = str | Path | Sequence[str | Path] | Mapping[str, Any]


class Pipeline:
    """A recipe in code: ``input``, ``steps`` and ``output``, as in a recipe file.

    ``input``: a path (file, directory or glob), a list of paths, or the recipe's ``input``
    mapping (``{"path": ..., "format": "jsonl", "text_column": "body"}``). ``steps``: operator
    objects (:func:`gristmill.op`), registered names, ``(name, params)`` tuples or
    ``{"op": name, "params": {...}}`` dicts. ``output``: a format name (``"parquet"``) or the
    recipe's ``output`` mapping; default JSON Lines in the run directory. The other keywords are
    the recipe's other keys. Relative paths resolve against ``base_dir`` (default: the working
    directory when the pipeline is validated). Nothing is checked until :meth:`validate`.
    """

    def __init__(self, input: InputLike | None = None, steps: Sequence[StepLike] = (),
                 output: str | Mapping[str, Any] | None = None, *, name: str = "pipeline",
                 description: str | None = None, executor: Mapping[str, Any] | None = None, strict: bool = False,
                 gates: Sequence[str] = (), card: Mapping[str, Any] | None = None,
                 base_dir: str | Path | None = None) -> None:
        self.input = input
        self.steps = list(steps)
        self.output = output
        self.name = name
        self.description = description
        self.executor = executor
        self.strict = strict
        self.gates = list(gates)
        self.card = card
        self.base_dir = base_dir

    def __repr__(self) -> str:
        ops = ", ".join(str(s.get("op")) if isinstance(s, dict) else repr(s) for s in map(step_spec, self.steps))
        return f"Pipeline(name={self.name!r}, input={self.input!r}, steps=[{ops}])"

    def recipe(self) -> dict[str, Any]:
        """The recipe as a dict, in the form a recipe file holds (steps as ``{"op", "params"}``)."""
        data: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            data["description"] = self.description
        if self.input is not None:
            inp = self.input
            if isinstance(inp, Mapping):
                data["input"] = dict(inp)
            else:
                data["input"] = {"path": [str(p) for p in inp] if isinstance(inp, (list, tuple)) else str(inp)}
        data["steps"] = [step_spec(s) for s in self.steps]
        if self.output is not None:
            data["output"] = {"format": self.output} if isinstance(self.output, str) else dict(self.output)
        if self.executor is not None:
            data["executor"] = dict(self.executor)
        if self.strict:
            data["strict"] = True
        if self.gates:
            data["gates"] = list(self.gates)
        if self.card is not None:
            data["card"] = dict(self.card)
        return data

    def to_yaml(self) -> str:
        """The recipe as YAML, ready for ``gristmill run``."""
        return yaml.safe_dump(self.recipe(), sort_keys=False, allow_unicode=True)

    def validate(self, overrides: Sequence[str] = ()) -> Recipe:
        """The validated :class:`~gristmill.recipe.Recipe`, built exactly as from a recipe file: every
        check applies (operator names and parameters, input paths and formats, the columns each step
        reads, gates, output). Raises :class:`~gristmill.recipe.RecipeError` listing every problem
        with its location (``steps[2].params.min_words: must be >= 0``). ``overrides`` are
        ``--set`` assignments (``"steps.1.params.min_words=10"``)."""
        base = Path(self.base_dir).resolve() if self.base_dir is not None else None
        return load_recipe(self.recipe(), list(overrides), base)

    def run(self, runs_dir: str | Path = "runs", name: str | None = None, *, overrides: Sequence[str] = (),
            **options: Any) -> RunSummary:
        """Validate, then run into ``runs_dir/<name>`` (default: the pipeline's name) as ``gristmill run``
        does; ``options`` are those of :func:`gristmill.run` (``workers``, ``fresh``, ``progress``, ...)."""
        return run(self.validate(overrides), runs_dir=runs_dir, name=name, **options)

    def apply(self, data: Any, *, batch_size: int | None = None) -> Result:
        """Run the steps over ``data`` in memory (:func:`gristmill.apply`); input and output are not used."""
        return apply(self.steps, data, batch_size=batch_size, base_dir=self.base_dir)
