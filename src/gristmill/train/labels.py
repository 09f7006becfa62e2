"""BIO tag sets, labelled-data loading and the scores of token and sequence classifiers.

Data comes in through gristmill's readers: CoNLL (``token<TAB>tag`` lines) or JSONL whose
rows hold a ``tokens`` list and a ``tags`` list of the same length. A record that cannot be
used (wrong column count, tags of another length, a tag that is not ``O``/``B-x``/``I-x``)
is skipped and returned as a :class:`~gristmill.io.base.BadRecord` with file, line and reason.

Scores: entity-level precision/recall/F1 come from seqeval in its default (CoNLL) mode,
which reads an ``I-x`` that does not continue an ``x`` entity as the start of one; the
token-level table is scikit-learn's ``classification_report`` over every tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.io.base import BadRecord, InputError, Progress, ReaderOptions

__all__ = ["TaggedSentence", "LabelledText", "LoadedData", "bio_labels", "repair_bio", "read_tagged",
           "read_labelled_text", "entity_report", "token_report", "classification_scores", "entity_types"]

_TAG = re.compile(r"^(O|[BI]-\S.*)$")
MAX_RECORD_BYTES = 16 * 2**20


@dataclass
class TaggedSentence:
    """One sentence: its id, words and one BIO tag per word."""

    id: str
    tokens: list[str]
    tags: list[str]


@dataclass
class LabelledText:
    """One text with its class label."""

    id: str
    text: str
    label: str


@dataclass
class LoadedData:
    """The usable records of a file and the records skipped (with their reasons)."""

    rows: list[Any] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)
    untagged: int = 0  # records that carry no tags/label at all


def entity_types(labels: Iterable[str]) -> list[str]:
    """The entity types named by B-/I- tags, sorted."""
    return sorted({t[2:] for t in labels if t[:2] in ("B-", "I-")})


def bio_labels(tag_lists: Iterable[Sequence[str]]) -> list[str]:
    """The label set of some tagged data: ``O`` first, then ``B-x``, ``I-x`` for each type x (sorted),
    both prefixes included even when the data only shows one of them."""
    types = entity_types(t for tags in tag_lists for t in tags)
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def repair_bio(tags: Sequence[str]) -> list[str]:
    """``tags`` with every ``I-x`` that does not continue an ``x`` entity turned into ``B-x``
    (what seqeval's default mode assumes when it counts entities)."""
    out: list[str] = []
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            t = "B-" + t[2:]
        out.append(t)
        prev = t
    return out


def _format_of(path: Path, fmt: str | None) -> str:
    from gristmill.io.readers import container_of

    if fmt:
        return fmt
    found = container_of(path)
    if found not in ("conll", "jsonl"):
        raise InputError(f"{path}: cannot tell the format from the name; expected .conll/.iob/.bio or .jsonl")
    return found


def _check_tags(tokens: Any, tags: Any) -> str | None:
    """The reason a tokens/tags pair is unusable, or None."""
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
        return "'tokens' is not a non-empty list of non-empty strings"
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "'tags' is not a list of strings"
    if len(tags) != len(tokens):
        return f"{len(tokens)} tokens but {len(tags)} tags"
    bad = next((t for t in tags if not _TAG.match(t)), None)
    if bad is not None:
        return f"tag {bad!r} is not O, B-<type> or I-<type>"
    return None


def _json_records(path: Path) -> Iterable[tuple[int | None, dict[str, Any]] | BadRecord]:
    from gristmill.io.jsonl import iter_json

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return iter_json(path, MAX_RECORD_BYTES, Progress())


def read_tagged(path: str | Path, fmt: str | None = None, *, tokens_field: str = "tokens",
                tags_field: str = "tags") -> LoadedData:
    """Tagged sentences from a CoNLL file or a JSONL file with ``tokens``/``tags`` lists.

    ``untagged`` counts records with no tags (a CoNLL file of one column, JSONL rows
    without ``tags``); they are also in ``bad``. Raises :class:`InputError` when the file
    cannot be read at all.
    """
    from gristmill.io.readers import open_reader

    path = Path(path)
    fmt = _format_of(path, fmt)
    data = LoadedData()
    if fmt == "conll":
        for rec in open_reader(path, ReaderOptions(format="conll")):
            if isinstance(rec, BadRecord):
                data.bad.append(rec)
                if "columns, expected" in rec.reason and re.search(r"has 1 columns", rec.reason):
                    data.untagged += 1
                continue
            reason = _check_tags(rec["tokens"], rec["tags"])
            if reason:
                data.bad.append(BadRecord(str(path), None, f"{rec['id']}: {reason}", rec["text"][:200]))
                continue
            data.rows.append(TaggedSentence(str(rec["id"]), list(rec["tokens"]), list(rec["tags"])))
        return data
    if fmt != "jsonl":
        raise InputError(f"{path}: format {fmt!r} has no tags; expected conll or jsonl")
    for item in _json_records(path):
        if isinstance(item, BadRecord):
            data.bad.append(item)
            continue
        line, obj = item
        raw = str(obj)[:200]
        if obj.get(tags_field) is None:
            data.untagged += 1
            data.bad.append(BadRecord(str(path), line, f"no {tags_field!r} field", raw))
            continue
        reason = _check_tags(obj.get(tokens_field), obj.get(tags_field))
        if reason:
            data.bad.append(BadRecord(str(path), line, reason, raw))
            continue
        rid = obj.get("id")
        data.rows.append(TaggedSentence(str(rid) if rid not in (None, "") else f"{path.name}:{line}",
                                        list(obj[tokens_field]), list(obj[tags_field])))
    return data


def read_labelled_text(path: str | Path, text_field: str = "text", label_field: str = "label") -> LoadedData:
    """Texts and class labels from a JSONL file (labels are turned into strings: 0/1 and true/false work)."""
    path = Path(path)
    data = LoadedData()
    for item in _json_records(path):
        if isinstance(item, BadRecord):
            data.bad.append(item)
            continue
        line, obj = item
        raw = str(obj)[:200]
        text, label = obj.get(text_field), obj.get(label_field)
        if label is None or (isinstance(label, str) and not label.strip()):
            data.untagged += 1
            data.bad.append(BadRecord(str(path), line, f"no {label_field!r} field", raw))
            continue
        if not isinstance(text, str) or not text.strip():
            data.bad.append(BadRecord(str(path), line, f"{text_field!r} is missing, empty or not a string", raw))
            continue
        if isinstance(label, (dict, list)):
            data.bad.append(BadRecord(str(path), line, f"{label_field!r} is a {type(label).__name__}, "
                                      "expected a string or number", raw))
            continue
        rid = obj.get("id")
        data.rows.append(LabelledText(str(rid) if rid not in (None, "") else f"{path.name}:{line}", text,
                                      str(label).lower() if isinstance(label, bool) else str(label)))
    return data


def entity_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> tuple[dict[str, Any], str]:
    """Entity-level scores (seqeval, default mode) as a dict and as seqeval's text table.

    The dict has ``precision``/``recall``/``f1`` (micro), ``macro_f1`` and ``per_type``
    ``{type: {precision, recall, f1, support}}``.
    """
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    has_entities = any(t != "O" for g in gold for t in g)
    if not has_entities:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "macro_f1": 0.0, "per_type": {}}, \
            "(no entities in the gold tags)"
    table = classification_report(gold, pred, digits=4, zero_division=0)
    d = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {k: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
                    "support": int(v["support"])}
                for k, v in d.items() if not k.endswith(" avg")}
    scores = {"precision": float(precision_score(gold, pred, zero_division=0)),
              "recall": float(recall_score(gold, pred, zero_division=0)),
              "f1": float(f1_score(gold, pred, zero_division=0)),
              "macro_f1": float(d.get("macro avg", {}).get("f1-score", 0.0)),
              "per_type": per_type}
    return scores, table


def token_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str]) -> str:
    """scikit-learn's token-level ``classification_report`` over ``labels`` (every tag, O included)."""
    from sklearn.metrics import classification_report

    flat_gold = [t for g in gold for t in g]
    flat_pred = [t for p in pred for t in p]
    present = [lab for lab in labels if lab in set(flat_gold) | set(flat_pred)]
    extra = sorted((set(flat_gold) | set(flat_pred)) - set(present))
    return classification_report(flat_gold, flat_pred, labels=present + extra, digits=4, zero_division=0)


def classification_scores(gold: Sequence[str], pred: Sequence[str],
                          labels: Sequence[str]) -> tuple[dict[str, Any], str]:
    """Accuracy, macro/micro F1 and per-class scores (scikit-learn) as a dict and as its text table."""
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    labels = list(labels) + sorted(set(gold) - set(labels))
    table = classification_report(gold, pred, labels=labels, digits=4, zero_division=0)
    d = classification_report(gold, pred, labels=labels, output_dict=True, zero_division=0)
    per_class = {k: {"precision": float(d[k]["precision"]), "recall": float(d[k]["recall"]),
                     "f1": float(d[k]["f1-score"]), "support": int(d[k]["support"])} for k in labels}
    return {"accuracy": float(accuracy_score(gold, pred)) if gold else 0.0,
            "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
            "micro_f1": float(f1_score(gold, pred, labels=labels, average="micro", zero_division=0)),
            "per_class": per_class}, table
