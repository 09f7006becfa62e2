"""The HTML report of a training, evaluation, experiment or selection run directory.

A pure function of what :class:`gristmill.rundir.RunDir` read from the run's
``config.json``, ``metrics.jsonl``, ``results.json`` and ``report.json``: one
self-contained page with the results, the curves of every logged series (one chart per
logged value), the items the command added, and the configuration. Empty inputs give an
empty section, not an error. (This module reads no file, so ``gristmill.rundir`` can
import it without a cycle.)
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from gristmill.report import charts
from gristmill.report.html import esc, kv, none, num, page, table

_SKIP = {"series", "step", "time"}


def _flat(results: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in results.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and len(rows) < 200:
            rows.extend(_flat(v, key + "."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            rows.append((key, v))
        else:
            text = json.dumps(v, ensure_ascii=False)
            rows.append((key, text if len(text) <= 200 else text[:200] + "…"))
    return rows


def _short(value: Any) -> Any:
    """Floats to 4 significant digits (a tail coverage of 0.0257 must not show as 0.03)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


def metric_curves(points: list[dict[str, Any]]) -> list[str]:
    """One chart per logged value name, a line per series (train / dev / ...)."""
    by_value: dict[str, dict[str, tuple[list[float], list[float]]]] = defaultdict(dict)
    for p in points:
        for name, value in p.items():
            if name in _SKIP or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            xs, ys = by_value[name].setdefault(str(p.get("series", "")), ([], []))
            xs.append(float(p.get("step", len(xs))))
            ys.append(float(value))
    return [charts.band_curves(series, title=name, xlabel="step", ylabel=name)
            for name, series in by_value.items()]


def _item(item: dict[str, Any]) -> str:
    kind = item.get("type")
    note = f"<p>{esc(item['note'])}</p>" if item.get("note") else ""
    if kind == "table":
        body = table(item["headers"], item["rows"]) if item.get("rows") else none()
    elif kind == "curve":
        series = {k: (v[0], v[1]) for k, v in item.get("series", {}).items()}
        bands = {k: (v[0], v[1], v[2]) for k, v in item.get("bands", {}).items()}
        body = charts.band_curves(series, bands, title=item["title"], xlabel=item.get("xlabel", ""),
                                  ylabel=item.get("ylabel", ""), logy=bool(item.get("logy")))
    elif kind == "bars":
        body = charts.hbars(item["labels"], item["values"], title=item["title"], xlabel=item.get("xlabel", ""))
    elif kind == "histogram":
        vals = item.get("values") or []
        body = charts.histogram(vals, bins=int(item.get("bins", 30)), title=item["title"],
                                xlabel=item.get("xlabel", "")) if vals else none()
    elif kind == "samples":
        body = table(["", "text"], item.get("items", []), text_cols=(1,)) if item.get("items") else none()
    elif kind == "text":
        body = f'<pre style="white-space:pre-wrap">{esc(item.get("body", ""))}</pre>'
    else:
        body = none(f"unknown item type {kind!r}")
    return f"<h3>{esc(item.get('title', ''))}</h3>{note}{body}"


def render(run_dir: Path, *, config: dict[str, Any], results: dict[str, Any], items: list[dict[str, Any]],
           points: list[dict[str, Any]], title: str | None = None) -> str:
    """The report page of the run in ``run_dir`` (its ``config.json``, ``results.json``, ``report.json``
    items and ``metrics.jsonl`` points, as read by :class:`gristmill.rundir.RunDir`) as an HTML string."""
    run_dir = Path(run_dir)
    kind = config.get("kind", "run")
    heading = title or f"gristmill {kind}: {run_dir.name}"
    sections = []
    nav = []

    def add(anchor: str, name: str, body: str) -> None:
        nav.append((anchor, name))
        sections.append(f'<section id="{anchor}"><h2>{esc(name)}</h2>{body}</section>')

    if items:
        add("details", "Results", "".join(_item(i) for i in items))
    curves = metric_curves(points)
    if curves or not items:
        add("curves", "Curves", "".join(curves) if curves else none("nothing logged"))
    flat = [(k, _short(v)) for k, v in _flat(results)]
    body = none("no results yet")
    if flat:
        body = table(["figure", "value"], flat)
        if items:  # the items above show the figures that matter; the raw ones fold away
            body = f"<details><summary>{len(flat)} figures from results.json</summary>{body}</details>"
    add("figures", "All figures", body)
    add("config", "Configuration", f"<pre>{esc(json.dumps(config, indent=2, ensure_ascii=False))}</pre>")
    meta = kv([("directory", esc(run_dir)), ("points logged", num(len(points)))])
    return page(heading, f"<h1>{esc(heading)}</h1>", nav, [meta, *sections])
