"""``generate.template``: rule-based generation from templates and value lists (no model)."""

from __future__ import annotations

import random
from typing import Any, ClassVar, Literal, Union

import pyarrow as pa
from pydantic import Field, field_validator

from gristmill.llm.tasks import template as template_task
from gristmill.llm.types import ParseError
from gristmill.ops.base import Generator, Params
from gristmill.ops.generate.common import _inherit, _parent_id, example_text
from gristmill.records import ID, REASON


class TemplateGenerate(Generator):
    """Rule-based generation: fill templates from value lists and row columns (no model).

    Each input row is expanded with every template: slots come from the row's columns or
    from ``values`` (a list of strings fills one slot; a list of mappings fills linked
    slots together, e.g. country with its capital). ``mode: product`` makes every
    combination (up to ``max_per_row`` per template), ``mode: sample`` makes ``n``
    seeded random ones. A string template fills ``text``; a mapping template fills the
    columns it names (and ``text`` = the whole example when it has an instruction but no
    text, see :func:`example_text`). Identical fills are made once. Rejected: ``missing_slot: 'x' is null`` (or not
    provided) per row and template.
    """

    name = "generate.template"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {
        "templates": ["Summarize in one sentence: {text}", {"instruction": "Translate into {lang}: {text}",
                                                             "output": ""}],
        "values": {"lang": ["French", "German"]}}

    class Params(Params):
        templates: list[Union[str, dict[str, str]]] = Field(
            ..., min_length=1, description="str.format templates with named slots; a mapping makes several columns.")
        values: dict[str, list[Union[str, int, float, dict[str, Any]]]] = Field(
            default_factory=dict, description="Value lists per slot; mapping items fill linked slots together.")
        mode: Literal["product", "sample"] = Field("product", description="All combinations, or n sampled.")
        n: int = Field(1, ge=1, description="sample mode: fills per row and template.")
        max_per_row: int = Field(1000, ge=1, description="Most fills per row and template (product mode).")
        seed: int = Field(0, description="Sampling seed (with the row id, so shards do not matter).")
        keep_columns: list[str] = Field(default_factory=list, description="Input columns copied to each new row.")

        @field_validator("templates")
        @classmethod
        def _slots_named(cls, v: list[Any]) -> list[Any]:
            for t in v:
                template_task.template_slots(t)
            return v

    def _columns(self, t: str | dict[str, str]) -> list[str]:
        if isinstance(t, str):
            return ["text"]
        cols = list(t)
        return cols + ["text"] if "instruction" in t and "text" not in t else cols

    def reads(self) -> list[str]:
        cols: dict[str, None] = {}
        for t in self.params.templates:
            needed, missing = template_task.slot_sources(template_task.template_slots(t), {}, self.params.values)
            cols.update(dict.fromkeys(missing))
        return [*cols, *self.params.keep_columns]

    def writes(self) -> list[str]:
        cols: dict[str, None] = {}
        for t in self.params.templates:
            cols.update(dict.fromkeys(self._columns(t)))
        return [*cols, "gen.parent", "gen.template"]

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        p = self.params
        rows, failures = [], []
        for n, row in enumerate(batch.to_pylist()):
            parent = _parent_id(row, n)
            for ti, t in enumerate(p.templates):
                rng = random.Random(f"{p.seed}:{parent}:{ti}")
                try:
                    fills = template_task.expand(t, row, p.values, mode=p.mode, n=p.n, rng=rng, limit=p.max_per_row)
                except ParseError as exc:
                    failures.append({**row, ID: f"{parent}-t{ti}", REASON: str(exc)})
                    continue
                for k, filled in enumerate(fills):
                    new = {"text": filled} if isinstance(filled, str) else dict(filled)
                    if "instruction" in new and "text" not in new:
                        new["text"] = example_text(new["instruction"], new.get("input"), new.get("output"))
                    new.update({c: row.get(c) for c in p.keep_columns})
                    new[ID] = f"{parent}-t{ti}-{k}"
                    new["gen.template"] = ti
                    rows.append(_inherit(new, row, parent, self.name))
        return rows, failures


# ---- generate.self_instruct ------------------------------------------------------
