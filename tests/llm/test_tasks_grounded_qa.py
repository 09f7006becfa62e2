"""Grounded QA: the prompt, parsing of good and bad answers, the span check, and the operator."""

from __future__ import annotations

import pytest

from gristmill.llm.tasks import grounded_qa as qa
from gristmill.llm.types import ParseError
from gristmill.ops.generate.qa_from_documents import QAFromDocuments
from gristmill.records import from_rows

PASSAGE = ("The Rhine rises in the Swiss Alps and flows for about 1,230 kilometres.\n"
           "It  reaches the North Sea near Rotterdam, one of the busiest ports in Europe.")


def test_prompt_holds_the_passage_and_the_format() -> None:
    msgs = qa.format_prompt(PASSAGE)
    assert msgs[0]["role"] == "system" and PASSAGE in msgs[1]["content"]
    assert "Evidence:" in msgs[1]["content"]
    with pytest.raises(ParseError, match="empty passage"):
        qa.format_prompt("   ")


def test_parse_labelled_lines_json_and_markdown() -> None:
    good = qa.parse_qa("Question: Where does the Rhine reach the sea?\nAnswer: near Rotterdam\n"
                       "Evidence: \"It reaches the North Sea near Rotterdam\"")
    assert good == qa.QAPair("Where does the Rhine reach the sea?", "near Rotterdam",
                             "It reaches the North Sea near Rotterdam")
    js = qa.parse_qa('{"question": "How long is the Rhine?", "answer": "about 1,230 km", '
                     '"supporting span": "flows for about 1,230 kilometres"} trailing words')
    assert js.evidence == "flows for about 1,230 kilometres"
    md = qa.parse_qa("**Question**: Q?\n**Answer**: A\n**Evidence**: line one\ncontinues here\n\nQuestion: second?")
    assert md == qa.QAPair("Q?", "A", "line one continues here")
    with pytest.raises(ParseError, match="format: no evidence"):
        qa.parse_qa("Question: Where?\nAnswer: There")


def test_ground_finds_the_span_with_fuzzy_matching() -> None:
    pair = qa.QAPair("Where does the Rhine reach the sea?", "Rotterdam",
                     "It reaches the north sea near Rotterdam")  # case and double space differ
    g = qa.ground(PASSAGE, pair)
    assert PASSAGE[g.start:g.end] == "It  reaches the North Sea near Rotterdam"
    assert g.span_match == 100 and g.answer_overlap == 1.0
    typo = qa.QAPair("How long?", "1,230 kilometres", "flows for about 1.230 kilometers")
    assert qa.ground(PASSAGE, typo).span_match >= 90


def test_unsupported_answers_are_rejected_with_a_reason() -> None:
    invented = qa.QAPair("Where does it rise?", "in Austria", "The Rhine rises in the Austrian mountains.")
    with pytest.raises(ParseError, match=r"unsupported: answer not in passage \(span match \d+ < 90\)"):
        qa.ground(PASSAGE, invented)
    wrong_answer = qa.QAPair("Where does it rise?", "the Black Forest", "The Rhine rises in the Swiss Alps")
    with pytest.raises(ParseError, match=r"unsupported: answer not in span \(overlap 0.00 < 0.6\)"):
        qa.ground(PASSAGE, wrong_answer)
    yes = qa.QAPair("Is it long?", "Yes", "The Rhine rises in the Swiss Alps")
    with pytest.raises(ParseError, match="unsupported: answer has no content words"):
        qa.ground(PASSAGE, yes)


def test_parse_returns_the_row_fields() -> None:
    row = qa.parse("Question: How long is the Rhine?\nAnswer: about 1,230 kilometres\n"
                   "Evidence: flows for about 1,230 kilometres", PASSAGE)
    assert row["qa.evidence"] == "flows for about 1,230 kilometres"
    assert PASSAGE[row["qa.evidence_start"]:row["qa.evidence_end"]] == row["qa.evidence"]


def test_operator_with_mock_backend() -> None:
    answers = {
        "Rhine": "Question: Where does the Rhine reach the sea?\nAnswer: near Rotterdam\n"
                 "Evidence: It reaches the North Sea near Rotterdam",
        "Danube": "Question: Where does the Danube end?\nAnswer: in the Baltic\n"
                  "Evidence: The Danube ends in the Baltic.",
        "Seine": "I don't know.",
    }
    op = QAFromDocuments(backend={"type": "mock", "responses": answers}, keep_columns=["topic"])
    op.ensure_setup()
    batch = from_rows([
        {"id": "p1", "text": PASSAGE, "topic": "rivers", "license": "cc0"},
        {"id": "p2", "text": "The Danube flows into the Black Sea after passing ten countries.", "topic": "rivers"},
        {"id": "p3", "text": "The Seine flows through Paris.", "topic": "rivers"},
    ])
    result = op.process(batch)
    kept = result.kept.to_pylist()
    assert len(kept) == 1
    row = kept[0]
    assert (row["id"], row["instruction"], row["output"], row["input"]) == (
        "p1-0", "Where does the Rhine reach the sea?", "near Rotterdam", PASSAGE)
    assert row["topic"] == "rivers" and row["license"] == "cc0" and row["gen.parent"] == "p1"
    rejected = {r["id"]: r for r in result.rejected.to_pylist()}
    assert rejected["p2"]["_reason"].startswith("unsupported: answer not in passage")
    assert rejected["p2"]["gen.raw"].startswith("Question: Where does the Danube end?")
    assert rejected["p3"]["_reason"] == "format: no question in the completion"
