"""The audit's view of a run's rows: which columns it reads, and helpers over them.

Rows come from :class:`gristmill.pipeline.run_reader.RunReader`, the one reader of a run
directory. The audit reads only ``id``, ``source``, ``license``, ``_reason`` and the audit
namespaces (:func:`gristmill.audit.catalogue.audit_prefixes`: the families of the operators that
contribute audit sections) of the output and rejected rows, never the text, except for the few
worst records shown (:func:`snippets`). Operators' measure functions use these helpers too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.audit.catalogue import audit_prefixes
from gristmill.pipeline.run_reader import UNREADABLE, WHERE, RunReader, concat_tables
from gristmill.records import ID, LICENSE, REASON, SOURCE

__all__ = ["OUTPUT", "WHERE", "WORST", "audit_output", "audit_rejected", "cut", "floats", "is_audit_column",
           "mask_secrets", "number", "output_and_rejected", "quarantine_first", "snippets", "span_type", "strings",
           "worst_rows"]

WORST = 5
SNIPPET = 200
OUTPUT = "output"
_SECRET = re.compile(r"salt|secret|token|password|api_key", re.I)


def mask_secrets(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the values of secret-looking keys (salt, token, ...) replaced by ``***``."""
    return {k: "***" if _SECRET.search(str(k)) and not str(k).endswith("_env") and v is not None else v
            for k, v in params.items()}


def is_audit_column(name: str) -> bool:
    """The columns the audit reads: ids, sources, licenses, drop reasons and the audit namespaces."""
    return _audit_columns(audit_prefixes())(name)


@lru_cache(maxsize=8)
def _audit_columns(prefixes: tuple[str, ...]) -> Callable[[str], bool]:
    """One test of a column name per set of namespaces (the same object each time, so the run reader's
    tables cached under it are read once)."""
    return lambda name: name in (ID, SOURCE, LICENSE, REASON) or name.startswith(prefixes)


def audit_output(run: RunReader) -> pa.Table:
    """``id``, ``source``, ``license`` and the audit columns of every output row (no text)."""
    return run.output_table(_audit_columns(audit_prefixes()))


def audit_rejected(run: RunReader) -> pa.Table:
    """The audit columns of every rejected row, with ``_where`` = the step that dropped it."""
    return run.rejected_table(_audit_columns(audit_prefixes()))


def quarantine_first(run: RunReader, k: int) -> list[dict[str, Any]]:
    """The first ``k`` readable quarantine entries as worst records (id ``source:line``, value the reason)."""
    entries = [e for e in run.quarantine.first if not (e["reason"] == UNREADABLE and e["source"] is None)]
    return [{"id": f"{e['source']}:{e['line']}", "value": e["reason"], "where": "quarantine", "source": e["source"],
             "text": e["raw"] or None} for e in entries[:k]]


def snippets(run: RunReader, wanted: dict[str, set[str]]) -> dict[tuple[str, str], str | None]:
    """Start of the text of rows by (where, id): ``where`` is ``output`` or a rejected step."""
    return {key: cut(text) for key, text in run.texts(wanted, output=OUTPUT).items()}


def cut(text: Any, limit: int = SNIPPET) -> str | None:
    if text is None:
        return None
    s = text if isinstance(text, str) else str(text)
    return s if len(s) <= limit else s[:limit] + "…"


# ---- column helpers ------------------------------------------------------------------

def floats(table: pa.Table, column: str) -> np.ndarray:
    if column not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = table.column(column)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
        return np.full(table.num_rows, np.nan)
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def strings(table: pa.Table, column: str) -> list[Any]:
    return table.column(column).to_pylist() if column in table.column_names else [None] * table.num_rows


def span_type(span: Any) -> str:
    """The type of a span or labelled item (its ``type``, ``entity_type``, ``label`` or ``entity``); ``?``: none."""
    if isinstance(span, dict):
        for key in ("type", "entity_type", "label", "entity"):
            if span.get(key) is not None:
                return str(span[key])
    return "?"


def number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(float(x), 6)


def worst_rows(table: pa.Table, mask: np.ndarray, key: np.ndarray, where: Iterable[str] | None = None,
               detail: Iterable[str] = (), k: int = WORST) -> list[dict[str, Any]]:
    """Up to ``k`` rows of ``table`` where ``mask``, highest ``key`` first (stable on ties)."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    vals = np.nan_to_num(key[idx], nan=-np.inf)
    idx = idx[np.argsort(-vals, kind="stable")][:k]
    ids, sources = strings(table, ID), strings(table, SOURCE)
    wheres = list(where) if where is not None else strings(table, WHERE)
    extra = {c: strings(table, c) for c in detail}
    out = []
    for i in idx.tolist():
        rec = {"id": ids[i], "value": number(key[i]) if not math.isnan(key[i]) else None,
               "where": wheres[i] or OUTPUT, "source": sources[i]}
        rec.update({c: v[i] for c, v in extra.items() if v[i] is not None})
        out.append(rec)
    return out


def output_and_rejected(run: RunReader) -> tuple[pa.Table, list[str]]:
    """Output and rejected rows together, and where each is."""
    out, rej = audit_output(run), audit_rejected(run)
    where = [OUTPUT] * out.num_rows + (strings(rej, WHERE) if rej.num_rows else [])
    both = concat_tables([out.drop_columns([c for c in [WHERE] if c in out.column_names]),
                          rej.drop_columns([c for c in [WHERE, REASON] if c in rej.column_names])])
    return both, where
