"""The ``metadata`` field of the JSON Lines training formats: provenance that survives the format.

The chat and trainer formats (``openai``, ``sharegpt``, ``alpaca``, ``prompt_completion``,
``preference``) have no place for a dataset's other columns, so each record carries them in one
object, ``"metadata": {...}``:

* the columns the ``metadata`` output option names (names or ``fnmatch`` patterns such as
  ``"quality.*"``); ``true`` (the default) takes those of :data:`DEFAULT_COLUMNS` the data has:
  ``source``, ``license`` and the common annotations (language, judge score, toxicity, the
  generating model and parent row, preference-pair scores); ``false`` writes no metadata field;
* when the writer is given the run's provenance (:func:`run_provenance`), ``gristmill.recipe``
  (the recipe fingerprint: the first 16 hex digits of the SHA-256 of the resolved recipe's
  ``input`` and ``steps`` sections as canonical JSON) and ``gristmill.ops`` (each step as
  ``name@version``, in order), so every row says which recipe and operator versions made it.

A record's ``id`` stays a top-level field. The chat readers (:mod:`gristmill.io.chat`) spread a
record's ``metadata`` back into columns, so writing and reading again gives the same columns; a
record whose metadata names a ``source`` keeps it (instead of the file it was read from).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DEFAULT_COLUMNS", "FIELD", "OPS", "RECIPE", "metadata_columns", "metadata_source", "recipe_fingerprint",
           "row_metadata", "run_provenance", "spread"]

FIELD = "metadata"
RECIPE = "gristmill.recipe"
OPS = "gristmill.ops"
DEFAULT_COLUMNS: tuple[str, ...] = ("source", "license", "lang.code", "judge.score", "toxicity.score", "gen.model",
                                    "gen.parent", "pref.*")
"""What ``metadata: true`` carries, of the columns a table has (patterns allowed)."""


def recipe_fingerprint(resolved: Mapping[str, Any]) -> str:
    """The first 16 hex digits of the SHA-256 of a resolved recipe's ``input`` and ``steps`` (canonical JSON)."""
    payload = {"input": resolved.get("input"), "steps": resolved.get("steps")}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def run_provenance(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """``{"recipe": fingerprint, "ops": ["name@version", ...]}`` of a resolved recipe (``Recipe.resolved()``)."""
    ops = [f"{s.get('op')}@{s.get('version', '1')}" for s in resolved.get("steps") or []]
    return {"recipe": recipe_fingerprint(resolved), "ops": ops}


def metadata_columns(names: Sequence[str], wanted: bool | Sequence[str], payload: Sequence[str] = ()) -> list[str]:
    """The columns of ``names`` the metadata field carries: ``wanted`` is ``True`` (:data:`DEFAULT_COLUMNS`),
    ``False`` (none) or names / ``fnmatch`` patterns; ``id`` and the format's ``payload`` columns never."""
    if wanted is False:
        return []
    patterns = DEFAULT_COLUMNS if wanted is True else tuple(wanted)
    skip = {"id", *payload}
    out: list[str] = []
    for pattern in patterns:
        for name in names:
            if name not in skip and name not in out and fnmatch.fnmatchcase(name, pattern):
                out.append(name)
    return out


def row_metadata(row: Mapping[str, Any], columns: Sequence[str],
                 provenance: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The metadata object of ``row`` (its ``columns``, then the run's provenance), or None when empty."""
    meta = {c: row.get(c) for c in columns}
    if provenance:
        meta[RECIPE] = provenance.get("recipe")
        meta[OPS] = list(provenance.get("ops") or [])
    return meta or None


def spread(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its ``metadata`` object (if any) turned back into columns; a column the record
    has at the top level wins over the metadata key of the same name."""
    meta = row.get(FIELD)
    if not isinstance(meta, dict):
        return row
    out = {k: v for k, v in row.items() if k != FIELD}
    for key, value in meta.items():
        out.setdefault(str(key), value)
    return out


def metadata_source(obj: Mapping[str, Any]) -> str | None:
    """The ``source`` a record's metadata names (the data it came from), or None."""
    meta = obj.get(FIELD)
    source = meta.get("source") if isinstance(meta, dict) else None
    return source if isinstance(source, str) and source else None
