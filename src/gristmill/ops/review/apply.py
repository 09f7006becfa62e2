"""``review.apply``: the decisions people made in ``gristmill review`` applied to the rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import Field

from gristmill.audit.metric import AuditSection
from gristmill.ops.base import GlobalOp, Params, StepResult, split_by_mask
from gristmill.records import ID, REASON, Reason, set_column
from gristmill.review.content import content_hash
from gristmill.review.queues import OUTPUT, QUARANTINE
from gristmill.review.state import by_key, resolve
from gristmill.review.store import Decision, ReviewStoreError, Store, decisions_path

__all__ = ["PROVENANCE", "ReviewApply"]

STATUS, REVIEWERS, CHANGED, TIME = "review.status", "review.reviewers", "review.changed", "review.time"
PROVENANCE = (STATUS, REVIEWERS, CHANGED, TIME)


class ReviewApply(GlobalOp):
    """Apply the decisions of ``gristmill review``: reject, edit, relabel and restore rows.

    Reads ``<run>/review/decisions.sqlite`` (``run``: the reviewed run directory, relative to the recipe's
    folder; usually the run this recipe writes, e.g. ``../runs/default``) and resolves each row's
    decisions against its current content (:mod:`gristmill.review.state`: decisions are keyed by row id
    and content hash; one made on other content is stale and applies nothing, and the row is queued
    again). Then:

    * a row reviewers rejected is dropped with the reason ``review: <reason> (<reviewer>)``;
    * a kept row takes its edits and label changes (text fields, ``label``, NER ``tags``);
    * a row a step dropped and reviewers kept is added back (``restore``), as it was reviewed: the snapshot
      stored with the decision, with its edits, the columns this step's input has (the others dropped,
      missing ones null); a row of that id already in the input is not added twice, and quarantined
      input is never restored (it could not be read);
    * with ``provenance``, decided rows get ``review.status`` (``accepted``, ``edited``, ``relabelled``,
      ``restored``, ``stale``), ``review.reviewers``, ``review.changed`` (the changed fields) and
      ``review.time`` (the latest verdict); other rows get nulls.

    Put it last in the recipe (the decisions were made on the output rows) and run the recipe again:
    every step before it comes from the cache, and this step reruns whenever the decisions file changes
    (it is one of the step's input files). A missing decisions file applies nothing. Its audit section
    adds the gates ``review.pending``, ``review.agreement``, ``review.error_rate`` and
    ``review.error_rate_high`` and the dataset card's Human review section.
    """

    name = "review.apply"
    version = "1"
    example_params = {"run": "no-such-reviewed-run"}

    class Params(Params):
        run: str = Field(..., description="The reviewed run directory (relative to the recipe's folder) whose "
                                          "review/decisions.sqlite is applied, e.g. ../runs/default.")
        restore: bool = Field(True, description="Add back rows a step dropped that reviewers kept.")
        provenance: bool = Field(True, description="Write review.status, review.reviewers, review.changed and "
                                                   "review.time on decided rows.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._grouped: dict[str, list[Decision]] | None = None
        self._restore_rows: list[dict[str, Any]] = []
        self._host: str | None = None
        self._summary: dict[str, Any] = {}

    @classmethod
    def audit_section(cls) -> AuditSection:
        """The review's gates, figures and card section (:mod:`gristmill.ops.review.audit_metrics`)."""
        from gristmill.ops.review.audit_metrics import REVIEW_AUDIT

        return REVIEW_AUDIT

    # ---- description ------------------------------------------------------------------------
    def writes(self) -> list[str]:
        return list(PROVENANCE) if self.params.provenance else []

    def decisions_file(self) -> Path:
        """``<run>/review/decisions.sqlite``, made absolute against the recipe's folder."""
        return decisions_path(self.resolve_path(self.params.run))

    def input_files(self) -> list[Path]:
        """The decisions file and its write-ahead log: any new decision changes one of them, so the step reruns."""
        path = self.decisions_file()
        return [path, Path(f"{path}-wal")]

    # ---- the decisions -----------------------------------------------------------------------
    def _decisions(self) -> tuple[dict[str, list[Decision]], dict[tuple[str, str], dict[str, Any]]]:
        path = self.decisions_file()
        if not path.is_file():
            return {}, {}
        try:
            store = Store(path, readonly=True)
            return by_key(store.decisions()), store.snapshots()
        except ReviewStoreError as exc:
            raise RuntimeError(f"review.apply: {exc}") from None

    def _groups(self) -> dict[str, list[Decision]]:
        if self._grouped is None:
            self._grouped = self._decisions()[0]
        return self._grouped

    def summarize(self, batch: pa.Table) -> dict[str, Any]:
        """The shard's first id and the content hash of each of its rows that has decisions."""
        groups = self._groups()
        ids = batch.column(ID).to_pylist() if ID in batch.column_names and batch.num_rows else []
        decided = {}
        if groups and ids:
            rows = batch.to_pylist()
            decided = {str(r[ID]): content_hash(r) for r in rows if str(r.get(ID)) in groups}
        return {"first": str(ids[0]) if ids else None, "decided": decided}

    def fit(self, summaries: list[Any]) -> None:
        groups, snapshots = self._decisions()
        self._grouped = groups
        present: dict[str, str] = {}
        for s in summaries:
            present.update(s["decided"])
        self._host = next((s["first"] for s in summaries if s["first"] is not None), None)
        counts = {"rejected": 0, "edited": 0, "relabelled": 0, "accepted": 0, "stale": 0, "restored": 0}
        for key, h in present.items():
            status = _status(resolve(key, groups[key], h))
            if status is not None:
                counts[status] += 1
        self._restore_rows = []
        if self.params.restore:
            for key, ds in groups.items():
                if key in present:
                    continue
                latest = ds[-1]
                if latest.where in (OUTPUT, QUARANTINE):
                    continue
                st = resolve(key, ds, latest.hash)
                row = snapshots.get((key, latest.hash))
                if st.outcome != "keep" or row is None:
                    continue
                row = {k: v for k, v in row.items() if k not in (REASON, "_duplicate_of")}
                row.update(st.changes())
                if self.params.provenance:
                    row.update(_provenance(st, "restored"))
                self._restore_rows.append(row)
        counts["restored"] = len(self._restore_rows) if self._host is not None else 0
        self._summary = {"decisions_file": str(self.decisions_file()), "decided_rows": len(groups), **counts}
        if self._restore_rows and self._host is None:
            self._summary["not_restored"] = f"{len(self._restore_rows)} kept rows: the step's input has no rows to " \
                                            "add them to"

    def run_summary(self) -> dict[str, Any] | None:
        return self._summary or None

    def apply(self, batch: pa.Table) -> StepResult:
        groups = self._groups()
        rows = batch.to_pylist() if groups and batch.num_rows else []
        keep = [True] * batch.num_rows
        reasons: list[Reason | None] = [None] * batch.num_rows
        prov: dict[str, list[Any]] = {c: [None] * batch.num_rows for c in PROVENANCE}
        changes: dict[str, dict[int, Any]] = {}
        for i, row in enumerate(rows):
            ds = groups.get(str(row.get(ID)))
            if not ds:
                continue
            st = resolve(str(row[ID]), ds, content_hash(row))
            status = _status(st)
            if status is None:
                continue
            for c, v in _provenance(st, status).items():
                prov[c][i] = v
            if status == "rejected":
                keep[i] = False
                reasons[i] = Reason("review", st.reject_reason())
            for field, value in st.changes().items():
                changes.setdefault(field, {})[i] = value
        out = batch
        for field, values in changes.items():
            old = out.column(field).to_pylist() if field in out.column_names else [None] * out.num_rows
            new = [values.get(i, v) for i, v in enumerate(old)]
            typ = out.schema.field(field).type if field in out.column_names else None
            out = set_column(out, field, pa.array(new, type=typ))
        if self.params.provenance:
            for c in PROVENANCE:
                out = set_column(out, c, pa.array(prov[c], pa.string()))
        result = split_by_mask(out, keep, reasons)
        ids = batch.column(ID).to_pylist() if ID in batch.column_names and batch.num_rows else []
        if self._restore_rows and ids and str(ids[0]) == self._host:
            result.kept = _append(result.kept, self._restore_rows)
        return result


def _status(st: Any) -> str | None:
    """``rejected``, ``edited``, ``relabelled``, ``accepted``, ``stale`` or None (nothing decided)."""
    if st.outcome == "reject":
        return "rejected"
    if st.outcome == "keep":
        changed = st.changes()
        return "accepted" if not changed else "relabelled" if set(changed) <= {"label", "tags"} else "edited"
    return "stale" if st.stale else None


def _provenance(st: Any, status: str) -> dict[str, Any]:
    verdicts = sorted(st.verdicts.values(), key=lambda d: d.seq)
    return {STATUS: status, REVIEWERS: ", ".join(d.reviewer for d in verdicts) or None,
            CHANGED: ", ".join(sorted(st.changes())) or None, TIME: verdicts[-1].time if verdicts else None}


def _append(kept: pa.Table, rows: list[dict[str, Any]]) -> pa.Table:
    """``kept`` with ``rows`` added: their values for ``kept``'s columns (missing: null; a value of another type:
    null), other keys dropped."""
    columns = {}
    for f in kept.schema:
        values = [r.get(f.name) for r in rows]
        try:
            columns[f.name] = pa.array(values, type=f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            columns[f.name] = pa.nulls(len(rows), f.type)
    extra = pa.Table.from_arrays(list(columns.values()), schema=kept.schema)
    return pa.concat_tables([kept, extra])
