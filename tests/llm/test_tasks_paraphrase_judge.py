"""Paraphrase (copy and drift checks with MiniLM) and the LLM judge (score parsing, keep the best)."""

from __future__ import annotations

import pytest

from gristmill.llm.tasks import judge, paraphrase
from gristmill.llm.types import ParseError
from gristmill.ops.generate.paraphrase import Paraphrase
from gristmill.ops.judge import JudgeScore
from gristmill.records import from_rows

# ---- paraphrase ------------------------------------------------------------------------


def test_paraphrase_prompt_and_parse() -> None:
    msgs = paraphrase.format_prompt("The cat sat on the mat.", "formal")
    assert "formal register" in msgs[0]["content"] and msgs[0]["content"].endswith("Text: The cat sat on the mat.")
    with pytest.raises(ParseError, match="empty text"):
        paraphrase.format_prompt(" ")
    assert paraphrase.parse('Rewritten text: "A cat was sitting on the mat."', "The cat sat on the mat.") == \
        "A cat was sitting on the mat."
    with pytest.raises(ParseError, match="copy: identical to input"):
        paraphrase.parse("the cat  sat on the MAT.", "The cat sat on the mat.")
    with pytest.raises(ParseError, match="empty"):
        paraphrase.parse('""', "x")


def test_similarity_reason() -> None:
    assert paraphrase.similarity_reason(0.61) == "drift: cos 0.61 < 0.8"
    assert paraphrase.similarity_reason(0.9) is None
    assert paraphrase.similarity_reason(0.995, max_cos=0.98) == "copy: cos 0.995 > 0.98"


def test_paraphrase_operator_rejects_drift_with_minilm() -> None:
    answers = {
        "cat sat": "A cat was sitting on the mat.",
        "stock market": "My grandmother grows tomatoes in her garden.",
        "same words": "Same words here.",
    }
    op = Paraphrase(backend={"type": "mock", "responses": answers}, min_cos=0.8)
    op.ensure_setup()
    batch = from_rows([{"id": "a", "text": "The cat sat on the mat.", "label": "pets"},
                       {"id": "b", "text": "The stock market fell sharply on Monday.", "label": "news"},
                       {"id": "c", "text": "same words here.", "label": "x"}])
    result = op.process(batch)
    kept = result.kept.to_pylist()
    assert [(r["id"], r["text"], r["label"], r["paraphrase.original"]) for r in kept] == [
        ("a-0", "A cat was sitting on the mat.", "pets", "The cat sat on the mat.")]
    assert kept[0]["paraphrase.cos"] >= 0.8
    rejected = {r["id"]: r["_reason"] for r in result.rejected.to_pylist()}
    assert rejected["b-0"].startswith("drift: cos ") and float(rejected["b-0"].split()[2]) < 0.8
    assert rejected["c"] == "copy: identical to input"


def test_paraphrase_keep_original_without_the_model() -> None:
    op = Paraphrase(backend={"type": "mock", "responses": ["Another wording."]}, min_cos=None, keep_original=True)
    op.ensure_setup()
    assert op._embed is None
    out = op.process(from_rows([{"id": "a", "text": "One wording."}])).kept.to_pylist()
    assert [(r["id"], r["text"]) for r in out] == [("a", "One wording."), ("a-0", "Another wording.")]


# ---- judge -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, score", [
    ("Score: 8\nRationale: Correct and clear.", 8.0),
    ("**Score**: 7/10\n**Rationale**: fine", 7.0),
    ("Rating: 6.5 out of 10. Mostly right.", 6.5),
    ("9/10 - excellent answer", 9.0),
    ("3\nThe answer is off-topic.", 3.0),
    ('{"score": 4, "rationale": "thin"}', 4.0),
])
def test_judge_parse_variants(text: str, score: float) -> None:
    assert judge.parse(text)["judge.score"] == score


def test_judge_parse_rationale_and_failures() -> None:
    assert judge.parse("Score: 8\nRationale: Correct and clear.")["judge.rationale"] == "Correct and clear."
    assert judge.parse('{"score": 4, "rationale": "thin"}')["judge.rationale"] == "thin"
    with pytest.raises(ParseError, match="no_score"):
        judge.parse("I like it.")
    with pytest.raises(ParseError, match="score_out_of_range: 11"):
        judge.parse("Score: 11")


def test_judge_prompt() -> None:
    msgs = judge.format_prompt({"instruction": "Add 2 and 3.", "input": "", "output": "5"})
    content = msgs[-1]["content"]
    assert "Instruction:\nAdd 2 and 3." in content and "Input:" not in content and "Response:\n5" in content
    assert "Score: <a number from 1 to 10>" in content
    assert "Input:\nctx" in judge.format_prompt({"instruction": "Q", "input": "ctx", "output": "A"})[-1]["content"]
    with pytest.raises(ParseError, match="missing output"):
        judge.format_prompt({"instruction": "Q"})


def _rows():
    return from_rows([{"id": f"r{i}", "instruction": f"task {i}", "input": "", "output": f"answer {i}"}
                      for i in range(4)])


ANSWERS = {"task 0": "Score: 9\nRationale: great", "task 1": "Score: 4\nRationale: weak",
           "task 2": "cannot judge", "task 3": "Rating: 7/10"}


def test_judge_annotates_without_dropping_by_default() -> None:
    op = JudgeScore(backend={"type": "mock", "responses": ANSWERS})
    op.ensure_setup()
    result = op.process(_rows())
    assert result.rejected is None
    rows = result.kept.to_pylist()
    assert [r["judge.score"] for r in rows] == [9.0, 4.0, None, 7.0]
    assert rows[2]["judge.error"].startswith("parse: no_score") and rows[2]["judge.raw"] == "cannot judge"
    assert op.rules() == [] and op.score_columns() == ["judge.score"]


def test_judge_keeps_the_best() -> None:
    op = JudgeScore(backend={"type": "mock", "responses": ANSWERS}, min_score=7)
    op.ensure_setup()
    result = op.process(_rows())
    assert [r["id"] for r in result.kept.to_pylist()] == ["r0", "r2", "r3"]
    assert [(r["id"], r["_reason"]) for r in result.rejected.to_pylist()] == [("r1", "judge_score: 4 < 7")]
    strict = JudgeScore(backend={"type": "mock", "responses": ANSWERS}, min_score=7, drop_unscored=True)
    strict.ensure_setup()
    rejected = strict.process(_rows()).rejected.to_pylist()
    assert [r["id"] for r in rejected] == ["r1", "r2"]
    assert rejected[1]["_reason"].startswith("judge_unscored: parse: no_score")
    annotate_only = JudgeScore(backend={"type": "mock", "responses": ANSWERS}, min_score=7, drop=False)
    annotate_only.ensure_setup()
    assert annotate_only.process(_rows()).rejected is None
