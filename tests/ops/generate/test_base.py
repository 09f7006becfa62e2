from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest
from pydantic import Field

from gristmill import registry
from gristmill.llm.backends import UnsupportedDecoding
from gristmill.llm.types import ParseError
from gristmill.ops.generate.base import LLMAnnotator, LLMGenerator, LLMParams
from gristmill.records import from_rows
from gristmill.runner import run_recipe


class SplitTask:
    """Prompt 'Split: <text>'; the answer's '|'-separated parts become rows; 'bad' is a parse error."""

    def __init__(self, sep: str) -> None:
        self.sep = sep

    def format_prompt(self, row: dict[str, Any]) -> str:
        if not row.get("text"):
            raise ParseError("empty text")
        return f"Split: {row['text']}"

    def parse(self, text: str, row: dict[str, Any]) -> list[dict[str, Any]]:
        if "bad" in text:
            raise ParseError(f"unusable answer {text[:20]!r}")
        return [{"text": part.strip()} for part in text.split(self.sep) if part.strip()]


class SplitGenerator(LLMGenerator):
    """Test generator: splits answers into rows."""

    name = "test.split"
    example_params: ClassVar[dict[str, Any]] = {"backend": {"type": "mock", "responses": ["a | b"]}}

    class Params(LLMParams):
        sep: str = Field("|", description="Separator.")

    def make_task(self) -> SplitTask:
        return SplitTask(self.params.sep)


class ScoreTask:
    def format_prompt(self, row: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Rate: {row['text']}"}]

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        try:
            score = int(text.split("score=")[1].split()[0])
        except (IndexError, ValueError):
            raise ParseError("no score=N in the answer") from None
        return {"judge.score": score, "judge.rationale": text}


class ToyJudge(LLMAnnotator):
    """Test judge: parses 'score=N'."""

    name = "test.judge"
    columns = ("judge.score", "judge.rationale")
    namespace = "judge"

    def make_task(self) -> ScoreTask:
        return ScoreTask()


ANSWERS = {"one": "x | y", "two": "bad answer", "three": RuntimeError("HTTP 503 after 4 retries")}


def _batch() -> pa.Table:
    return from_rows([{"id": f"r{i}", "text": t, "source": "s.jsonl", "license": "cc0"}
                      for i, t in enumerate(["one", "two", "three", None])])


def test_generator_rows_parse_failures_and_backend_errors() -> None:
    op = SplitGenerator(backend={"type": "mock", "responses": ANSWERS})
    op.ensure_setup()
    result = op.process(_batch())
    kept = result.kept.to_pylist()
    assert [(r["id"], r["text"], r["gen.parent"], r["source"], r["license"]) for r in kept] == [
        ("r0-0", "x", "r0", "s.jsonl", "cc0"), ("r0-1", "y", "r0", "s.jsonl", "cc0")]
    assert all(r["gen.model"] == "mock" and r["gen.cached"] is False for r in kept)
    # a completion's tokens are counted once, on the first row it made
    assert [(r["gen.tokens_in"], r["gen.tokens_out"]) for r in kept] == [(2, 3), (0, 0)]
    rejected = {r["id"]: r for r in result.rejected.to_pylist()}
    assert rejected["r1"]["_reason"] == "parse: unusable answer 'bad answer'"
    assert rejected["r1"]["gen.raw"] == "bad answer"
    assert rejected["r2"]["_reason"] == "backend: permanent: RuntimeError: HTTP 503 after 4 retries"
    assert rejected["r3"]["_reason"] == "prompt: empty text"
    assert (rejected["r1"]["gen.tokens_in"], rejected["r1"]["gen.tokens_out"]) == (2, 2)
    # the row without a prompt was never sent
    assert op.backend.calls == ["Split: one", "Split: two", "Split: three"]
    assert op.take_usage() == {"requests": 3, "cached": 0, "errors": 1, "errors_transient": 0, "truncated": 0,
                               "tokens_in": 4, "tokens_out": 5, "seconds": pytest.approx(0, abs=0.5)}
    assert op.take_usage()["requests"] == 0


def test_generator_sends_a_shard_in_one_call_and_pickles_without_its_backend() -> None:
    op = SplitGenerator(**SplitGenerator.example_params)
    op.ensure_setup()
    op.process(_batch())
    clone = pickle.loads(pickle.dumps(op))
    assert clone.backend is None and clone.task is None
    clone.ensure_setup()
    assert clone.process(_batch()).kept.to_pylist() == op.process(_batch()).kept.to_pylist()


def test_generator_params_validate_backend_and_decoding() -> None:
    with pytest.raises(ValueError):
        SplitGenerator(backend={"type": "nope"})
    with pytest.raises(ValueError):
        SplitGenerator(decoding={"temprature": 1})
    op = SplitGenerator(decoding={"max_tokens": 7, "stop": ["\n"]})
    assert op.params.decoding.max_tokens == 7 and op.params.backend.type == "llama_cpp"


def test_unsupported_decoding_fails_at_setup_before_any_request() -> None:
    op = SplitGenerator(backend={"type": "openai", "base_url": "http://127.0.0.1:9/v1"},
                        decoding={"num_beams": 3})
    with pytest.raises(UnsupportedDecoding, match="transformers"):
        op.ensure_setup()


def test_annotator_adds_columns_and_null_scores_on_failure() -> None:
    answers = {"one": "score=8 because", "two": "no idea", "three": TimeoutError("read timeout")}
    op = ToyJudge(backend={"type": "mock", "responses": answers})
    op.ensure_setup()
    batch = from_rows([{"id": f"r{i}", "text": t} for i, t in enumerate(["one", "two", "three"])])
    result = op.process(batch)
    assert result.rejected is None
    rows = result.kept.to_pylist()
    assert [r["judge.score"] for r in rows] == [8, None, None]
    assert [r["judge.error"] for r in rows] == [None, "parse: no score=N in the answer",
                                                "backend: transient: TimeoutError: read timeout"]
    assert rows[1]["judge.raw"] == "no idea" and rows[0]["judge.raw"] is None
    assert [r["judge.tokens_out"] for r in rows] == [2, 2, 0]
    assert set(op.writes()) <= set(result.kept.column_names)


def test_runner_caches_completions_in_the_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN, "test.split", f"{__name__}:SplitGenerator")
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(5)))
    recipe = {"name": "gen", "input": {"path": str(data), "format": "jsonl", "shard_rows": 2},
              "steps": [{"op": "test.split", "params": {"backend": {"type": "mock", "responses": ["p | q"]}}}],
              "output": {"format": "jsonl"}, "executor": {"workers": 1}}
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)
    assert (summary.run_dir / "llm-cache.sqlite").is_file()
    out = [json.loads(line) for p in summary.outputs for line in p.read_text().splitlines()]
    assert len(out) == 10 and not any(r["gen.cached"] for r in out)
    llm = summary.stats["steps"][0]["llm"]  # backend usage summed over shards into stats.json
    assert llm["requests"] == 5 and llm["cached"] == 0
    # a changed separator re-runs the step, but every request is answered from the cache
    recipe["steps"][0]["params"]["sep"] = "q"
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)
    out = [json.loads(line) for p in summary.outputs for line in p.read_text().splitlines()]
    assert len(out) == 5 and all(r["gen.cached"] and r["text"] == "p |" for r in out)
    assert summary.stats["steps"][0]["llm"]["cached"] == 5
