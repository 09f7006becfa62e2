"""Helpers shared by the generation operators: example text, ids, inherited columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from gristmill.records import ID, LICENSE, SOURCE


_REPO = Path(__file__).resolve().parents[4]
_EXAMPLE_KG = _REPO / "recipes" / "data" / "kg_triples.csv"


def example_text(instruction: str | None, input: str | None = "", output: str | None = None) -> str:
    """The ``text`` of an instruction/input/output row: its parts separated by blank lines.

    Text operators (clean, quality, dedup, decontamination) then see the whole example;
    chat writers use the instruction/input/output columns.
    """
    return "\n\n".join(p.strip() for p in (instruction, input, output) if p and p.strip())


def _parent_id(row: dict[str, Any], n: int) -> str:
    return str(row[ID]) if row.get(ID) is not None else f"row{n}"


def _inherit(new: dict[str, Any], row: dict[str, Any], parent: str, name: str) -> dict[str, Any]:
    new.setdefault(SOURCE, row.get(SOURCE) or name)
    if row.get(LICENSE) is not None:
        new.setdefault(LICENSE, row.get(LICENSE))
    new.setdefault("gen.parent", parent)
    return new
