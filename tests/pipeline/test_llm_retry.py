"""Failed LLM requests and reruns: transient failures are retried, cached answers are not re-sent.

Every test runs gristmill against a real HTTP server on loopback (tests/llm/openai_fake.py)
and counts the requests it receives.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest

from gristmill.pipeline.worker import LLMRequestsFailed, check_llm_failures, prepare_retries
from gristmill.recipe import load_recipe
from gristmill.runner import plan, run_recipe
from tests.llm.openai_fake import CLOSE, FakeServer, free_port, ok, prompt_of

STEP = "00-generate.paraphrase"
TOPICS = ["rivers", "bread", "clocks", "owls", "salt", "kites"]


def _text(prompt: str) -> str:
    return prompt.rsplit("Text: ", 1)[-1]


class Flaky:
    """Answers 'In other words, <text>' (or ``answers[text]``); the first request whose prompt
    contains a key of ``fail`` gets that failure."""

    def __init__(self, fail: dict[str, Any] | None = None, answers: dict[str, str] | None = None,
                 default: Callable[[str], str] = lambda text: f"In other words, {text}.") -> None:
        self.fail = dict(fail or {})
        self.answers = answers or {}
        self.default = default
        self.lock = threading.Lock()
        self.server = FakeServer(self)

    def __call__(self, n: int, path: str, body: dict[str, Any]) -> Any:
        prompt = prompt_of(body)
        text = _text(prompt)
        with self.lock:
            key = next((k for k in self.fail if k in prompt), None)
            failure = self.fail.pop(key) if key is not None else None
        if failure is not None:
            return failure
        return ok(self.answers[text] if text in self.answers else self.default(text), chat=True)

    def texts(self) -> list[str]:
        return [_text(p) for p in self.server.prompts()]


@pytest.fixture
def flaky() -> Iterator[Any]:
    made: list[Flaky] = []

    def make(**kw: Any) -> Flaky:
        made.append(Flaky(**kw))
        return made[-1]

    yield make
    for f in made:
        f.server.close()


def _recipe(tmp_path: Path, url: str, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "text": f"doc {i} about {t}"}) + "\n"
                            for i, t in enumerate(TOPICS)))
    gen = {"op": "generate.paraphrase",
           "params": {"min_cos": None, "backend": {"type": "openai", "base_url": url, "max_retries": 0,
                                                   "concurrency": 1, "timeout_s": 5}}}
    return {"name": "retry", "input": {"path": str(data), "format": "jsonl", "shard_rows": 3},
            "steps": [gen, *(steps or [{"op": "filter.length", "params": {"min_words": 1}}])],
            "output": {"format": "jsonl"}, "executor": {"workers": 1}}


def _run(recipe: dict[str, Any], tmp_path: Path) -> Any:
    return run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)


def _rows(summary: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for p in summary.outputs for line in p.read_text().splitlines()]


def _reasons(summary: Any, step: str = STEP) -> dict[str, str]:
    f = summary.run_dir / "rejected" / f"{step}.parquet"
    return {r["id"]: r["_reason"] for r in pq.read_table(f).to_pylist()} if f.exists() else {}


def test_a_rerun_retries_transient_failures_and_reuses_every_cached_answer(flaky: Any, tmp_path: Path) -> None:
    f = flaky(fail={"doc 1 about bread": (503, {}, "busy"), "doc 2 about clocks": CLOSE})
    recipe = _recipe(tmp_path, f.server.url)
    first = _run(recipe, tmp_path)
    assert sorted(f.texts()) == sorted(f"doc {i} about {t}" for i, t in enumerate(TOPICS))
    assert _reasons(first) == {
        "d1": f"backend: transient: HTTP 503 Service Unavailable: busy ({f.server.url}, 1 attempt)",
        "d2": "backend: transient: connection closed by the server: Server disconnected without sending "
              f"a response. ({f.server.url}, 1 attempt)"}
    assert len(_rows(first)) == 4
    llm = first.stats["steps"][0]["llm"]
    assert (llm["requests"], llm["errors"], llm["errors_transient"]) == (6, 2, 2)
    assert check_llm_failures(first.stats["steps"]) is None  # some requests succeeded

    second = _run(recipe, tmp_path)  # the same command again
    assert f.texts()[6:] == ["doc 1 about bread", "doc 2 about clocks"]  # only the failed ones are sent
    rows = _rows(second)
    assert sorted(r["paraphrase.original"] for r in rows) == sorted(f"doc {i} about {t}"
                                                                   for i, t in enumerate(TOPICS))
    # shard 0 was recomputed: d0 from the cache, d1 and d2 sent again; shard 1 (no failures) stands
    assert {r["gen.parent"]: r["gen.cached"] for r in rows} == {
        "d0": True, "d1": False, "d2": False, "d3": False, "d4": False, "d5": False}
    assert _reasons(second) == {}
    gen, length = second.stats["steps"]
    assert not gen["cached"] and not length["cached"]  # the shard and the step after it were recomputed
    assert (gen["llm"]["errors"], gen["llm"]["errors_transient"]) == (0, 0)
    assert gen["rows_out"] == length["rows_in"] == length["rows_out"] == 6

    third = _run(recipe, tmp_path)
    assert len(f.server.requests) == 8 and len(_rows(third)) == 6
    assert all(s["cached"] for s in third.stats["steps"])


def test_an_unreachable_server_is_reported_as_every_request_failed(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    try:
        _run(_recipe(tmp_path, url), tmp_path)
        raised = None
    except LLMRequestsFailed as exc:  # the runner raises it (exit 1) once it calls check_llm_failures
        raised = str(exc)
    run_dir = tmp_path / "runs" / "retry"
    summary = SimpleNamespace(run_dir=run_dir, outputs=sorted((run_dir / "data").iterdir()),
                              stats=json.loads((run_dir / "stats.json").read_text()))
    reasons = _reasons(summary)
    assert len(reasons) == 6 and len(_rows(summary)) == 0
    assert set(reasons.values()) == {f"backend: transient: connection refused ({url}, 1 attempt)"}
    message = check_llm_failures(summary.stats["steps"])
    assert raised is None
    assert message is not None and "\n" not in message
    assert message == (f"step {STEP}: all 6 LLM requests failed, all transient (server unreachable, timeout, "
                       f"HTTP 429 or 5xx): the same command retries them; reasons in rejected/{STEP}.parquet")


def test_check_llm_failures_names_only_steps_whose_every_request_failed() -> None:
    steps = [{"step": "00-a", "llm": {"requests": 4, "errors": 4, "errors_transient": 0}},
             {"step": "01-b", "llm": {"requests": 4, "errors": 3, "errors_transient": 3}},
             {"step": "02-c", "llm": {"requests": 0, "errors": 0}},
             {"step": "03-d"},
             {"step": "04-e", "llm": {"requests": 2, "errors": 2, "errors_transient": 1}}]
    message = check_llm_failures(steps)
    assert message is not None
    assert "step 00-a: all 4 LLM requests failed, none transient" in message
    assert "step 04-e: all 2 LLM requests failed, 1 transient" in message
    assert "01-b" not in message and "02-c" not in message and "03-d" not in message
    assert check_llm_failures(steps[1:4]) is None and check_llm_failures([]) is None


def test_malformed_answers_are_named_and_not_retried_by_a_rerun(flaky: Any, tmp_path: Path) -> None:
    f = flaky(fail={"doc 0 about rivers": (200, {}, {"choices": []}),
                    "doc 4 about salt": (200, {}, {"choices": [{"message": {"role": "assistant"}}]})})
    recipe = _recipe(tmp_path, f.server.url)
    first = _run(recipe, tmp_path)
    assert _reasons(first) == {"d0": "backend: malformed response: empty choices",
                               "d4": "backend: malformed response: choices[0].message has no content"}
    assert first.stats["steps"][0]["llm"]["errors_transient"] == 0
    _run(recipe, tmp_path)
    assert len(f.server.requests) == 6  # not transient: the shards stand


def test_a_global_step_after_a_retried_shard_is_fitted_again(flaky: Any, tmp_path: Path) -> None:
    # d1's answer, once it comes, duplicates d4's: dedup must see both, so it must fit again
    same = "Some words that two rewrites share."
    f = flaky(fail={"doc 1 about bread": (502, {}, "")},
              answers={"doc 1 about bread": same, "doc 4 about salt": same})
    recipe = _recipe(tmp_path, f.server.url, steps=[{"op": "dedup.exact"},
                                                    {"op": "filter.length", "params": {"min_words": 1}}])
    first = _run(recipe, tmp_path)
    assert len(_rows(first)) == 5
    resolved = load_recipe(recipe)
    _, planned = plan(resolved, first.run_dir / "cache")
    assert prepare_retries(planned) == 1  # what the runner calls before running the steps
    assert not (planned[1].dir / "op.pkl").exists() and not list(planned[1].dir.glob("shard-*"))
    assert prepare_retries(planned) == 1  # idempotent: the marked shard stays until it is recomputed
    second = _run(recipe, tmp_path)
    assert f.texts()[6:] == ["doc 1 about bread"]
    assert sorted(r["paraphrase.original"] for r in _rows(second)) == [
        "doc 0 about rivers", "doc 1 about bread", "doc 2 about clocks", "doc 3 about owls", "doc 5 about kites"]
    assert _reasons(second, "01-dedup.exact") == {"d4-0": "duplicate: of d1-0"}
    assert prepare_retries(planned) == 0


def test_a_kill_while_replacing_a_retried_shard_resumes(flaky: Any, tmp_path: Path) -> None:
    f = flaky(fail={"doc 0 about rivers": (500, {}, "oops")})
    recipe = _recipe(tmp_path, f.server.url)
    first = _run(recipe, tmp_path)
    shard = next(first.run_dir.glob(f"cache/step-{STEP}-*/shard-00000"))
    os.rename(shard, shard.parent / ".shard-00000.old-deadbeef")  # killed between replace_dir's two renames
    second = _run(recipe, tmp_path)
    assert len(_rows(second)) == 6 and f.texts()[6:] == ["doc 0 about rivers"]
    assert not list(shard.parent.glob(".shard-*"))


def test_a_judge_step_retries_its_transient_failures_too(flaky: Any, tmp_path: Path) -> None:
    f = flaky(fail={"Response:\nanswer 2": (429, {"Retry-After": "0"}, "")},
              default=lambda text: "Score: 7\nRationale: fine.")
    recipe = _recipe(tmp_path, f.server.url)
    data = Path(recipe["input"]["path"])
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"question {i}", "text": f"answer {i}"})
                            + "\n" for i in range(4)))
    recipe["steps"] = [{"op": "judge.score", "params": {"backend": recipe["steps"][0]["params"]["backend"],
                                                        "instruction_column": "question",
                                                        "response_column": "text"}}]
    first = _run(recipe, tmp_path)
    errors = {r["id"]: r["judge.error"] for r in _rows(first)}
    assert errors == {"q0": None, "q1": None, "q3": None,
                      "q2": f"backend: transient: HTTP 429 Too Many Requests ({f.server.url}, 1 attempt)"}
    second = _run(recipe, tmp_path)
    assert len(f.server.requests) == 5 and "answer 2" in f.server.prompts()[-1]
    assert {r["id"]: (r["judge.score"], r["judge.error"]) for r in _rows(second)} == {
        f"q{i}": (7, None) for i in range(4)}



def test_cli_exits_1_with_the_reason_when_every_request_failed(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from gristmill.cli import app

    url = f"http://127.0.0.1:{free_port()}/v1"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(tmp_path, url)))
    res = CliRunner().invoke(app, ["run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert res.exit_code == 1, res.output
    assert f"step {STEP}: all 6 LLM requests failed" in res.output and "Traceback" not in res.output
    summary = run_recipe(_recipe(tmp_path, url), runs_dir=tmp_path / "runs", progress=False)
    assert summary.llm_failed is not None and summary.llm_failed.startswith(f"step {STEP}: all 6")
