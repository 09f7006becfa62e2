"""Turning a reviewer's action into a :class:`~gristmill.review.store.Decision`, checked.

* ``accept``: the row belongs in the data (a dropped row is restored by ``review.apply``);
* ``reject``: it does not; a reason is required;
* ``edit``: new values for some of the row's text fields (:data:`~gristmill.review.content.EDITABLE`);
  only changed fields are kept, with a unified diff; nothing changed is an error;
* ``label``: a new classification ``label``, or new NER ``tags`` (one per token, the same count);
* ``skip``: not now (no verdict);
* ``send_back``: void the row's decisions and queue it again, with an optional note.

A decision on a row that is not in the output (dropped or quarantined) carries the row as it was shown
(its snapshot), so ``review.apply`` can restore it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gristmill.review.content import LABEL, TAGS, TOKENS, content_hash, editable_fields, unified_diff
from gristmill.review.queues import OUTPUT
from gristmill.review.store import ACTIONS, Decision

__all__ = ["ActionError", "MAX_REASON", "make_decision"]

MAX_REASON = 500
MAX_TEXT = 1_000_000


class ActionError(ValueError):
    """An action that cannot be taken as asked (the message says why)."""


def _reason(reason: Any, required: bool) -> str | None:
    text = " ".join(str(reason).split()) if reason is not None else ""
    if required and not text:
        raise ActionError("a rejection needs a reason")
    if len(text) > MAX_REASON:
        raise ActionError(f"the reason is longer than {MAX_REASON} characters")
    return text or None


def make_decision(item: Mapping[str, Any], action: str, reviewer: str, *, reason: Any = None,
                  after: Mapping[str, Any] | None = None, label: Any = None, tags: Sequence[Any] | None = None,
                  bulk: str | None = None) -> tuple[Decision, dict[tuple[str, str], dict[str, Any]]]:
    """The decision ``reviewer`` makes with ``action`` on ``item`` (``key``, ``where``, ``hash``, ``queue``,
    ``fields``), and the snapshot to store with it (empty for output rows)."""
    if action not in ACTIONS:
        raise ActionError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    fields: dict[str, Any] = dict(item.get("fields") or {})
    before: dict[str, Any] | None = None
    changed: dict[str, Any] | None = None
    diff = None
    if action == "edit":
        allowed = set(editable_fields(fields))
        if not after:
            raise ActionError("an edit needs the new text of at least one field")
        bad = [k for k in after if k not in allowed]
        if bad:
            raise ActionError(f"cannot edit {', '.join(map(str, bad))}: the editable fields of this row are "
                              f"{', '.join(sorted(allowed)) or 'none'}")
        if any(not isinstance(v, str) or len(v) > MAX_TEXT for v in after.values()):
            raise ActionError(f"an edited field must be text of at most {MAX_TEXT:,} characters")
        changed = {k: v for k, v in after.items() if v != fields.get(k)}
        if not changed:
            raise ActionError("nothing changed")
        before = {k: fields.get(k) for k in changed}
        diff = unified_diff(before, changed)
    elif action == "label":
        if tags is not None:
            tokens = fields.get(TOKENS)
            if not isinstance(tokens, list):
                raise ActionError("this row has no tokens to tag")
            if len(tags) != len(tokens) or not all(isinstance(t, str) and t for t in tags):
                raise ActionError(f"give one tag per token ({len(tokens)} tokens, {len(tags)} tags)")
            if list(tags) == fields.get(TAGS):
                raise ActionError("nothing changed")
            before, changed = {TAGS: fields.get(TAGS)}, {TAGS: list(tags)}
        else:
            if not isinstance(label, str) or not label.strip() or len(label) > 200:
                raise ActionError("give the new label (text of 1 to 200 characters)")
            if label == fields.get(LABEL):
                raise ActionError("nothing changed")
            before, changed = {LABEL: fields.get(LABEL)}, {LABEL: label}
        diff = unified_diff(before, changed)
    note = _reason(reason, required=action == "reject") if action in ("reject", "send_back", "skip") else None
    where = str(item.get("where") or OUTPUT)
    h = str(item["hash"])
    decision = Decision(key=str(item["key"]), hash=h, action=action, reviewer=reviewer, queue=str(item.get("queue") or ""),
                        where=where, hash_after=content_hash({**fields, **changed}) if changed else None, reason=note,
                        before=before, after=changed, diff=diff, bulk=bulk)
    snapshot = {} if where == OUTPUT else {(decision.key, h): fields}
    return decision, snapshot
