"""Markdown for the dataset card, shared by the card and the card text operators contribute
(:attr:`gristmill.audit.metric.AuditSection.card`): cells, tables, numbers, parameters, step summaries."""

from __future__ import annotations

import json
from typing import Any

from gristmill.audit.columns import mask_secrets

__all__ = ["compact", "md", "num", "params_text", "summary_markdown", "table"]


def md(value: Any) -> str:
    """A value for a Markdown table cell."""
    s = "—" if value is None or value == "" else str(value)
    return s.replace("|", "\\|").replace("\n", " ")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def num(x: Any) -> str:
    """A number for a reader: ints with thousands separators, floats to 4 significant digits."""
    if isinstance(x, bool) or x is None:
        return md(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def compact(value: Any, limit: int = 40) -> str:
    """A parameter value in a few characters: lists of named things by their names, long text cut."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        return "[" + ", ".join(str(v["name"]) for v in value) + "]"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def params_text(params: dict[str, Any], keep: int = 8) -> str:
    """``k=v, ...`` of the parameters that are set (not null), each value compacted."""
    items = [f"{k}={compact(v)}" for k, v in mask_secrets(params).items() if v is not None]
    return ", ".join(items[:keep]) + (", …" if len(items) > keep else "")


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _label(item: dict[str, Any]) -> str:
    """An entry of a list as ``name value``: its first text field and its share (else first number)."""
    name = next((v for v in item.values() if isinstance(v, str)), "?")
    value = item.get("share", next((v for v in item.values() if isinstance(v, (int, float))
                                    and not isinstance(v, bool)), None))
    return f"{name} {num(value)}" if value is not None else str(name)


def _records_table(records: list[dict[str, Any]], keys: list[str] | None = None, rows: int = 8) -> str:
    cols = list(dict.fromkeys(k for r in records[:rows] for k, v in r.items() if _scalar(v)))[:9]
    lists = list(dict.fromkeys(k for r in records[:rows] for k, v in r.items()
                               if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)))[:1]
    headers = (["key"] if keys else []) + cols + [f"{k} (first 3)" for k in lists]
    body = []
    for i, r in enumerate(records[:rows]):
        cells = [keys[i]] if keys else []
        cells += [num(r.get(c)) for c in cols]
        cells += ["; ".join(_label(x) for x in (r.get(k) or [])[:3]) for k in lists]
        body.append(cells)
    return table(headers, body)


def summary_markdown(obj: dict[str, Any], path: str = "", depth: int = 0) -> list[str]:
    """A step's JSON run summary as Markdown, read generically: scalars on one line, lists of
    records and mappings of records as tables (first rows only), nested mappings one level deep."""
    out = []
    scalars = [(k, v) for k, v in obj.items() if _scalar(v)]
    if scalars:
        out.append(f"- {path or 'totals'}: " + ", ".join(f"{k} {num(v)}" for k, v in scalars))
    for k, v in obj.items():
        key = f"{path}.{k}" if path else k
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            out.append(f"\n{key} (first {min(len(v), 8)} of {len(v)}):\n\n{_records_table(v)}\n")
        elif isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            out.append(f"\n{key}:\n\n{_records_table(list(v.values()), list(map(str, v)))}\n")
        elif isinstance(v, dict) and depth < 1:
            out += summary_markdown(v, key, depth + 1)
    return out
