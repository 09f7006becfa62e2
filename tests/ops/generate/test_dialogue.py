"""generate.dialogue with the mock backend: turn order, stop rule, failed turns as reasons, the cache,
provenance and the chat output formats (fast); recipes/dialogue.yaml with the embedded model (slow)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from gristmill.llm.tasks.dialogue import sentences
from gristmill.llm.types import Decoding
from gristmill.ops.generate.dialogue import _EXAMPLE_BACKEND, Dialogue
from gristmill.records import Reason, from_rows
from gristmill.runner import run_recipe
from tests.conftest import REPO

DOCS = [{"id": "d1", "text": "Rivers carry sand. Rivers carry silt. Rivers reach the sea.", "source": "docs",
         "license": "CC0-1.0"},
        {"id": "d2", "text": "Bees dance to tell the hive where flowers are. Bees make honey. Bees sleep at night."}]
STOP = {"id": "s", "text": "Rain falls. STOP here."}
EMPTY = {"id": "e", "text": "EMPTY answers ahead. More text here."}
BOOM = {"id": "b", "text": "BOOM goes the server. More text here."}


def script(text: str, decoding: Decoding) -> str:
    """A mock model. The simulator asks "What about this: <focus sentence>?" (the sentence its prompt
    points at; "Thank you! [END]" when that sentence starts with "STOP"); the assistant says "Answer n on
    <topic>." for its n-th turn (the topic: the first word of the document in its system prompt). A
    document starting with "EMPTY" makes the assistant's second answer empty; "BOOM", its second request
    fail."""
    if "curious person" in text:
        focus = re.search(r'this sentence of the text: "([^"]*)"', text)
        sentence = focus.group(1).rstrip(".") if focus else "life"
        return "Thank you! [END]" if sentence.startswith("STOP") else f"What about this: {sentence}?"
    doc = re.search(r"using this text:\n\n(\w+)", text)
    topic = doc.group(1).lower() if doc else "life"
    n = text.count("\nuser: ")
    if n == 2 and topic == "empty":
        return "   "
    if n == 2 and topic == "boom":
        raise ConnectionError("server went away")
    return f"Answer {n} on {topic}."


def _op(tmp_path: Path | None = None, **params: Any) -> Dialogue:
    """The operator over :func:`script`, whose templated turns are near-repeats by ROUGE-L: exact repeats only."""
    op = Dialogue(**{"backend": {"type": "mock", "responses": script}, "min_turns": 2, "max_turns": 6,
                     "repeat_rouge": 1.0, **params})
    if tmp_path is not None:
        op.bind(cache_dir=tmp_path)
    op.ensure_setup()
    return op


def _run(op: Dialogue, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    result = op.process(from_rows(rows))
    return result.kept.to_pylist(), [] if result.rejected is None else result.rejected.to_pylist()


def test_turns_alternate_and_the_dialogue_is_openai_messages() -> None:
    kept, rejected = _run(_op(), DOCS)
    assert rejected == []
    first = kept[0]
    roles = [m["role"] for m in first["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert first["messages"][0]["content"].endswith(DOCS[0]["text"])
    assert [m["content"] for m in first["messages"][1:3]] == ["What about this: Rivers carry sand?", "Answer 1 on rivers."]
    assert first["messages"][5]["content"] == "What about this: Rivers reach the sea?"  # user turn i: sentence i
    assert first["text"].startswith("User: What about this: Rivers carry sand?\n\nAssistant: Answer 1 on rivers.\n\n"
                                    "User: What about this: Rivers carry silt?")
    assert (first["dialogue.turns"], first["dialogue.stop"]) == (6, "max_turns")
    assert first["dialogue.document"] == DOCS[0]["text"] and first["dialogue.persona"] is None
    # provenance: id from the parent, its source and license, the model and the tokens of every turn
    assert (first["id"], first["gen.parent"], first["source"], first["license"]) == ("d1-0", "d1", "docs", "CC0-1.0")
    assert first["gen.model"] == "mock" and first["gen.tokens_out"] > 0 and first["gen.cached"] is False
    assert kept[1]["source"] == "generate.dialogue" and "Bees make honey" in kept[1]["text"]


def test_each_round_is_one_batched_call() -> None:
    op = _op()
    sizes: list[int] = []
    generate = op.backend.generate
    op.backend.generate = lambda prompts, decoding: sizes.append(len(prompts)) or generate(prompts, decoding)
    _run(op, DOCS + [STOP])
    assert sizes == [3, 3, 3, 3, 2, 2]  # d3 ends after the answer to its "Thank you! [END]" (turn 4)
    assert op.take_usage()["requests"] == sum(sizes)


def test_persona_grounding_and_no_system_message() -> None:
    op = _op(persona_column="persona", document_column=None, include_system=False, max_turns=2)
    kept, _ = _run(op, [{"id": "p1", "persona": "a night-shift nurse"}])
    assert [m["role"] for m in kept[0]["messages"]] == ["user", "assistant"]
    assert kept[0]["dialogue.persona"] == "a night-shift nurse" and kept[0]["dialogue.document"] is None
    assert "You are a night-shift nurse." in json.dumps(op.backend.calls[0])


def test_end_marker_and_too_short() -> None:
    stop = STOP
    kept, rejected = _run(_op(), [stop])
    assert [m["content"] for m in kept[0]["messages"][3:]] == ["Thank you!", "Answer 2 on rain."]
    assert kept[0]["dialogue.stop"] == "end_marker" and kept[0]["dialogue.turns"] == 4 and rejected == []
    kept, rejected = _run(_op(min_turns=6), [stop])
    assert kept == []
    assert rejected[0]["_reason"] == "too_short: ended by the end marker after 4 turns (min_turns 6)"
    assert rejected[0]["id"] == "s-0" and len(rejected[0]["messages"]) == 5


def test_a_failed_turn_is_a_rejected_row_and_cuts_the_dialogue() -> None:
    rows = [EMPTY, BOOM]
    kept, rejected = _run(_op(), rows)
    by_id = {r["id"]: r for r in rejected}
    empty = by_id["e-0-t4"]
    assert empty["_reason"] == "turn_parse: turn 4: empty reply"
    assert Reason.parse(empty["_reason"]).rule == "turn_parse"
    assert (empty["dialogue.turn"], empty["dialogue.role"], empty["gen.raw"]) == (4, "assistant", "   ")
    boom = by_id["b-0-t4"]
    assert boom["_reason"].startswith("backend: transient: ConnectionError: server went away (turn 4)")
    assert boom["gen.raw"] is None
    # min_turns 2: both are kept, cut to their first exchange (the unanswered user turn dropped)
    assert [(k["id"], k["dialogue.turns"], k["dialogue.stop"]) for k in kept] == [("e-0", 2, "cut"), ("b-0", 2, "cut")]
    # min_turns 4: the same dialogues are rejected, by their failed turn only
    kept, rejected = _run(_op(min_turns=4), rows)
    assert kept == [] and [r["id"] for r in rejected] == ["e-0-t4", "b-0-t4"]


def test_a_repeated_turn_fails() -> None:
    op = Dialogue(backend={"type": "mock", "responses": {"curious person": "Same question?",
                                                         "helpful assistant": "Some answer."}},
                  min_turns=2, max_turns=4)
    op.ensure_setup()
    kept, rejected = _run(op, DOCS[:1])
    assert rejected[0]["_reason"] == "turn_parse: turn 3: repeats turn 1" and kept[0]["dialogue.turns"] == 2


def test_a_near_repeat_by_rouge_l_fails() -> None:
    kept, rejected = _run(_op(repeat_rouge=0.7), DOCS[:1])
    # "What about this: Rivers carry silt?" has ROUGE-L 0.83 with "What about this: Rivers carry sand?"
    assert rejected[0]["_reason"] == "turn_parse: turn 3: repeats turn 1" and kept[0]["dialogue.turns"] == 2


def test_tokens_are_counted_once_over_kept_and_rejected_rows() -> None:
    op = _op()
    kept, rejected = _run(op, DOCS + [EMPTY, {"id": "n", "text": None}])
    usage = op.take_usage()
    rows = kept + rejected
    assert sum(r["gen.tokens_out"] or 0 for r in rows) == usage["tokens_out"]
    assert sum(r["gen.tokens_in"] or 0 for r in rows) == usage["tokens_in"]
    assert {r["_reason"] for r in rejected} == {"turn_parse: turn 4: empty reply", "prompt: no persona or document"}


def test_rerun_is_answered_from_the_cache(tmp_path: Path) -> None:
    first_kept, first_rejected = _run(_op(tmp_path), DOCS + [EMPTY])
    op = _op(tmp_path)
    again_kept, again_rejected = _run(op, DOCS + [EMPTY])
    usage = op.take_usage()
    assert usage["requests"] == usage["cached"] > 0 and op.backend.backend.calls == []
    assert all(r["gen.cached"] for r in again_kept + again_rejected)

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "gen.cached"} for r in rows]

    assert strip(again_kept) == strip(first_kept) and strip(again_rejected) == strip(first_rejected)


@pytest.mark.parametrize("params, message", [
    ({"max_turns": 5}, "both must be even"),
    ({"min_turns": 6, "max_turns": 4}, "must not exceed max_turns"),
    ({"document_column": None}, "persona_column, document_column or both"),
])
def test_bad_parameters(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Dialogue(**params)


def test_reads_the_grounding_columns() -> None:
    assert Dialogue(persona_column="who").reads() == ["who", "text"]
    with pytest.raises(KeyError, match="column 'who' not in batch"):
        _op(persona_column="who").process(pa.table({"id": ["x"], "text": ["t"]}))


@pytest.mark.parametrize("fmt", ["openai", "sharegpt"])
def test_a_recipe_writes_the_dialogues_as_chat_data(tmp_path: Path, fmt: str) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    responses = {}  # the simulator's question about each focus sentence, then the answer to each question
    for d in DOCS:
        for k, sentence in enumerate(sentences(d["text"])[:2]):
            responses[f'"{sentence}"'] = f"Question {k + 1} on {sentence.rstrip('.')}?"
    for d in DOCS:
        for k, sentence in reversed(list(enumerate(sentences(d["text"])[:2]))):
            responses[f"Question {k + 1} on {sentence.rstrip('.')}?"] = f"Answer {k + 1}."
    backend = {"type": "mock", "responses": responses}
    recipe = {"name": "dlg", "input": {"path": str(docs), "format": "jsonl"},
              "steps": [{"op": "generate.dialogue", "params": {"min_turns": 2, "max_turns": 4, "backend": backend}}],
              "output": {"format": fmt}, "executor": {"workers": 1}}
    s = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False)
    rows = [json.loads(line) for f in sorted((s.run_dir / "data").glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2
    if fmt == "openai":
        assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant", "user", "assistant"]
        assert rows[0]["messages"][3]["content"] == "Question 2 on Rivers carry silt?"
    else:
        assert [m["from"] for m in rows[0]["conversations"]] == ["system", "human", "gpt", "human", "gpt"]
        assert rows[1]["conversations"][4]["value"] == "Answer 2."
    html = (s.run_dir / "report.html").read_text(encoding="utf-8")
    assert "words per assistant turn" in html and "Rejected by" not in html  # full dialogues, no rejects


def test_dialogue_recipe_runs_with_the_mock_backend(tmp_path: Path) -> None:
    s = run_recipe(REPO / "recipes" / "dialogue.yaml", runs_dir=tmp_path, progress=False,
                   overrides=[f"steps.0.params.backend={json.dumps(_EXAMPLE_BACKEND)}", "steps.0.params.max_turns=4"])
    step = s.stats["steps"][0]
    # persona seeds: 4 turns; a document's simulator is asked about a new sentence each turn, but this
    # scripted model asks the same question again: turn 3 repeats turn 1, under min_turns 4
    assert step["op"] == "generate.dialogue" and step["rows_in"] == 8 and step["dropped"] == {"turn_parse": 5}
    assert s.stats["steps"][-1]["rows_out"] == 1  # the scripted model says the same to every persona: dedup keeps one
    html = (s.run_dir / "report.html").read_text(encoding="utf-8")
    assert "turns per dialogue" in html and "mean 4.0" in html and "turn_parse: turn N: repeats turn N" in html


@pytest.mark.slow
def test_dialogue_recipe_runs_with_the_embedded_model(tmp_path: Path) -> None:
    seeds = [json.loads(line) for line in (REPO / "recipes" / "data" / "dialogue_seeds.jsonl").open(encoding="utf-8")]
    few = tmp_path / "seeds.jsonl"  # one persona, one document, one with both
    picked = [next(r for r in seeds if r.get("persona") and not r.get("document")),
              next(r for r in seeds if r.get("document") and not r.get("persona")),
              next(r for r in seeds if r.get("document") and r.get("persona"))]
    few.write_text("".join(json.dumps(r) + "\n" for r in picked), encoding="utf-8")
    s = run_recipe(REPO / "recipes" / "dialogue.yaml", runs_dir=tmp_path / "runs", progress=False,
                   overrides=[f"input.path={few}", "steps.0.params.max_turns=4", "steps.0.params.min_turns=2"])
    step = s.stats["steps"][0]
    assert step["llm"]["requests"] > 0 and step["rows_out"] + sum(step["dropped"].values()) > 0
    rows = [json.loads(line) for f in sorted((s.run_dir / "data").glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        turns = [m for m in row["messages"] if m["role"] != "system"]
        assert len(turns) % 2 == 0 and turns[0]["role"] == "user" and all(m["content"].strip() for m in turns)
    assert "turns per dialogue" in (s.run_dir / "report.html").read_text(encoding="utf-8")
