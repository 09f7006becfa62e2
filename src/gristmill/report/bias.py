"""Report section for ``bias.audit`` steps: group mention shares, gender by occupation, sentiment PMI.

Reads ``summaries/<step>.json``, the run-level summary a ``bias.audit`` step's fit
computed over every row it saw (see :mod:`gristmill.ops.bias` for the definitions), for
each such step in ``stats.json``. Per axis: a bar chart and a table of mentions per group
with its share of the axis and its commonest terms. Gender: female and male term counts,
and per occupation the segments mentioning it with female and with male terms, the female
share raw and adjusted for how often each gender is mentioned overall, the log2 skew and
the U.S. share of women where known. Sentiment: per group, the share of its segments with
positive and negative words and their PMI, and the sentiment words most associated with it.
"""

from __future__ import annotations

from typing import Any

from gristmill.pipeline.run_reader import RunReader
from gristmill.report import charts
from gristmill.report.html import esc, none, num, table

OP = "bias.audit"
TOP_GROUPS = 15
TOP_OCCUPATIONS = 25
CHART_OCCUPATIONS = 20


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _f(x: Any, digits: int = 2) -> str:
    return "—" if x is None else f"{x:+.{digits}f}"


def render(run: RunReader) -> str:
    steps = [s for s in run.steps if s.get("op") == OP]
    rebalance = _rebalance(run)
    if not steps and not rebalance:
        return none(f"none: no {OP} step")
    return "".join(_step(run, s) for s in steps) + rebalance


def _rebalance(run: RunReader) -> str:
    """The gate metrics before and after the first ``bias.rebalance`` step (``audit.json``'s bias summary:
    before = the step's input, after = the output) and what the step dropped and added per group."""
    figs = (((run.audit or {}).get("summaries") or {}).get("bias") or {}).get("rebalance")
    if not figs:
        return ""
    before, after = figs.get("before") or {}, figs.get("after") or {}
    s = run.summary(str(figs.get("step"))) or {}
    step = esc(figs.get("step"))
    parts = [f'<h3 id="bias-rebalance">Rebalancing: {step} (strategy {esc(figs.get("strategy"))})</h3>']
    if s:
        d, a, cost = s.get("dropped") or {}, s.get("added") or {}, s.get("cost") or {}
        parts.append(f"<p>{esc(s.get('group'))} share of {esc(s.get('axis'))} terms: {_pct(s.get('share_before'))} "
                     f"→ {_pct(s.get('share_after'))} (target {_pct(s.get('target'))}, "
                     f"{'reached' if s.get('reached') else 'not reached'}). Rows dropped {num(d.get('rows'))}, "
                     f"added {num(a.get('rows'))}; characters dropped {num(d.get('chars'))}, added "
                     f"{num(a.get('chars'))} ({_pct((cost.get('chars_dropped_pct') or 0) / 100)} and "
                     f"{_pct((cost.get('chars_added_pct') or 0) / 100)} of the input's). "
                     f'Data: <a href="summaries/{step}.json">summaries/{step}.json</a>.'
                     + (f" {esc(s['note'])}." if s.get("note") else "") + "</p>")
        was, now = (s.get("before") or {}).get("mentions", {}), (s.get("after") or {}).get("mentions", {})
        d_rows, a_rows = d.get("rows_by_majority_group", {}), a.get("rows_by_majority_group", {})
        groups = list(dict.fromkeys([*was, *d.get("mentions", {}), *a.get("mentions", {})]))
        parts.append(table(["group", "terms before", "dropped", "added", "after",
                            "rows dropped (majority group)", "rows added (majority group)"],
                           [(g, was.get(g, 0), d.get("mentions", {}).get(g, 0), a.get("mentions", {}).get(g, 0),
                             now.get(g, 0), d_rows.get(g, 0), a_rows.get(g, 0)) for g in groups]))
    parts.append(table(["gate metric", "before (the step's input)", "after (the output)"],
                       [(k, "—" if before.get(k) is None else num(before[k], 4), "—" if v is None else num(v, 4))
                        for k, v in after.items()]))
    return "".join(parts)


def _step(run: RunReader, step: dict[str, Any]) -> str:
    label = str(step.get("step"))
    head = f'<h3 id="bias-{esc(label)}">{esc(label)}</h3>'
    summary = run.summary(label)
    if summary is None:
        return head + none(f"summaries/{label}.json is missing or unreadable")
    rows, mentioned = summary.get("rows") or 0, summary.get("rows_with_mentions") or 0
    parts = [head, f"<p>{num(rows)} rows ({num(summary.get('segments'))} sentence segments); "
                   f"{num(mentioned)} ({_pct(mentioned / rows if rows else None)}) mention a demographic group. "
                   f"Counts are of terms from fixed lists: they measure mentions and co-occurrence, not how a "
                   f'group is portrayed. Data: <a href="summaries/{esc(label)}.json">summaries/{esc(label)}.json</a>.</p>']
    parts.append(_axes(summary))
    parts.append(_gender(summary))
    parts.append(_sentiment(summary))
    return "".join(parts)


def _axes(summary: dict[str, Any]) -> str:
    parts = ["<h4>Mentions per group</h4>"]
    for axis, data in (summary.get("axes") or {}).items():
        groups = [g for g in data.get("groups") or [] if g.get("mentions")]
        title = f"{axis}: {num(data.get('mentions'))} mentions in {num(data.get('rows'))} rows"
        if not groups:
            parts.append(f"<p>{esc(axis)}: no mentions.</p>")
            continue
        shown = groups[:TOP_GROUPS]
        parts.append(charts.hbars([g["group"] for g in shown], [g["mentions"] for g in shown], title=title,
                                  xlabel="mentions"))
        parts.append(table(["group", "mentions", "share of axis", "rows", "segments", "commonest terms"],
                           [(g["group"], g["mentions"], _pct(g.get("share")), g.get("rows"), g.get("segments"),
                             ", ".join(f"{t} ({n:,})" for t, n in g.get("top_terms") or []))
                            for g in groups], text_cols=(5,)))
    return "".join(parts)


def _gender(summary: dict[str, Any]) -> str:
    g = summary.get("gender") or {}
    parts = ["<h4>Gender and occupations</h4>",
             f"<p>Female terms {num(g.get('female_terms'))}, male terms {num(g.get('male_terms'))}: "
             f"female share {_pct(g.get('female_share'))} of gendered terms. Segments with female terms "
             f"{num(g.get('segments_female'))}, with male terms {num(g.get('segments_male'))}.</p>"]
    occs = [o for o in summary.get("occupations") or [] if o.get("segments")]
    if not occs:
        return "".join(parts) + none("no occupation was mentioned")
    charted = [o for o in occs if o.get("female") or o.get("male")][:CHART_OCCUPATIONS]
    if charted:
        parts.append(charts.stacked_hbars([o["occupation"] for o in charted],
                                          {"with female terms": [o["female"] for o in charted],
                                           "with male terms": [o["male"] for o in charted]},
                                          title="Segments mentioning an occupation, by gendered terms beside it",
                                          xlabel="segments"))
    parts.append("<p>Adjusted share: the female share had both genders been mentioned equally often overall "
                 "(P(occupation | female segment) against P(occupation | male segment)); skew: log2 of that "
                 "ratio, PMI(female) − PMI(male) (0: no skew, +1: twice as likely beside female terms). "
                 "U.S. women: the share of women in the occupation in U.S. labor statistics, where known "
                 "(WinoBias, Zhao et al. 2018).</p>")
    parts.append(table(["occupation", "segments", "with female", "with male", "female share", "adjusted",
                        "skew (log2)", "U.S. women"],
                       [(o["occupation"], o["segments"], o["female"], o["male"], _pct(o.get("female_share")),
                         _pct(o.get("female_share_adjusted")), _f(o.get("skew")),
                         "—" if o.get("bls_female_pct") is None else f"{o['bls_female_pct']:.0f}%")
                        for o in occs[:TOP_OCCUPATIONS]]))
    return "".join(parts)


def _sentiment(summary: dict[str, Any]) -> str:
    s = summary.get("sentiment") or {}
    groups = s.get("groups") or []
    parts = ["<h4>Sentiment words beside each group</h4>"]
    if not groups:
        return "".join(parts) + none("no group was mentioned")
    base_neg = s.get("negative_share")
    shown = sorted(groups, key=lambda g: -g["segments"])[:TOP_GROUPS * 2]
    parts.append(charts.hbars([f"{g['axis']}:{g['group']}" for g in shown],
                              [round(100 * (g.get("negative_share") or 0), 1) for g in shown],
                              title=f"Segments with a negative word, % (all segments: {_pct(base_neg)})",
                              xlabel="% of the group's segments"))
    parts.append(f"<p>All segments: {_pct(s.get('positive_share'))} hold a positive word, "
                 f"{_pct(base_neg)} a negative one. PMI: log2 of how much more often than chance a group's "
                 f"segments hold such a word (0: as often as all segments).</p>")
    parts.append(table(["group", "segments", "with positive", "with negative", "PMI positive", "PMI negative"],
                       [(f"{g['axis']}:{g['group']}", g["segments"], _pct(g.get("positive_share")),
                         _pct(g.get("negative_share")), _f(g.get("pmi_positive")), _f(g.get("pmi_negative")))
                        for g in shown]))
    top = s.get("top_words") or {}
    if top:
        parts.append(f"<p>Sentiment words most associated with each group (highest PMI, at least "
                     f"{num(summary.get('min_count'))} shared segments):</p>")
        parts.append(table(["group", "words (PMI, segments)"],
                           [(key, ", ".join(f"{w} ({p:+.2f}, {n:,})" for w, p, n in words))
                            for key, words in top.items()], text_cols=(1,)))
    return "".join(parts)
