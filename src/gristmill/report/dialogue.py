"""Report section for dialogue data: turns per dialogue, words per turn, distinct-n, and what was rejected.

Reads the output rows' ``messages`` (OpenAI chat messages; a ShareGPT ``conversations`` list of a
run read back from its JSONL output is mapped to the same roles) through
:meth:`~gristmill.pipeline.run_reader.RunReader.output_table`. A turn is a ``user`` or
``assistant`` message; ``system`` messages are not counted. Figures (:func:`turn_stats`):

* dialogues, turns, and turns per dialogue (mean, median, min, max);
* words per user turn and per assistant turn (whitespace tokens; mean, median, min, max);
* distinct-1/2 (:func:`gristmill.evaluate.diversity.distinct_n`: unique / all n-grams of
  lowercased words) of the assistant turns and of the user turns, each set as a whole.

Histograms of turns per dialogue and of words per user and per assistant turn; and, for each
``generate.dialogue`` step, its rejected rows counted by rule and by reason with the numbers
taken out (``turn_parse: turn N: repeats turn N``), read from the step's rejected file.
Rows without messages are skipped; a run whose output has no ``messages`` says so.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pyarrow.parquet as pq

from gristmill.evaluate.diversity import distinct_n
from gristmill.pipeline.run_reader import RunReader
from gristmill.records import REASON, rule_of
from gristmill.report import charts
from gristmill.report.html import kv, none, num, table

OP = "generate.dialogue"
ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "system": "system"}
_NUMBER = re.compile(r"\d+")

Conversation = list[dict[str, str]]


def _messages(value: Any) -> Conversation | None:
    """A row's messages as ``[{role, content}]`` (JSON text decoded, ShareGPT's from/value mapped); None if absent."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list):
        return None
    out = []
    for m in value:
        if not isinstance(m, dict):
            continue
        role = ROLES.get(str(m.get("role", m.get("from", ""))).lower())
        content = m.get("content", m.get("value"))
        if role and isinstance(content, str):
            out.append({"role": role, "content": content})
    return out


def conversations(run: RunReader) -> list[Conversation]:
    """The output rows' conversations (rows without a usable ``messages`` / ``conversations`` skipped)."""
    table = run.output_table(["messages", "conversations"])
    column = next((c for c in ("messages", "conversations") if c in table.column_names), None)
    if column is None:
        return []
    return [c for c in (_messages(v) for v in table.column(column).to_pylist()) if c]


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None, "min": None, "max": None}
    return {"mean": statistics.fmean(values), "median": float(statistics.median(values)),
            "min": min(values), "max": max(values)}


def turn_lengths(convs: Sequence[Conversation]) -> dict[str, list[int]]:
    """Turns per dialogue, and words per user turn and per assistant turn, as plain lists."""
    turns = [[m for m in c if m["role"] in ("user", "assistant")] for c in convs]
    return {"turns": [len(t) for t in turns if t],
            "user_words": [len(m["content"].split()) for t in turns for m in t if m["role"] == "user"],
            "assistant_words": [len(m["content"].split()) for t in turns for m in t if m["role"] == "assistant"]}


def turn_stats(convs: Sequence[Conversation]) -> dict[str, Any]:
    """The dialogue figures of the module docstring, JSON-ready (``None`` where there is nothing to measure)."""
    lengths = turn_lengths(convs)
    user = [m["content"] for c in convs for m in c if m["role"] == "user"]
    assistant = [m["content"] for c in convs for m in c if m["role"] == "assistant"]
    return {
        "dialogues": len(lengths["turns"]),
        "turns": sum(lengths["turns"]),
        "user_turns": len(user),
        "assistant_turns": len(assistant),
        "turns_per_dialogue": _spread(lengths["turns"]),
        "words_per_user_turn": _spread(lengths["user_words"]),
        "words_per_assistant_turn": _spread(lengths["assistant_words"]),
        "assistant_distinct_1": distinct_n(assistant, 1),
        "assistant_distinct_2": distinct_n(assistant, 2),
        "user_distinct_1": distinct_n(user, 1),
        "user_distinct_2": distinct_n(user, 2),
    }


def rejected(run: RunReader) -> dict[str, dict[str, Any]]:
    """Per ``generate.dialogue`` step: its rejected rows by rule and by reason with numbers as ``N``."""
    steps = {str(s.get("step")) for s in run.steps if s.get("op") == OP}
    out: dict[str, dict[str, Any]] = {}
    for step, path in run.rejected_files():
        if step not in steps or REASON not in pq.read_schema(path).names:
            continue
        reasons = [r for r in pq.read_table(path, columns=[REASON]).column(REASON).to_pylist() if r]
        out[step] = {"rows": len(reasons), "by_rule": dict(Counter(rule_of(r) for r in reasons).most_common()),
                     "by_reason": dict(Counter(_NUMBER.sub("N", r) for r in reasons).most_common())}
    return out


def dialogue_stats(run: RunReader) -> dict[str, Any]:
    """:func:`turn_stats` of the run's output with the dialogue steps' rejects (:func:`rejected`)."""
    return {**turn_stats(conversations(run)), "rejected": rejected(run)}


def _cell(spread: dict[str, Any]) -> str:
    if spread.get("mean") is None:
        return "—"
    return (f"mean {num(spread['mean'], 1)}, median {num(spread['median'], 1)}, "
            f"min {num(spread['min'])}, max {num(spread['max'])}")


def render(run: RunReader) -> str:
    convs = conversations(run)
    rejects = rejected(run)
    if not convs and not rejects:
        return none("none: the output has no messages")
    s = turn_stats(convs)
    parts = []
    if convs:
        pairs = [
            ("dialogues", num(s["dialogues"])),
            ("turns (user / assistant)", f"{num(s['turns'])} ({num(s['user_turns'])} / {num(s['assistant_turns'])})"),
            ("turns per dialogue", _cell(s["turns_per_dialogue"])),
            ("words per user turn", _cell(s["words_per_user_turn"])),
            ("words per assistant turn", _cell(s["words_per_assistant_turn"])),
            ("distinct-1 / distinct-2 of assistant turns",
             f"{num(s['assistant_distinct_1'], 3)} / {num(s['assistant_distinct_2'], 3)}"),
            ("distinct-1 / distinct-2 of user turns", f"{num(s['user_distinct_1'], 3)} / {num(s['user_distinct_2'], 3)}"),
        ]
        lengths = turn_lengths(convs)
        top = max(lengths["turns"], default=2)
        parts.append("<p>A turn is a user or assistant message (system messages are not counted). Distinct-n: "
                     "unique / all n-grams of lowercased words over all turns of a side (higher is more "
                     "diverse).</p>" + kv(pairs))
        parts.append(charts.histogram(lengths["turns"], bins=max(top, 1), title="Turns per dialogue (rows: dialogues)",
                                      xlabel="turns"))
        for side in ("user", "assistant"):
            if lengths[f"{side}_words"]:
                parts.append(charts.histogram(lengths[f"{side}_words"], bins=20,
                                              title=f"Words per {side} turn (rows: turns)", xlabel="words"))
    else:
        parts.append(none("no dialogue was kept"))
    for step, r in rejects.items():
        parts.append(f"<h3>Rejected by {step}: {num(r['rows'])} rows</h3>")
        parts.append(table(["reason (numbers as N)", "rows"], list(r["by_reason"].items()), text_cols=(0,)))
    return "".join(parts)
