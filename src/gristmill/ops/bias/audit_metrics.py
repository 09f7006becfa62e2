"""The ``bias.*`` operators' part of the audit: gate metrics, a ``bias`` summary (with the figures before and
after a ``bias.rebalance`` step) and the dataset card's Bias section.

The metrics are measured on the ``bias.audit`` columns of the output rows (:mod:`gristmill.ops.bias.columns`;
they add up over rows), so they describe the data as written, after any rebalancing or later filtering:

* ``bias.gender.female_share``: female terms / (female + male terms), ``bias.female_terms`` and
  ``bias.male_terms`` summed over the output (null when there is no gendered term).
* ``bias.<axis>.representation_ratio``, one per axis of the shipped group list (gender, race_ethnicity,
  religion, age, nationality, disability, sexual_orientation): the term count of the least-mentioned group
  over that of the most-mentioned one, among the axis's groups the output mentions at all (1: all equally
  often; null when fewer than two of its groups are mentioned: a group never mentioned does not count, the
  summary names the groups that are).
* ``bias.gender.occupation_skew``: the largest ``|skew|`` of an occupation, ``bias.audit``'s gender skew
  ``log2((f / n_f) / (m / n_m))`` (``f``, ``m``: segments holding the occupation and a female / male term;
  ``n_f``, ``n_m``: segments holding a female / male term), over the occupations with ``f > 0``, ``m > 0``
  and ``f + m >= min_count`` (the ``bias.audit`` step's parameter); null when none qualifies.

A failed gate lists the output rows that push its metric the wrong way: the rows with the most male over
female terms (a share too low; the reverse for one too high), the rows with the most terms of the
most-mentioned group of the axis, or the rows pairing the most skewed occupation with its gender most often.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill import registry
from gristmill.audit.columns import OUTPUT, audit_output, floats, worst_rows
from gristmill.audit.markdown import num, params_text, summary_markdown, table
from gristmill.audit.metric import AuditMetric, AuditSection, CardText, Measure, recorded_param
from gristmill.ops.bias.columns import (COUNTERFACTUAL_OF, FEMALE, FEMALE_SEGMENTS, GROUP_MENTIONS, GROUPS, MALE,
                                        MALE_SEGMENTS, OCCUPATIONS_FEMALE, OCCUPATIONS_MALE)
from gristmill.ops.text.phrases import data_lines
from gristmill.pipeline.run_reader import RunReader, concat_tables
from gristmill.records import ID

if TYPE_CHECKING:  # the audit imports operators, never the other way
    from gristmill.audit.gates import Gate

__all__ = ["AXES", "BIAS_AUDIT", "BiasFigures", "FEMALE_SHARE", "OCCUPATION_SKEW", "figures_of", "ratio_metric"]

AUDIT_OP, REBALANCE_OP = "bias.audit", "bias.rebalance"
AXES: tuple[str, ...] = tuple(dict.fromkeys(r[0] for r in data_lines("groups_en.txt") if not r[0].startswith("{")))
FEMALE_SHARE = "bias.gender.female_share"
OCCUPATION_SKEW = "bias.gender.occupation_skew"


def ratio_metric(axis: str) -> str:
    """The name of an axis's representation ratio metric (``bias.religion.representation_ratio``)."""
    return f"bias.{axis}.representation_ratio"


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@dataclass
class BiasFigures:
    """The bias totals of some rows (from their ``bias.audit`` columns) and the metrics computed from them."""

    rows: int
    female: int | None  # None: the column is missing
    male: int | None
    mentions: dict[str, Counter] = field(default_factory=dict)  # axis -> group -> terms
    occupations: list[dict[str, Any]] = field(default_factory=list)  # those with a skew, largest |skew| first

    def female_share(self) -> float | None:
        if self.female is None or self.male is None or not self.female + self.male:
            return None
        return _r(self.female / (self.female + self.male))

    def ratio(self, axis: str) -> tuple[float | None, tuple[str, int] | None, tuple[str, int] | None]:
        """The axis's ratio, its least- and most-mentioned groups with their term counts."""
        groups = sorted(((g, n) for g, n in self.mentions.get(axis, Counter()).items() if n > 0),
                        key=lambda gn: (-gn[1], gn[0]))
        if len(groups) < 2:
            return None, None, groups[0] if groups else None
        return _r(groups[-1][1] / groups[0][1]), groups[-1], groups[0]

    def values(self) -> dict[str, float | None]:
        """Every metric's value, by name."""
        skew = self.occupations[0]["skew"] if self.occupations else None
        return {FEMALE_SHARE: self.female_share(), OCCUPATION_SKEW: None if skew is None else abs(skew),
                **{ratio_metric(a): self.ratio(a)[0] for a in AXES}}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: term totals, each axis's least and most mentioned groups, the skewed occupations."""
        axes = {}
        for axis in self.mentions:
            ratio, least, most = self.ratio(axis)
            axes[axis] = {"ratio": ratio, "least": list(least) if least else None, "most": list(most) if most else None,
                          "groups_mentioned": sum(1 for n in self.mentions[axis].values() if n > 0)}
        return {"rows": self.rows, "female_terms": self.female, "male_terms": self.male, "axes": axes,
                "occupations_by_skew": self.occupations[:5]}


def _total(t: pa.Table, column: str) -> int | None:
    return int(pc.sum(t.column(column)).as_py() or 0) if column in t.column_names else None


def _list_counts(t: pa.Table, column: str, weights: str | None = None) -> Counter:
    """Items of a list column counted over rows (each weighted by the aligned item of ``weights``)."""
    if column not in t.column_names or (weights and weights not in t.column_names) or not t.num_rows:
        return Counter()
    keys = pc.list_flatten(t.column(column))
    values = pc.list_flatten(t.column(weights)) if weights else pa.chunked_array([np.ones(len(keys), np.int64)])
    grouped = pa.table({"k": keys, "n": values}).group_by("k").aggregate([("n", "sum")])
    return Counter(dict(zip(grouped.column("k").to_pylist(), grouped.column("n_sum").to_pylist())))


def _row_counts(t: pa.Table, column: str, key: str, weights: str | None = None) -> np.ndarray:
    """Per row: how often ``key`` is in its list (each weighted by the aligned item of ``weights``)."""
    out = np.zeros(t.num_rows)
    if column not in t.column_names or not t.num_rows:
        return out
    arr = t.column(column).combine_chunks()
    parents = pc.list_parent_indices(arr).to_numpy()
    hit = pc.fill_null(pc.equal(pc.list_flatten(arr), key), False).to_numpy(zero_copy_only=False)
    w = (pc.list_flatten(t.column(weights).combine_chunks()).to_numpy(zero_copy_only=False).astype(float)
         if weights else np.ones(len(hit)))
    np.add.at(out, parents[hit], w[hit])
    return out


def figures_of(t: pa.Table, min_count: int = 5) -> BiasFigures:
    """The figures of the rows of ``t`` (its ``bias.audit`` columns; a missing column counts as unknown)."""
    mentions: dict[str, Counter] = {}
    for key, n in _list_counts(t, GROUPS, GROUP_MENTIONS).items():
        axis, _, group = str(key).partition(":")
        mentions.setdefault(axis, Counter())[group] += int(n)
    occupations = []
    nf, nm = _total(t, FEMALE_SEGMENTS), _total(t, MALE_SEGMENTS)
    if nf and nm:
        f_occ, m_occ = _list_counts(t, OCCUPATIONS_FEMALE), _list_counts(t, OCCUPATIONS_MALE)
        for occ in sorted(set(f_occ) & set(m_occ)):
            f, m = int(f_occ[occ]), int(m_occ[occ])
            if f + m >= min_count:
                occupations.append({"occupation": occ, "female": f, "male": m,
                                    "skew": _r(math.log2((f / nf) / (m / nm)))})
        occupations.sort(key=lambda o: (-abs(o["skew"]), o["occupation"]))
    return BiasFigures(t.num_rows, _total(t, FEMALE), _total(t, MALE), mentions, occupations)


# ---- the run's figures: the output, and the input of a bias.rebalance step -----------------------------------

_OUTPUT_FIGURES: weakref.WeakKeyDictionary[RunReader, BiasFigures] = weakref.WeakKeyDictionary()


def _min_count(run: RunReader) -> int:
    return int(recorded_param(run, AUDIT_OP, "min_count") or 5)


def output_figures(run: RunReader) -> BiasFigures:
    """The figures of the run's output rows (computed once per reader)."""
    if run not in _OUTPUT_FIGURES:
        _OUTPUT_FIGURES[run] = figures_of(audit_output(run), _min_count(run))
    return _OUTPUT_FIGURES[run]


def _step_input(run: RunReader, index: int) -> pa.Table | None:
    """The ``bias.*`` columns of the rows step ``index`` read (the previous step's committed shards, or the
    input's); None when they are no longer in the run's cache."""
    prev = [s for s in run.steps if s.get("index") == index - 1]
    if prev:
        folder: Path | None = run.step_dir(prev[0])
    else:
        inputs = sorted((run.run_dir / "cache").glob("input-*"))
        folder = inputs[0] if index == 0 and len(inputs) == 1 else None
    files = sorted(folder.glob("shard-*/data.parquet")) if folder is not None else []
    if not files:
        return None
    return concat_tables([pq.read_table(f, columns=[c for c in pq.read_schema(f).names
                                                    if c == ID or c.startswith("bias.")]) for f in files])


def rebalance_figures(run: RunReader) -> dict[str, Any] | None:
    """The metrics before the run's first ``bias.rebalance`` step (its input; without the counterfactual copies
    it chooses from, with ``strategy: counterfactual``) and after (the output), and what the step changed."""
    found = [(i, s) for i, s in enumerate(run.recipe_steps) if s.get("op") == REBALANCE_OP]
    if not found:
        return None
    index, step = found[0]
    params = step.get("params") or {}
    strategy = params.get("strategy") or registry.get(REBALANCE_OP).Params.model_fields["strategy"].default
    rows = _step_input(run, index)
    if rows is not None and strategy == "counterfactual" and COUNTERFACTUAL_OF in rows.column_names:
        rows = rows.filter(pc.is_null(rows.column(COUNTERFACTUAL_OF)))
    label = f"{index:02d}-{REBALANCE_OP}"
    summary = run.summary(label) or {}
    return {"step": label, "strategy": strategy,
            "before": figures_of(rows, _min_count(run)).values() if rows is not None else None,
            "after": output_figures(run).values(),
            "changed": {k: summary.get(k) for k in ("dropped", "added", "cost", "reached") if k in summary}}


# ---- metrics -------------------------------------------------------------------------------------------------

def _too_low(gate: Gate, measured: Any) -> bool:
    """Whether ``gate`` failed because its value is too low (else too high)."""
    if gate.op in (">=", ">"):
        return True
    if gate.op in ("<=", "<"):
        return False
    target = gate.value if isinstance(gate.value, (int, float)) else 0.5
    return measured is None or measured < target


def _worst(run: RunReader, name: str, gate: Gate, measured: Any) -> list[dict[str, Any]]:
    out, fig = audit_output(run), output_figures(run)
    where = [OUTPUT] * out.num_rows
    if name == FEMALE_SHARE:
        f, m = np.nan_to_num(floats(out, FEMALE)), np.nan_to_num(floats(out, MALE))
        key = m - f if _too_low(gate, measured) else f - m
        return worst_rows(out, key > 0, key, where, [FEMALE, MALE])
    if name == OCCUPATION_SKEW:
        if not fig.occupations:
            return []
        top = fig.occupations[0]
        key = _row_counts(out, OCCUPATIONS_FEMALE if top["skew"] > 0 else OCCUPATIONS_MALE, top["occupation"])
        rows = worst_rows(out, key > 0, key, where, [FEMALE, MALE])
        return [{**r, "occupation": top["occupation"]} for r in rows]
    axis = name.split(".")[1]
    _, least, most = fig.ratio(axis)
    group = (most if _too_low(gate, measured) else least) or most
    if group is None:
        return []
    key = _row_counts(out, GROUPS, f"{axis}:{group[0]}", GROUP_MENTIONS)
    return [{**r, "group": group[0]} for r in worst_rows(out, key > 0, key, where)]


def _measure(run: RunReader, name: str) -> Measure:
    if run.last_step(AUDIT_OP) is None:
        return Measure(None, note=f"no {AUDIT_OP} step ran")
    fig = output_figures(run)
    value = fig.values()[name]
    note = None
    if name == FEMALE_SHARE and fig.female is not None:
        note = f"{fig.female:,} female / {fig.male:,} male terms"
    elif name == OCCUPATION_SKEW:
        top = fig.occupations[0] if fig.occupations else None
        note = (f"{top['occupation']} {top['skew']:+.2f} (f {top['female']}, m {top['male']})" if top else
                f"no occupation shares min_count ({_min_count(run)}) segments with both genders")
    elif name.endswith(".representation_ratio"):
        _, least, most = fig.ratio(name.split(".")[1])
        note = (f"{least[0]} {least[1]:,} / {most[0]} {most[1]:,}" if least and most
                else "fewer than two groups mentioned")
    if fig.female is None:
        note = f"the output has no {AUDIT_OP} columns"
    return Measure(value, note=note, rows=lambda gate: _worst(run, name, gate, value))


def _figures(run: RunReader) -> dict[str, Any]:
    if run.last_step(AUDIT_OP) is None:
        return {}
    out: dict[str, Any] = {"output": output_figures(run).summary()}
    rebalance = rebalance_figures(run)
    if rebalance is not None:
        out["rebalance"] = rebalance
    return out


# ---- the card ------------------------------------------------------------------------------------------------

def _figure(summary: dict[str, Any]) -> str:
    """A column's summary (:func:`gristmill.audit.metrics.summarize_column`) in a few words."""
    if "top" in summary and summary["top"]:
        return ", ".join(f"{k} {num(v)}" for k, v in list(summary["top"].items())[:8])
    if summary.get("mean") is not None:
        return f"mean {num(summary['mean'])}, rows > 0: {num(summary.get('nonzero'))}"
    if "true" in summary:
        return f"true in {num(summary['true'])} rows"
    return "—"


def _metrics_table(summary: dict[str, Any]) -> list[str]:
    rebalance = summary.get("rebalance")
    names = [n for n in (m.name for m in BIAS_AUDIT.metrics) if summary.get(n) is not None
             or (rebalance and (rebalance.get("before") or {}).get(n) is not None)]
    if not names:
        return []
    if not rebalance:
        return ["\n" + table(["metric (output)", "value"], [[f"`{n}`", num(summary.get(n))] for n in names])]
    before = rebalance.get("before") or {}
    lines = [f"\n### Before and after rebalancing (`{REBALANCE_OP}`, step {int(rebalance['step'][:2])}, "
             f"strategy {rebalance.get('strategy')})\n",
             table(["metric", "before (the step's input)", "after (the output)"],
                   [[f"`{n}`", num(before.get(n)), num(summary.get(n))] for n in names])]
    changed = rebalance.get("changed") or {}
    dropped, added = changed.get("dropped") or {}, changed.get("added") or {}
    if dropped or added:
        lines.append(f"\nRows dropped {num(dropped.get('rows'))} ({num(dropped.get('chars'))} characters), "
                     f"rows added {num(added.get('rows'))} ({num(added.get('chars'))} characters); cost: "
                     + ", ".join(f"{k} {num(v)}" for k, v in (changed.get("cost") or {}).items()) + ".")
    return lines


def _card(summary: dict[str, Any] | None, run: RunReader) -> CardText:
    if not summary:
        return None, ["Representation of demographic groups was not measured."]
    lines = [f"- `{s['op']}` (step {s['index']}): {params_text(s['params']) or 'defaults'}"
             for s in summary.get("steps") or []]
    lines += _metrics_table(summary)
    rows = [[f"`{col}`", _figure(summ)] for col, summ in (summary.get("columns") or {}).items()
            if col != GROUP_MENTIONS]  # counts aligned with bias.groups: their values alone say nothing
    if rows:
        lines.append("\n" + table(["column (output rows)", "figures"], rows))
    for s in summary.get("steps") or []:
        label = f"{s['index']:02d}-{s['op']}"
        step_summary = run.summary(label)
        if step_summary is not None:
            lines.append(f"\n### {s['op']} (step {s['index']}): `summaries/{label}.json`\n")
            lines += summary_markdown(step_summary)
    extra = sorted(p.relative_to(run.run_dir).as_posix() for p in run.run_dir.glob("bias*/**/*") if p.is_file())
    if extra:
        lines.append("\nBias step outputs in the run directory: " + ", ".join(f"`{e}`" for e in extra[:10]) + ".")
    limits = ["Bias figures count group terms from fixed lists: they measure mentions and co-occurrence, not how "
              "groups are portrayed, and miss groups the lists lack."]
    if summary.get("rebalance"):
        limits.append("Rebalancing moves term counts toward a target share by dropping, repeating or adding rows: "
                      "it does not change how groups are portrayed; repeated rows are easier to memorise, and "
                      "counterfactual copies can read unnaturally (swapped names, a misread 'her').")
    return "\n".join(lines), limits


_DOCS = {
    FEMALE_SHARE: "female terms / (female + male terms) over the output rows (bias.audit's bias.female_terms and "
                  "bias.male_terms, so after any rebalancing); null without gendered terms",
    OCCUPATION_SKEW: "the largest |log2 gender skew| of an occupation (bias.audit's skew) among occupations sharing "
                     "segments with both female and male terms, the bias.audit step's min_count or more, in the output",
}
BIAS_AUDIT = AuditSection(
    "bias",
    metrics=(AuditMetric(FEMALE_SHARE, _DOCS[FEMALE_SHARE], _measure),
             AuditMetric(OCCUPATION_SKEW, _DOCS[OCCUPATION_SKEW], _measure),
             *(AuditMetric(ratio_metric(a), f"least / most term count among the {a} groups the output mentions "
                           "(bias.audit's bias.group_mentions); null with fewer than two mentioned", _measure)
               for a in AXES)),
    figures=_figures, order=30, card_title="Bias", card=_card, card_empty="No bias step ran.")
