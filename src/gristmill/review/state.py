"""What the decisions on one row add up to: each reviewer's verdict, and the row's outcome.

Rules (the same for the page, the figures and ``review.apply``):

* A decision holds for the row's current content when it was made on it (``hash``) or produced it
  (``hash_after`` of an edit or a label change, once applied). Decisions on other content are *stale*:
  the row changed since, so it is queued again.
* ``send_back`` voids every earlier decision on the row: it is queued again, with the note.
* Each reviewer's verdict is their latest holding ``accept`` / ``reject`` / ``edit`` / ``label``;
  a ``skip`` after it does not undo it, a ``skip`` alone is no verdict.
* The row is *complete* when at least ``per_item`` reviewers gave a verdict.
* Its outcome: ``reject`` when more reviewers rejected it than kept it (accept, edit or label count as
  keeping it), ``keep`` when more kept it; a tie goes to the latest verdict. A kept row takes the edits and
  label changes of the reviewers who kept it, in the order they were made (a later one wins field by
  field); a rejected row's reason is each rejecting reviewer's reason with their name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gristmill.review.store import Decision

__all__ = ["CATEGORY", "RowState", "by_key", "category", "resolve"]

CATEGORY = {"accept": "accept", "reject": "reject", "edit": "correct", "label": "correct"}
"""The category a verdict counts as in the agreement figures and the rule precision (edits and label
changes both say the row was wrong as it was, and are kept corrected)."""


def category(action: str) -> str:
    """``accept``, ``reject`` or ``correct`` (edit, label) of a final action."""
    return CATEGORY[action]


@dataclass
class RowState:
    """The decisions on one row resolved against its current content (see the module doc)."""

    key: str
    verdicts: dict[str, Decision] = field(default_factory=dict)  # reviewer -> latest holding final decision
    skipped: set[str] = field(default_factory=set)  # reviewers whose latest holding action is a skip
    sent_back: Decision | None = None  # the send_back that voided earlier decisions, when it is the latest action
    stale: int = 0  # decisions made on other content
    last_seq: int = 0

    @property
    def reviewers(self) -> list[str]:
        """The reviewers with a verdict, in the order of their verdicts."""
        return [d.reviewer for d in sorted(self.verdicts.values(), key=lambda d: d.seq)]

    def complete(self, per_item: int) -> bool:
        return len(self.verdicts) >= max(1, per_item)

    @property
    def outcome(self) -> str | None:
        """``keep``, ``reject`` or None (no verdict yet)."""
        if not self.verdicts:
            return None
        rejects = sum(d.action == "reject" for d in self.verdicts.values())
        keeps = len(self.verdicts) - rejects
        if rejects != keeps:
            return "reject" if rejects > keeps else "keep"
        latest = max(self.verdicts.values(), key=lambda d: d.seq)
        return "reject" if latest.action == "reject" else "keep"

    @property
    def result(self) -> str | None:
        """The outcome in more detail: ``accept``, ``reject``, ``correct`` (kept with an edit or label change)."""
        out = self.outcome
        if out == "reject":
            return "reject"
        if out == "keep":
            return "correct" if self.changes() else "accept"
        return None

    def changes(self) -> dict[str, Any]:
        """The fields a kept row takes from its edits and label changes (later ones win field by field)."""
        if self.outcome != "keep":
            return {}
        out: dict[str, Any] = {}
        for d in sorted(self.verdicts.values(), key=lambda d: d.seq):
            if d.action in ("edit", "label") and d.after:
                out.update(d.after)
        return out

    def reject_reason(self) -> str:
        """``<reason> (<reviewer>)`` of each rejecting reviewer, joined by ``; ``."""
        parts = [f"{d.reason or 'rejected'} ({d.reviewer})"
                 for d in sorted(self.verdicts.values(), key=lambda d: d.seq) if d.action == "reject"]
        return "; ".join(parts)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view for the page: verdicts by reviewer, skips, send-back note, stale count."""
        return {"verdicts": {r: {"action": d.action, "reason": d.reason, "time": d.time, "seq": d.seq}
                             for r, d in self.verdicts.items()},
                "skipped": sorted(self.skipped), "outcome": self.outcome, "result": self.result,
                "sent_back": None if self.sent_back is None else {"by": self.sent_back.reviewer,
                                                                  "note": self.sent_back.reason},
                "stale": self.stale}


def resolve(key: str, decisions: Sequence[Decision], current_hash: str | None) -> RowState:
    """The state of row ``key`` from its ``decisions`` (any order) for content ``current_hash`` (None: take
    every decision as holding, e.g. for a row no longer in the run)."""
    state = RowState(key)
    ordered = sorted(decisions, key=lambda d: d.seq)
    last_back = max((i for i, d in enumerate(ordered) if d.action == "send_back"), default=-1)
    for i, d in enumerate(ordered):
        state.last_seq = max(state.last_seq, d.seq)
        if i < last_back:
            continue
        holds = current_hash is None or current_hash in (d.hash, d.hash_after)
        if d.action == "send_back":
            state.sent_back = d
            continue
        if not holds:
            state.stale += 1
            continue
        if d.final:
            state.verdicts[d.reviewer] = d
            state.skipped.discard(d.reviewer)
        elif d.action == "skip" and d.reviewer not in state.verdicts:
            state.skipped.add(d.reviewer)
    if state.verdicts and state.sent_back is not None:
        state.sent_back = None  # decided again after it was sent back
    return state


def by_key(decisions: Iterable[Decision]) -> dict[str, list[Decision]]:
    """Decisions grouped by row key, each group in ``seq`` order."""
    out: dict[str, list[Decision]] = {}
    for d in sorted(decisions, key=lambda d: d.seq):
        out.setdefault(d.key, []).append(d)
    return out
