"""The report's sections. Each is a function ``RunReader -> html fragment``, listed in SECTIONS.

To add a section, write a function here (or in a sibling module) and add a
:class:`Section` to :data:`SECTIONS`; the page shell adds its heading, anchor and link.
A section whose file is missing says "none" instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from gristmill.io.writers import DECODES_JSON_TEXT
from gristmill.pipeline.run_reader import RunReader, rejected_samples
from gristmill.records import ID
from gristmill.report import charts
from gristmill.report.html import esc, kv, none, num, table
from gristmill.report import minhash as minhash_section
from gristmill.report import scores as scores_section
from gristmill.report import bias as bias_section
from gristmill.report import audit as audit_section
from gristmill.report import generation as generation_section
from gristmill.report import dialogue as dialogue_section
from gristmill.report import images as images_section

SAMPLES_PER_RULE = 5


@dataclass(frozen=True)
class Section:
    """One report section: its anchor, its heading and the function that renders its body."""

    id: str
    title: str
    render: Callable[[RunReader], str]


def header(run: RunReader) -> str:
    """The page header: run name, times, input files and totals."""
    inp, out = run.input, run.output
    paths = ", ".join(str(p) for p in inp.get("paths") or []) or "—"
    meta = [
        f"{esc(run.stats.get('started', '?'))} → {esc(run.stats.get('finished', '?'))}",
        f"{num(run.stats.get('seconds'))} s",
        f"input: {esc(paths)}",
        f"{num(inp.get('rows'))} rows read → {num(out.get('rows'))} rows out",
    ]
    return f"<h1>gristmill run: {esc(run.name)}</h1>" + '<div class="meta">' + " · ".join(meta) + "</div>"


def summary(run: RunReader) -> str:
    if not run.stats:
        return none("stats.json is missing or unreadable")
    inp, out = run.input, run.output
    splits = out.get("splits") or {}
    pairs = [
        ("run", esc(run.name)),
        ("recipe", esc(run.stats.get("recipe"))),
        ("started", esc(run.stats.get("started"))),
        ("finished", esc(run.stats.get("finished"))),
        ("total seconds", num(run.stats.get("seconds"))),
        ("workers", num(run.stats.get("workers", "—"))),
        ("input files", "<br>".join(esc(p) for p in inp.get("paths") or []) or "—"),
        ("input format", esc(inp.get("format"))),
        ("shards", num(inp.get("shards"))),
        ("rows read", num(inp.get("rows"))),
        ("quarantined", num(inp.get("quarantined"))),
        ("rows out", num(out.get("rows"))),
        ("splits", ", ".join(f"{esc(k)}: {num(v)}" for k, v in splits.items()) or "—"),
        ("output format", esc(out.get("format"))),
        ("output files", _file_list(run, out.get("files") or [])),
    ]
    json_columns = out.get("json_columns") or {}
    if json_columns:
        pairs.append(("columns stored as JSON text", json_text_note(json_columns, out.get("format"))))
    return kv(pairs)


def json_text_note(json_columns: dict[str, Any], fmt: Any) -> str:
    """The columns stored as JSON text, each with why, and what the output format makes of them."""
    items = "<br>".join(f"<code>{esc(name)}</code>: {esc(reason)}" for name, reason in json_columns.items())
    if fmt in DECODES_JSON_TEXT:
        how = f"their values fit no one column type; the {esc(fmt)} output holds them as they were in the input"
    else:
        how = (f"their values fit no one column type; each value in the {esc(fmt)} output is its JSON text "
               "(<code>json.loads</code> gives it back)")
    return f"{items}<br><span class=\"none\">{how}</span>"


def funnel(run: RunReader) -> str:
    steps = run.steps
    if not steps:
        return none("no steps recorded")
    start = run.input.get("rows", steps[0].get("rows_in", 0)) or 0
    labels = ["input"] + [str(s.get("step", s.get("op", "?"))) for s in steps]
    values = [start] + [s.get("rows_out") or 0 for s in steps]
    chart = charts.hbars(labels, values, title="Rows after each step")
    rows = [
        (
            s.get("step"),
            s.get("kind"),
            s.get("rows_in"),
            s.get("rows_out"),
            sum((s.get("dropped") or {}).values()),
            s.get("seconds"),
            s.get("rows_per_s"),
            "yes" if s.get("cached") else "no",
        )
        for s in steps
    ]
    return chart + table(["step", "kind", "rows in", "rows out", "dropped", "seconds", "rows/s", "cached"], rows)


def drops(run: RunReader) -> str:
    dropping = [s for s in run.steps if s.get("dropped")]
    if not dropping:
        return none("none: no step dropped rows")
    rules: dict[str, None] = {}
    for s in dropping:
        rules.update(dict.fromkeys(s["dropped"]))
    series = {str(s.get("step")): [s["dropped"].get(r, 0) for r in rules] for s in dropping}
    chart = charts.stacked_hbars(list(rules), series, title="Dropped rows by rule and step")
    rows = []
    for s in dropping:
        rows_in = s.get("rows_in") or 0
        for rule, count in sorted(s["dropped"].items(), key=lambda kv: -kv[1]):
            share = f"{100 * count / rows_in:.1f}%" if rows_in else "—"
            rows.append((s.get("step"), rule, count, share))
    return chart + table(["step", "rule", "rows dropped", "of rows in"], rows)


def samples(run: RunReader) -> str:
    files = run.rejected_files()
    if not files:
        return none("none: no rejected rows were written")
    expected = {str(s.get("step")): list((s.get("dropped") or {}).keys()) for s in run.steps}
    parts = []
    written = {step for step, _ in files}
    unwritten = [step for step, rules in expected.items() if rules and step not in written]
    if unwritten:
        parts.append(none("no rejected file for: " + ", ".join(unwritten)))
    for step, path in files:
        by_rule = rejected_samples(path, SAMPLES_PER_RULE, expected.get(step, ()))
        parts.append(f'<h3 id="samples-{esc(step)}">{esc(step)}</h3>')
        if not by_rule:
            parts.append(none("no rows"))
            continue
        columns = list(next(iter(by_rule.values()))[0].keys())
        headers = ["rule", *columns]
        text_cols = [i for i, c in enumerate(headers) if c not in ("rule", ID)]
        rows = [[rule] + [r.get(c) for c in columns] for rule, rs in by_rule.items() for r in rs]
        parts.append(table(headers, rows, text_cols=text_cols))
    return f"<p>Up to {SAMPLES_PER_RULE} rejected rows per rule and step; long values are cut.</p>" + "".join(parts)


def _skipped(run: RunReader) -> str:
    """Input records a web or document reader passed over (WARC request records, images, ...), by reason."""
    skipped = run.input.get("skipped") or {}
    if not skipped:
        return ""
    return (f"<p>{num(sum(skipped.values()))} input records were skipped, not quarantined: records the reader "
            "does not turn into rows.</p>" + table(["reason", "records"], sorted(skipped.items(), key=lambda kv: -kv[1])))


def quarantine(run: RunReader) -> str:
    return _quarantined(run) + _skipped(run)


def _quarantined(run: RunReader) -> str:
    q = run.quarantine
    counted = run.input.get("quarantined")
    if q.total == 0:
        if counted:
            by_reason = (run.input.get("quarantined_by_reason") or {}).items()
            return none(f"quarantine.jsonl is missing, but stats.json counts {counted:,} quarantined records") + (
                table(["rule", "records"], sorted(by_reason, key=lambda kv: -kv[1])) if by_reason else ""
            )
        return none("none: no input record was quarantined")
    parts = [f"<p>{num(q.total)} input records could not be read or did not fit their columns' types.</p>"]
    if isinstance(counted, int) and counted != q.total:
        parts.append(f"<p>Note: stats.json counts {num(counted)}.</p>")
    parts.append(table(["rule", "records"], q.by_rule.most_common()))
    parts.append(f"<h3>First {num(len(q.first))}</h3>")
    rows = [(e["source"], e["line"] if e.get("offset") is None else f"byte {e['offset']}", e["reason"], e["raw"])
            for e in q.first]
    parts.append(table(["source", "line", "reason", "raw"], rows, text_cols=(2, 3)))
    return "".join(parts)


def recipe(run: RunReader) -> str:
    text = run.recipe_text
    if text is None:
        return none("none: recipe.yaml is missing")
    return f"<pre>{esc(text)}</pre>"


def _file_list(run: RunReader, files: list[Any]) -> str:
    """Output files as links relative to the report (only existing plain relative paths), with sizes."""
    items = []
    for f in files:
        rel = PurePosixPath(str(f))
        path = run.run_dir / rel
        if not rel.is_absolute() and ".." not in rel.parts and path.is_file():
            items.append(f'<a href="{esc(rel)}">{esc(rel)}</a> ({_size(path.stat().st_size)})')
        else:
            items.append(esc(f))
    return "<br>".join(items) or "—"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"


SECTIONS: list[Section] = [
    Section("summary", "Summary", summary),
    Section("audit", "Audit", audit_section.render),
    Section("funnel", "Rows through the steps", funnel),
    Section("generation", "Generation", generation_section.render),
    Section("dialogues", "Dialogues", dialogue_section.render),
    Section("drops", "Drop reasons", drops),
    Section("scores", "Scores and thresholds", scores_section.render),
    Section("samples", "Samples of dropped rows", samples),
    Section("minhash", "Near-duplicates (MinHash)", minhash_section.render),
    Section("images", "Images", images_section.render),
    Section("bias", "Bias audit", bias_section.render),
    Section("quarantine", "Quarantine", quarantine),
    Section("recipe", "Resolved recipe", recipe),
]
