"""The review queues of a pipeline run, built from its files through :class:`~gristmill.pipeline.run_reader.RunReader`.

Queues (id: what is in it, its default order):

* ``dropped:<rule>``: every row a step dropped, one queue per rule (file order); rows ``review.apply``
  dropped are left out (people decided them);
* ``margin``: rows whose score lies within ``margin`` x (the score's range) of a threshold of a rule
  recorded in ``stats.json`` (kept or dropped; nearest first);
* ``pii``: rows with PII spans (``pii.spans``, offsets into the current text) or redactions (most first);
* ``toxicity``: rows over the toxicity rule's threshold or with listed bad words (highest first);
* ``copyright``: rows with a span copied from a protected corpus (longest first);
* ``contamination``: rows sharing n-grams with a benchmark (most first);
* ``near_duplicates``: rows ``dedup.minhash`` / ``dedup.semantic`` dropped, each beside the row it
  duplicates, differences marked (file order);
* ``judge``: rows with a ``judge.score`` (lowest first);
* ``quarantine``: records of ``quarantine.jsonl`` (file order);
* ``sample``: the acceptance sample, a seeded random sample of the kept rows drawn once and stored with
  the decisions (:meth:`gristmill.review.store.Store.sample`);
* ``queue:<name>``: **the extension point**. Any step may write a ``review.queue`` column (a queue name,
  or a list of names; null: none), with ``review.priority`` (a number: higher is reviewed first) and
  ``review.note`` (text shown to the reviewer); every row with one is queued there. Model-assisted
  annotation puts its low-confidence rows in a queue this way.

Rows are keyed by their ``id`` (quarantined records by ``quarantine:<source>:<line>``); a row in several
queues is one row, and a decision on it counts in all of them. Output rows are read in two passes: the
columns that decide membership first, then whole rows only for the queued ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.pipeline.run_reader import RunReader, rule_of
from gristmill.records import ID, REASON, Reason
from gristmill.review.content import LABEL, TAGS, content_hash, display_text, jsonable

__all__ = ["DUPLICATE_OF", "NEAR_DUPLICATE_RULES", "OUTPUT", "QUARANTINE", "QUEUE_TITLES", "REVIEW_RULE", "Item",
           "QueueRow", "Queues", "build_queues", "draw_sample", "queue_title"]

OUTPUT, QUARANTINE = "output", "quarantine"
REVIEW_RULE = "review"  # the rule of rows review.apply dropped
DUPLICATE_OF = "_duplicate_of"
NEAR_DUPLICATE_RULES = ("near_duplicate", "semantic_duplicate")
CUSTOM_QUEUE, CUSTOM_PRIORITY, CUSTOM_NOTE = "review.queue", "review.priority", "review.note"

QUEUE_TITLES = {"margin": "near a threshold", "pii": "PII detections", "toxicity": "toxicity hits",
                "copyright": "copyright hits", "contamination": "contamination hits",
                "near_duplicates": "near-duplicates", "judge": "judge scores", "quarantine": "quarantined input",
                "sample": "acceptance sample"}
FLAG_COLUMNS = ("pii.spans", "pii.count", "pii.redacted", "toxicity.score", "toxicity.badword_count",
                "toxicity.badwords", "copyright.longest_span", "copyright.source", "decontam.benchmark",
                "decontam.item", "decontam.overlap", "judge.score", CUSTOM_QUEUE, CUSTOM_PRIORITY, CUSTOM_NOTE)


def queue_title(queue: str) -> str:
    """A queue's name for people (``dropped:min_words`` -> ``dropped · min_words``)."""
    if queue.startswith("dropped:"):
        return f"dropped · {queue[8:]}"
    if queue.startswith("queue:"):
        return f"queue · {queue[6:]}"
    return QUEUE_TITLES.get(queue, queue)


@dataclass
class QueueRow:
    """A row as the reviewer sees it: where it is, its content hash, its display text and every column."""

    key: str
    where: str
    hash: str
    text: str
    fields: dict[str, Any]
    source: str | None = None


@dataclass
class Item:
    """A row's place in one queue: its score there, the rule or flag, a note, extra data and the default order."""

    queue: str
    key: str
    score: float | None = None
    rule: str | None = None
    note: str | None = None
    extra: dict[str, Any] | None = None
    order: float = 0.0


@dataclass
class Queues:
    """The queued rows by key, their queue items, label and tag values seen, and the kept rows' count."""

    rows: dict[str, QueueRow] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    output_rows: int = 0
    output_keys: list[str] = field(default_factory=list)
    sample: list[str] = field(default_factory=list)


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return f if f == f else None
    return None


def _rule_bound(run: RunReader, op: str, name: str, default: float | None) -> float | None:
    for r in run.step_rules(op):
        if r.get("name") == name and r.get("max") is not None:
            return float(r["max"])
    return default


def _flags(row: Mapping[str, Any], thresholds: dict[str, float | None]) -> list[Item]:
    """The flag queues ``row`` belongs to (pii, toxicity, copyright, contamination, judge, custom)."""
    key = str(row.get(ID))
    items: list[Item] = []
    found = row.get("pii.spans")
    spans: list[Any] = found if isinstance(found, list) else []
    redacted = _num(row.get("pii.redacted")) or 0
    count = len(spans) if "pii.spans" in row else (_num(row.get("pii.count")) or 0)
    if count or redacted:
        kinds = sorted({str(s.get("type")) for s in spans if isinstance(s, Mapping)})
        note = f"{int(count)} span(s){': ' + ', '.join(kinds) if kinds else ''}; {int(redacted)} redacted"
        items.append(Item("pii", key, float(count + redacted), "pii", note, {"spans": spans}, -(count + redacted)))
    tox = _num(row.get("toxicity.score"))
    bad = _num(row.get("toxicity.badword_count")) or 0
    limit = thresholds.get("toxicity")
    if tox is not None and ((limit is not None and tox > limit) or bad):
        words = row.get("toxicity.badwords") or []
        items.append(Item("toxicity", key, tox, "toxicity", f"score {tox:.3g}" + (f"; words: {', '.join(map(str, words))}"
                                                                                  if words else ""), None, -tox))
    span = _num(row.get("copyright.longest_span"))
    if row.get("copyright.source") or (span and thresholds.get("copyright") is not None
                                       and span > (thresholds["copyright"] or 0)):
        items.append(Item("copyright", key, span, "copyright", f"longest copied span {int(span or 0)} words from "
                           f"{row.get('copyright.source')}", None, -(span or 0)))
    if row.get("decontam.benchmark"):
        overlap = _num(row.get("decontam.overlap")) or 0
        items.append(Item("contamination", key, overlap, "contamination",
                          f"{row['decontam.benchmark']} item {row.get('decontam.item')}: {int(overlap)} shared n-grams",
                          None, -overlap))
    judge = _num(row.get("judge.score"))
    if judge is not None:
        items.append(Item("judge", key, judge, "judge", f"judge score {judge:.3g}", None, judge))
    custom = row.get(CUSTOM_QUEUE)
    names = [custom] if isinstance(custom, str) else [c for c in custom if isinstance(c, str)] \
        if isinstance(custom, list) else []
    priority = _num(row.get(CUSTOM_PRIORITY))
    for name in names:
        if name:
            told = row.get(CUSTOM_NOTE)
            items.append(Item(f"queue:{name}", key, priority, name, str(told) if told else None, None, -(priority or 0)))
    return items


def _snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every column of ``row`` but the pipeline's internal ones (``_*``, except the reason and duplicate link)."""
    return {k: jsonable(v) for k, v in row.items() if not k.startswith("_") or k in (REASON, DUPLICATE_OF)}


def _queue_row(row: Mapping[str, Any], where: str) -> QueueRow:
    fields = _snapshot(row)
    return QueueRow(str(row.get(ID)), where, content_hash(row), display_text(row), fields,
                    None if row.get("source") is None else str(row.get("source")))


def _output_batches(run: RunReader, columns: list[str] | None) -> Iterator[pa.Table]:
    """The output rows, file by file, with ``columns`` (None: all of them)."""
    if run.output_files:
        for f in run.output_files:  # ParquetFile, not read_table: that one imports pyarrow.dataset (and pandas)
            pf = pq.ParquetFile(f)
            names = pf.schema_arrow.names
            yield pf.read(columns=None if columns is None else [c for c in columns if c in names])
        return
    rows = [r if columns is None else {k: r.get(k) for k in columns if k in r} for r in run.jsonl_records()]
    if rows:
        yield pa.Table.from_pylist([{k: jsonable(v) for k, v in r.items()} for r in rows])


def _take(table: pa.Table, indices: list[int]) -> Iterator[dict[str, Any]]:
    """The rows at ``indices`` (ascending) as dicts, read a run of consecutive rows at a time (slices, not
    ``take``: every pyarrow.compute call imports pandas, seconds on a busy machine)."""
    start = 0
    while start < len(indices):
        end = start
        while end + 1 < len(indices) and indices[end + 1] == indices[end] + 1:
            end += 1
        yield from table.slice(indices[start], end - start + 1).to_pylist()
        start = end + 1


def _rank(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big")


def draw_sample(keys: list[str], size: int, seed: int) -> list[str]:
    """``size`` of ``keys`` chosen at random (seeded): those with the smallest SHA-256 of ``seed:key``, in that order."""
    return sorted(keys, key=lambda k: _rank(seed, k))[:max(0, size)]


def _margin_items(run: RunReader, margin: float) -> list[Item]:
    """Rows within ``margin`` x the score's range of a recorded rule's bound (both sides of it)."""
    items: list[Item] = []
    for step in run.steps:
        label, rules = str(step.get("step")), [r for r in step.get("rules") or [] if isinstance(r, dict)]
        path = run.scores_file(label)
        if not rules or not path.is_file() or margin <= 0:
            continue
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        for r in rules:
            col = r.get("column")
            if col not in names:
                continue
            t = pf.read(columns=[ID, col, *(["_kept"] if "_kept" in names else [])])
            values = [_num(v) for v in t.column(col).to_pylist()]  # (pyarrow.compute would import pandas)
            present = [v for v in values if v is not None]
            lo, hi = (min(present), max(present)) if present else (None, None)
            if lo is None or hi is None or hi <= lo:
                continue
            width = margin * (hi - lo)
            kept = t.column("_kept").to_pylist() if "_kept" in names else [None] * t.num_rows
            for bound_name in ("min", "max"):
                bound = r.get(bound_name)
                if bound is None:
                    continue
                for rid, v, k in zip(t.column(ID).to_pylist(), values, kept):
                    if v is None or abs(v - bound) > width:
                        continue
                    side = "" if k is None else " (kept)" if k else " (dropped)"
                    items.append(Item("margin", str(rid), v, str(r.get("name")),
                                      f"{col} = {v:.4g}, {bound_name} {bound:g} at {label}{side}",
                                      {"bound": bound, "column": col, "step": label}, abs(v - bound) / (hi - lo)))
    return items


def build_queues(run: RunReader, margin: float = 0.05, sample: list[str] | None = None, draw: int = 0,
                 seed: int = 0) -> Queues:
    """Every queue of the run (see the module doc). ``sample``: the acceptance sample's keys; when it is empty
    and ``draw`` > 0, ``draw`` kept rows are drawn with ``seed`` (:func:`draw_sample`) and returned in
    :attr:`Queues.sample` for the caller to store."""
    q = Queues()
    thresholds = {"toxicity": _rule_bound(run, "toxicity.score", "toxicity", 0.9 if run.last_step("toxicity.score")
                                          else None),
                  "copyright": _rule_bound(run, "copyright.overlap", "copyright_span", None)}
    items: list[Item] = []
    rule_columns = {str(s.get("step")): {str(r.get("name")): str(r.get("column")) for r in s.get("rules") or []
                                         if isinstance(r, dict)} for s in run.steps}
    # rejected rows: all of them are queued (by rule), whole rows
    for label, path in run.rejected_files():
        pf = pq.ParquetFile(path)
        offset = 0
        for batch in pf.iter_batches(batch_size=8192):
            for i, row in enumerate(batch.to_pylist()):
                key = str(row.get(ID))
                if key not in q.rows:
                    q.rows[key] = _queue_row(row, label)
                items += _flags(row, thresholds)  # (also for rows review.apply dropped: the figures stay the same)
                reason = Reason.parse(row.get(REASON))
                if reason.rule == REVIEW_RULE:
                    continue
                column = rule_columns.get(label, {}).get(reason.rule)
                score = None if column is None else _num(row.get(column))
                items.append(Item(f"dropped:{reason.rule}", key, score, reason.rule, reason.detail, {"step": label},
                                  offset + i))
                if reason.rule in NEAR_DUPLICATE_RULES and row.get(DUPLICATE_OF):
                    items.append(Item("near_duplicates", key, None, reason.rule, reason.detail,
                                      {"partner": str(row[DUPLICATE_OF]), "step": label}, offset + i))
            offset += batch.num_rows
    # output rows: membership from a few columns, then whole rows for the queued ones
    wanted: set[str] = set()
    for table in _output_batches(run, [ID, *FLAG_COLUMNS]):
        cols = table.column_names
        data = {c: table.column(c).to_pylist() for c in cols}
        for i in range(table.num_rows):
            row = {c: data[c][i] for c in cols}
            key = str(row.get(ID))
            q.output_keys.append(key)
            found = _flags(row, thresholds)
            if found:
                items += found
                wanted.add(key)
    q.output_rows = len(q.output_keys)
    margin_items = _margin_items(run, margin)
    sample_keys = list(sample or []) or draw_sample(q.output_keys, draw, seed)
    q.sample = sample_keys
    output_set = set(q.output_keys)
    wanted |= {i.key for i in margin_items if i.key in output_set} | {k for k in sample_keys if k in output_set}
    wanted |= {str(i.extra["partner"]) for i in items if i.queue == "near_duplicates" and i.extra} & output_set
    if wanted:
        for table in _output_batches(run, None):
            if ID not in table.column_names:
                continue
            ids = [str(k) for k in table.column(ID).to_pylist()]
            for row in _take(table, [i for i, k in enumerate(ids) if k in wanted]):
                q.rows[str(row.get(ID))] = _queue_row(row, OUTPUT)  # the output's version of a restored row wins
    items += [i for i in margin_items if i.key in q.rows]
    items += [Item("sample", k, None, "sample", None, None, rank) for rank, k in enumerate(sample_keys) if k in q.rows]
    # quarantined input
    qpath = run.run_dir / "quarantine.jsonl"
    if qpath.is_file():
        with qpath.open("r", encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = None
                if not isinstance(entry, dict):
                    entry = {"source": None, "line": n + 1, "reason": "unreadable entry", "raw": line.rstrip("\n")}
                key = f"quarantine:{entry.get('source')}:{entry.get('line')}"
                fields = {"id": key, **{k: jsonable(v) for k, v in entry.items()}}
                q.rows[key] = QueueRow(key, QUARANTINE, content_hash({"text": str(entry.get("raw"))}),
                                       str(entry.get("raw") or "")[:4000], fields, str(entry.get("source")))
                why = str(entry.get("reason") or "")
                items.append(Item(QUARANTINE, key, None, rule_of(why), why, None, n))
    q.items = [i for i in items if i.key in q.rows]
    q.labels = sorted({str(r.fields[LABEL]) for r in q.rows.values() if r.fields.get(LABEL) is not None})[:200]
    q.tags = sorted({str(t) for r in q.rows.values() if isinstance(r.fields.get(TAGS), list)
                     for t in r.fields[TAGS]})[:200]
    return q
