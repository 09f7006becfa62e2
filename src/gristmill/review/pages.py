"""Queries over the review index: the queue list, a page of a queue, one item, and every item a filter matches.

A :class:`Filter` is what the page's filter bar holds: queue, status for the reviewer (``todo``: not
decided by them, not skipped, not yet complete; ``skipped``; ``mine``: they gave a verdict; ``done``:
complete; ``sent_back``; ``open``: not complete; ``all``), rule, where the row is (``output`` or
``dropped``), score range, text search (FTS5: every word must occur) and sort (``order``: the queue's
own, ``score_asc``, ``score_desc``). A page is a ``LIMIT`` / ``OFFSET`` over the queue's index in that
order; :func:`matching` returns every item the filter matches, for bulk actions.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from gristmill.review.content import LABEL, TAGS, TOKENS, editable_fields, word_diff
from gristmill.review.index import ReviewIndex
from gristmill.review.queues import queue_title

__all__ = ["STATUSES", "SORTS", "Filter", "item_detail", "matching", "page", "queue_list"]

STATUSES = ("todo", "skipped", "mine", "done", "sent_back", "open", "all")
SORTS = ("order", "score_asc", "score_desc")
MAX_PAGE = 200


@dataclass(frozen=True)
class Filter:
    """What selects a queue's items (see the module doc)."""

    queue: str
    status: str = "todo"
    rule: str | None = None
    where: str | None = None
    q: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    sort: str = "order"

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        if self.where not in (None, "", "output", "dropped"):
            raise ValueError("where must be output or dropped")


def _fts_query(text: str) -> str | None:
    """The words of ``text`` as an FTS5 query of quoted terms (every one must occur); None when it has none."""
    words = re.findall(r"\w+", text)
    return " ".join(f'"{w}"' for w in words[:20]) or None


def _where(f: Filter, reviewer: str, per_item: int) -> tuple[str, list[Any]]:
    clauses: list[str] = ["i.queue = ?"]
    args: list[Any] = [f.queue]
    status = {
        "todo": "coalesce(s.n_final, 0) < ? AND m.rid IS NULL",
        "skipped": "m.skipped = 1 AND m.action IS NULL",
        "mine": "m.action IS NOT NULL",
        "done": "coalesce(s.n_final, 0) >= ?",
        "sent_back": "s.sent_back IS NOT NULL",
        "open": "coalesce(s.n_final, 0) < ?",
        "all": "",
    }[f.status]
    if status:
        clauses.append(status)
        args += [per_item] * status.count("?")
    if f.rule:
        clauses.append("i.rule = ?")
        args.append(f.rule)
    if f.where == "output":
        clauses.append("r.where_ = 'output'")
    elif f.where == "dropped":
        clauses.append("r.where_ NOT IN ('output', 'quarantine')")
    if f.min_score is not None:
        clauses.append("i.score >= ?")
        args.append(f.min_score)
    if f.max_score is not None:
        clauses.append("i.score <= ?")
        args.append(f.max_score)
    query = _fts_query(f.q or "")
    if query:
        clauses.append("i.rid IN (SELECT rowid FROM rows_fts WHERE rows_fts MATCH ?)")
        args.append(query)
    elif f.q and f.q.strip():
        clauses.append("instr(lower(r.text), lower(?)) > 0")
        args.append(f.q.strip())
    return " AND ".join(clauses), [reviewer, *args]


_FROM = ("FROM items i JOIN rows r ON r.rid = i.rid LEFT JOIN state s ON s.rid = i.rid "
         "LEFT JOIN mine m ON m.rid = i.rid AND m.reviewer = ?")
# plain column orders, so a page is a range of the (queue, ord) or (queue, score) index read in order (a score
# of null comes first going up, last going down)
_ORDER = {"order": "i.ord, i.iid", "score_asc": "i.score, i.iid", "score_desc": "i.score DESC, i.iid DESC"}
# the rows someone decided, walked from the state table (CROSS JOIN keeps it the outer loop, INDEXED BY stops
# the planner from range-scanning a queue's scores once per decided row): counting what is decided costs what
# was decided, not the whole queue
_DECIDED = ("FROM state s CROSS JOIN items i INDEXED BY items_rid ON i.rid = s.rid "
            "LEFT JOIN mine m ON m.rid = s.rid AND m.reviewer = ?")
_NOT_TODO = "(s.n_final >= ? OR m.rid IS NOT NULL)"
_DECIDED_ROWS = _DECIDED.replace(" LEFT JOIN", " JOIN rows r ON r.rid = i.rid LEFT JOIN", 1)
DECIDED_ONLY = ("done", "mine", "skipped", "sent_back")  # statuses only decided rows can have


def _source(f: Filter) -> str:
    """The FROM clause for ``f``: from the decided rows when only they can match, else from the queue's items."""
    return _DECIDED_ROWS if f.status in DECIDED_ONLY else _FROM


def queue_list(index: ReviewIndex, reviewer: str, per_item: int) -> list[dict[str, Any]]:
    """Every queue with its title, items, items left for ``reviewer`` (``todo``) and complete items."""
    with index.connect() as conn:
        totals = dict(conn.execute("SELECT queue, count(*) FROM items GROUP BY queue").fetchall())
        decided = {q: (int(a or 0), int(b or 0)) for q, a, b in conn.execute(
            f"SELECT i.queue, sum({_NOT_TODO}), sum(s.n_final >= ?) {_DECIDED} GROUP BY i.queue",
            (per_item, per_item, reviewer))}
    order = {"sample": 0, "margin": 2, "near_duplicates": 3, "pii": 4, "toxicity": 5, "copyright": 6,
             "contamination": 7, "judge": 8, "quarantine": 20}
    out = [{"queue": q, "title": queue_title(q), "total": n, "todo": n - decided.get(q, (0, 0))[0],
            "done": decided.get(q, (0, 0))[1]} for q, n in totals.items()]
    return sorted(out, key=lambda x: (order.get(x["queue"], 1 if x["queue"].startswith("queue:") else 10),
                                      x["queue"]))


def _summary(row: sqlite3.Row | tuple[Any, ...], blind: bool, reviewer: str) -> dict[str, Any]:
    iid, key, where, h, queue, score, rule, note, text, n_final, outcome, sent_back, summary, action, skipped = row
    state = json.loads(summary) if summary else {}
    verdicts = state.get("verdicts") or {}
    others = {} if blind else {r: v["action"] for r, v in verdicts.items() if r != reviewer}
    return {"iid": iid, "key": key, "where": where, "hash": h, "queue": queue, "score": score, "rule": rule,
            "note": note, "text": text, "n_final": n_final or 0, "outcome": None if blind else outcome,
            "sent_back": json.loads(sent_back) if sent_back else None, "mine": action, "skipped": bool(skipped),
            "others": others}


_COLUMNS = ("i.iid, r.key, r.where_, r.hash, i.queue, i.score, i.rule, i.note, substr(r.text, 1, 400), s.n_final, "
            "s.outcome, s.sent_back, s.summary, m.action, m.skipped ")


def page(index: ReviewIndex, f: Filter, reviewer: str, per_item: int, blind: bool, number: int = 1,
         size: int = 50) -> dict[str, Any]:
    """Page ``number`` (from 1) of ``size`` items matching ``f`` for ``reviewer``, with the total match count."""
    size = max(1, min(MAX_PAGE, size))
    number = max(1, number)
    where, args = _where(f, reviewer, per_item)
    with index.connect() as conn:
        total = _count(conn, f, reviewer, per_item)
        rows = conn.execute(f"SELECT {_COLUMNS} {_source(f)} WHERE {where} ORDER BY {_ORDER[f.sort]} LIMIT ? OFFSET ?",
                            [*args, size, (number - 1) * size]).fetchall()
    return {"total": total, "page": number, "size": size, "pages": max(1, -(-total // size)),
            "items": [_summary(r, blind, reviewer) for r in rows]}


def _count(conn: sqlite3.Connection, f: Filter, reviewer: str, per_item: int) -> int:
    """The items ``f`` matches. With no filter but the queue and the status, from the queue's size and the decided
    rows alone (:data:`_DECIDED`); else by walking the matches."""
    if f.rule or f.where or f.q or f.min_score is not None or f.max_score is not None:
        where, args = _where(f, reviewer, per_item)
        return int(conn.execute(f"SELECT count(*) {_source(f)} WHERE {where}", args).fetchone()[0])
    total = int(conn.execute("SELECT count(*) FROM items WHERE queue = ?", (f.queue,)).fetchone()[0])
    if f.status == "all":
        return total
    if f.status in ("todo", "open"):
        cond = _NOT_TODO if f.status == "todo" else "s.n_final >= ?"
        return total - int(conn.execute(f"SELECT count(*) {_DECIDED} WHERE i.queue = ? AND {cond}",
                                        (reviewer, f.queue, per_item)).fetchone()[0])
    where, args = _where(f, reviewer, per_item)  # done, mine, skipped, sent_back: only decided rows can match
    return int(conn.execute(f"SELECT count(*) {_DECIDED} WHERE {where}", args).fetchone()[0])


def matching(index: ReviewIndex, f: Filter, reviewer: str, per_item: int) -> list[dict[str, Any]]:
    """Every item ``f`` matches: ``iid``, ``key``, ``where``, ``hash``, ``queue``, ``fields`` (for snapshots)."""
    where, args = _where(f, reviewer, per_item)
    with index.connect() as conn:
        rows = conn.execute(f"SELECT i.iid, r.key, r.where_, r.hash, i.queue, r.fields {_source(f)} WHERE {where} "
                            f"ORDER BY {_ORDER[f.sort]}", args).fetchall()
    return [{"iid": iid, "key": key, "where": w, "hash": h, "queue": q, "fields": json.loads(fields)}
            for iid, key, w, h, q, fields in rows]


def item_detail(index: ReviewIndex, iid: int, reviewer: str, blind: bool) -> dict[str, Any] | None:
    """One item: the row's columns, content fields, the queues it is in, its partner (near-duplicates) with the
    differences, the decisions on it (a blind reviewer sees only their own) and the label and tag options."""
    with index.connect() as conn:
        row = conn.execute(f"SELECT {_COLUMNS}, r.fields, i.extra, r.source {_FROM} WHERE i.iid = ?",
                           (reviewer, iid)).fetchone()
        if row is None:
            return None
        queues = conn.execute("SELECT i.iid, i.queue, i.rule, i.note, i.score FROM items i JOIN rows r ON "
                              "r.rid = i.rid WHERE r.key = ? ORDER BY i.iid", (row[1],)).fetchall()
    out = _summary(row[:15], blind, reviewer)
    fields, extra = json.loads(row[15]), json.loads(row[16]) if row[16] else {}
    out.update(fields=fields, extra=extra, source=row[17], editable=editable_fields(fields),
               label=fields.get(LABEL), tokens=fields.get(TOKENS), tags=fields.get(TAGS),
               queues=[{"iid": i, "queue": q, "title": queue_title(q), "rule": r, "note": n, "score": s} for i, q, r, n, s in queues],
               spans=[s for s in fields.get("pii.spans") or [] if isinstance(s, dict)])
    own = index.row(out["key"])
    if own is not None:
        out["text"] = own.text
    partner_key = extra.get("partner") if isinstance(extra, dict) else None
    partner = index.row(str(partner_key)) if partner_key else None
    if partner is not None:
        out["partner"] = {"key": partner.key, "where": partner.where, "text": partner.text}
        out["diff"] = word_diff(partner.text, out["text"])
    decisions = [d.to_dict() for d in index.store.decisions(keys=[out["key"]]) if not blind or d.reviewer == reviewer]
    out["decisions"] = decisions
    out.update(index.options())
    return out
