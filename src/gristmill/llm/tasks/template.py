"""Rule-based generation (基于规则的生成): fill templates from value lists and row columns, no model.

A template is a ``str.format`` string with named slots (``"What is the capital of
{country}?"``), or a mapping of output columns to such strings (``{instruction: ...,
output: ...}``) so one fill makes a whole record. A slot is filled from the input row's
column of that name when the row has it, otherwise from a value list:

* a list of strings fills the slot named by its key (``colors: [red, green]`` → ``{colors}``);
* a list of mappings fills several linked slots at once (``places: [{country: France,
  capital: Paris}, ...]`` → ``{country}`` and ``{capital}`` always agree).

``expand`` makes every combination of the value lists a template uses (``product``, in
list order) or ``n`` seeded random combinations (``sample``). Identical fills are made
once. A slot no column or list provides, or a null column, is a :class:`ParseError`
(``missing_slot: ...``).
"""

from __future__ import annotations

import itertools
import random
import string
from collections.abc import Mapping, Sequence
from typing import Any, Union

from gristmill.llm.types import ParseError

__all__ = ["Template", "expand", "fill", "slot_sources", "template_slots"]

Template = Union[str, Mapping[str, str]]
ValueLists = Mapping[str, Sequence[Union[str, Mapping[str, Any]]]]


def template_slots(template: Template) -> list[str]:
    """The slot names a template uses, in order of first use; positional ``{}`` slots are errors."""
    parts = template.values() if isinstance(template, Mapping) else [template]
    slots: dict[str, None] = {}
    for part in parts:
        for _, field, _, _ in string.Formatter().parse(part):
            if field is None:
                continue
            name = field.split(".")[0].split("[")[0]
            if not name or name.isdigit():
                raise ValueError(f"template {part!r}: positional slot {{{field}}}; name every slot")
            slots[name] = None
    return list(slots)


def _provides(key: str, values: Sequence[Any]) -> set[str]:
    names: set[str] = set()
    for v in values:
        names |= set(v) if isinstance(v, Mapping) else {key}
    return names


def slot_sources(slots: Sequence[str], row: Mapping[str, Any], values: ValueLists) -> tuple[list[str], list[str]]:
    """(value-list keys the slots need, slots nobody provides). Row columns take precedence."""
    needed: list[str] = []
    missing: list[str] = []
    for slot in slots:
        if slot in row:
            continue
        keys = [k for k, vs in values.items() if slot in _provides(k, vs)]
        if not keys:
            missing.append(slot)
        elif keys[0] not in needed:
            needed.append(keys[0])
    return needed, missing


def _bindings(key: str, value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {key: value}


def fill(template: Template, bindings: Mapping[str, Any]) -> dict[str, str] | str:
    """The template with its slots filled; :class:`ParseError` names a missing or null slot."""
    for slot in template_slots(template):
        if bindings.get(slot) is None:
            raise ParseError(f"missing_slot: {slot!r} is {'null' if slot in bindings else 'not provided'}")
    if isinstance(template, Mapping):
        return {col: part.format_map(bindings) for col, part in template.items()}
    return template.format_map(bindings)


def expand(template: Template, row: Mapping[str, Any], values: ValueLists, *, mode: str = "product",
           n: int = 1, rng: random.Random | None = None, limit: int | None = None) -> list[dict[str, str] | str]:
    """The fills of ``template`` for ``row``: all value combinations (``product``) or ``n`` sampled ones.

    ``limit`` caps the number of fills (product mode stops early, in list order).
    Raises :class:`ParseError` when a slot has no source or a row column it needs is null.
    """
    slots = template_slots(template)
    keys, missing = slot_sources(slots, row, values)
    if missing:
        raise ParseError(f"missing_slot: {missing[0]!r} is not a column or a value list")
    base = {s: row[s] for s in slots if s in row}
    for s, v in base.items():
        if v is None:
            raise ParseError(f"missing_slot: {s!r} is null")
    if mode == "product":
        combos = itertools.product(*(values[k] for k in keys))
    elif mode == "sample":
        rng = rng or random.Random(0)
        combos = ([rng.choice(values[k]) for k in keys] for _ in range(n)) if keys else iter([()])
    else:
        raise ValueError(f"mode {mode!r}: expected 'product' or 'sample'")
    out: dict[str, dict[str, str] | str] = {}
    for combo in combos:
        bindings: dict[str, Any] = {}
        for k, v in zip(keys, combo):
            bindings.update(_bindings(k, v))
        bindings.update(base)  # row columns take precedence over linked values
        filled = fill(template, bindings)
        out.setdefault(repr(filled), filled)
        if limit is not None and len(out) >= limit:
            break
    return list(out.values())
