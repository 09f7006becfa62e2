"""``generate.qa_from_documents``: grounded question/answer pairs from passages."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from gristmill.llm.tasks import grounded_qa
from gristmill.llm.types import Decoding, ParseError, Prompt, TaskOutput
from gristmill.ops.generate.base import LLMGenerator, LLMParams
from gristmill.ops.generate.common import example_text


class _QATask:
    def __init__(self, p: QAFromDocuments.Params) -> None:
        self.p = p

    def format_prompt(self, row: dict[str, Any]) -> Prompt:
        return grounded_qa.format_prompt(row.get(self.p.text_column) or "")

    def parse(self, text: str, row: dict[str, Any]) -> TaskOutput | list[dict[str, Any]]:
        passage = row[self.p.text_column]
        try:
            qa = grounded_qa.parse(text, passage, min_span_match=self.p.min_span_match,
                                   min_answer_overlap=self.p.min_answer_overlap)
        except ParseError as exc:  # the task's own rule names ('unsupported', 'format') become the reason
            return TaskOutput(reason=str(exc))
        new = {"instruction": qa["question"], "input": passage if self.p.include_passage else "",
               "output": qa["answer"], **qa}
        new["text"] = example_text(new["instruction"], new["input"], new["output"])
        new.update({c: row.get(c) for c in self.p.keep_columns})
        return [new]


class QAFromDocuments(LLMGenerator):
    """Grounded question/answer pairs from passages, each with the span of the passage that supports it.

    One question per input row (``text_column``). The model returns the question, the
    answer and the supporting sentence; the span must be found in the passage (rapidfuzz
    partial_ratio >= ``min_span_match``) and must contain the answer's content words
    (share >= ``min_answer_overlap``). Rows: ``instruction`` (the question), ``input``
    (the passage, unless ``include_passage`` is off), ``output`` (the answer),
    ``question``, ``answer``, ``qa.evidence`` (the passage's own text at the match) with
    ``qa.evidence_start`` / ``qa.evidence_end``, ``qa.span_match``, ``qa.answer_overlap``.
    Rejected: ``unsupported: answer not in passage (span match 62 < 90)``, ``unsupported:
    answer not in span (overlap 0.33 < 0.6)``, ``format: no evidence in the completion``,
    ``prompt: empty passage``, ``backend: ...``.
    """

    name = "generate.qa_from_documents"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"backend": {"type": "mock", "responses": [
        "Question: How many words are in it?\nAnswer: a few words\nEvidence: plain ASCII text with a few words in it"]}}

    class Params(LLMParams):
        decoding: Decoding = Field(default_factory=lambda: Decoding(max_tokens=200),
                                   description="Decoding settings (greedy, 200 tokens by default).")
        text_column: str = Field("text", description="Column holding the passages.")
        min_span_match: float = Field(90.0, ge=0, le=100,
                                      description="Least rapidfuzz partial_ratio of the quoted span in the passage.")
        min_answer_overlap: float = Field(0.6, ge=0, le=1,
                                          description="Least share of the answer's content words found in the span.")
        include_passage: bool = Field(True, description="Put the passage in the input column (reading "
                                                        "comprehension); off: closed-book QA.")
        keep_columns: list[str] = Field(default_factory=list, description="Input columns copied to each new row.")

    def make_task(self) -> _QATask:
        return _QATask(self.params)

    def reads(self) -> list[str]:
        return [self.params.text_column, *self.params.keep_columns]

    def writes(self) -> list[str]:
        return ["instruction", "input", "output", "text", "question", "answer", "qa.evidence", "qa.evidence_start",
                "qa.evidence_end", "qa.span_match", "qa.answer_overlap", *super().writes()]
