"""Provider batch files (issue 13): ``gristmill batch prepare`` writes a recipe's requests as an OpenAI Batch
JSONL keyed by response-cache key, a server answers them (the test sends each body itself and writes the
Batch output format), ``gristmill batch collect`` stores the answers, and the recipe then runs with its
server down, from the cache alone, to the output of a direct run against the server."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from gristmill.api import load_run, run
from gristmill.cli import app
from gristmill.llm.cache import ResponseCache, cache_key
from gristmill.llm.types import Decoding
from tests.llm.llama_server import smollm2_server
from tests.llm.openai_fake import FakeServer, free_port

cli = CliRunner()
ROWS = [{"id": "a", "text": "fruit", "instruction": "Name a fruit that is yellow.", "output": "A banana."},
        {"id": "b", "text": "capital", "instruction": "What is the capital of Italy?", "output": "Rome."},
        {"id": "c", "text": "sum", "instruction": "Add two and three.", "output": "Five."}]


def recipe_file(tmp: Path, steps: list[dict[str, Any]], rows: list[dict[str, Any]] = ROWS) -> Path:
    (tmp / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "batched", "input": {"path": "in.jsonl", "format": "jsonl"},
                                    "steps": steps, "output": {"format": "jsonl"},
                                    "executor": {"workers": 1}}))
    return path


def judge(url: str) -> list[dict[str, Any]]:
    return [{"op": "judge.score", "params": {"backend": {"type": "openai", "base_url": url, "max_retries": 0},
                                             "decoding": {"max_tokens": 16}}}]


def answer_batch(requests: Path, url: str, results: Path) -> int:
    """Send each prepared request's body to the server at ``url`` and write the Batch output file."""
    lines = [json.loads(ln) for ln in requests.read_text().splitlines()]
    with open(results, "w") as f:
        for n, req in enumerate(lines):
            assert req["method"] == "POST" and req["url"] == "/v1/chat/completions"
            resp = httpx.post(url + req["url"].removeprefix("/v1"), json=req["body"], timeout=120)
            f.write(json.dumps({"id": f"batch_req_{n}", "custom_id": req["custom_id"],
                                "response": {"status_code": resp.status_code, "request_id": f"r{n}",
                                             "body": resp.json()}, "error": None}) + "\n")
    return len(lines)


def invoke(*args: str) -> Any:
    result = cli.invoke(app, list(args))
    return result


def output_rows(run_dir: Path) -> list[dict[str, Any]]:
    rows = load_run(run_dir).data.to_pylist()
    return [{k: v for k, v in r.items() if not k.endswith(".cached")} for r in rows]


def llm_usage(run_dir: Path) -> dict[str, Any]:
    stats = json.loads((run_dir / "stats.json").read_text())
    return next(st["llm"] for st in stats["steps"] if st.get("llm"))


# ---- against a real server: llama-cpp-python's, serving the packaged SmolLM2 ---------------------

@pytest.fixture()
def llama_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    import llama_cpp.server  # noqa: F401 - llama-cpp-python[server], in the dev extra, serves the model

    with smollm2_server(tmp_path / "server.log") as served:
        yield served


def test_prepare_collect_then_run_with_the_server_down(llama_server: tuple[str, subprocess.Popen],
                                                       tmp_path: Path) -> None:
    url, proc = llama_server
    recipe = recipe_file(tmp_path, judge(url))
    direct = run(recipe, runs_dir=tmp_path / "direct", progress=False, report=False).run_dir

    requests = tmp_path / "requests.jsonl"
    res = invoke("batch", "prepare", str(recipe), "--out-file", str(requests), "--runs-dir", str(tmp_path / "runs"))
    assert res.exit_code == 0, res.output
    assert "3 request(s) of step 00-judge.score" in res.output
    lines = [json.loads(ln) for ln in requests.read_text().splitlines()]
    assert len(lines) == 3 and len({ln["custom_id"] for ln in lines}) == 3
    for ln in lines:  # custom_id is the response-cache key of exactly this request
        body = ln["body"]
        assert body["model"] == "default" and body["max_tokens"] == 16 and body["temperature"] == 0
        assert ln["custom_id"] == cache_key("openai", f"default@{url}", body["messages"], Decoding(max_tokens=16))
    assert not (tmp_path / "runs").exists()  # prepare writes nothing in the run directory

    results = tmp_path / "results.jsonl"
    answer_batch(requests, url, results)
    res = invoke("batch", "collect", str(results), "--recipe", str(recipe), "--runs-dir", str(tmp_path / "runs"))
    assert res.exit_code == 0, res.output
    assert "3 answer(s) stored" in res.output
    assert len(ResponseCache(tmp_path / "runs" / "batched" / "llm-cache.sqlite")) == 3

    res = invoke("batch", "prepare", str(recipe), "--out-file", str(requests), "--runs-dir", str(tmp_path / "runs"))
    assert res.exit_code == 0 and "nothing to send" in res.output and requests.read_text() == ""

    proc.terminate()
    proc.wait(30)
    with pytest.raises(httpx.ConnectError):
        httpx.post(url + "/chat/completions", json={}, timeout=5)
    batched = run(recipe, runs_dir=tmp_path / "runs", progress=False, report=False).run_dir
    usage = llm_usage(batched)
    assert usage["requests"] == usage["cached"] == 3 and usage["errors"] == 0
    assert output_rows(batched) == output_rows(direct)


# ---- a deterministic stdlib server: stages, errors, refusals -----------------------------------

WORDS = ("amber bright cedar delta ember fable garnet harbor island juniper kettle lantern meadow nectar orchid "
         "pebble quartz river saffron timber umber velvet willow yonder zephyr basil copper dune").split()


def reply(_: int, path: str, body: dict[str, Any]) -> Any:
    digest = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).digest()
    text = " ".join(WORDS[b % len(WORDS)] for b in digest[:7]).capitalize() + "."
    return 200, {}, {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 7, "completion_tokens": 7}}


@pytest.fixture()
def fake() -> Iterator[FakeServer]:
    server = FakeServer(reply)
    yield server
    server.close()


def test_a_dialogue_is_prepared_one_turn_at_a_time(fake: FakeServer, tmp_path: Path) -> None:
    rows = [{"id": f"d{i}", "topic": t, "text": f"A short note about {t}."} for i, t in enumerate(["tea", "rain"])]
    steps = [{"op": "generate.dialogue", "params": {
        "min_turns": 2, "max_turns": 4, "backend": {"type": "openai", "base_url": fake.url, "max_retries": 0},
        "decoding": {"max_tokens": 24}}}]
    recipe = recipe_file(tmp_path, steps, rows)
    direct = run(recipe, runs_dir=tmp_path / "direct", progress=False, report=False).run_dir
    sent_direct = len(fake.requests)
    runs = ["--runs-dir", str(tmp_path / "runs")]
    stages = []
    for stage in range(6):
        requests, results = tmp_path / f"req{stage}.jsonl", tmp_path / f"res{stage}.jsonl"
        res = invoke("batch", "prepare", str(recipe), "--out-file", str(requests), *runs)
        assert res.exit_code == 0, res.output
        if "nothing to send" in res.output:
            break
        stages.append(answer_batch(requests, fake.url, results))
        res = invoke("batch", "collect", str(results), "--recipe", str(recipe), *runs)
        assert res.exit_code == 0, res.output
    assert stages == [2, 2, 2, 2]  # user, assistant, user, assistant: each turn waits for the one before
    assert sum(stages) == sent_direct
    fake.close()
    batched = run(recipe, runs_dir=tmp_path / "runs", progress=False, report=False).run_dir
    usage = llm_usage(batched)
    assert usage["errors"] == 0 and usage["cached"] == usage["requests"] == 8
    assert output_rows(batched) == output_rows(direct)


def test_collect_reports_errors_unknown_ids_and_a_truncated_file(fake: FakeServer, tmp_path: Path) -> None:
    recipe = recipe_file(tmp_path, judge(fake.url))
    runs = ["--runs-dir", str(tmp_path / "runs")]
    requests, results = tmp_path / "req.jsonl", tmp_path / "res.jsonl"
    assert invoke("batch", "prepare", str(recipe), "--out-file", str(requests), *runs).exit_code == 0
    answer_batch(requests, fake.url, results)
    good = results.read_text().splitlines()
    ids = [json.loads(ln)["custom_id"] for ln in good]

    # a download cut in the middle of a line: reported with its line, nothing stored
    results.write_text(good[0] + "\n" + good[1] + "\n" + good[2][:40])
    res = invoke("batch", "collect", str(results), "--recipe", str(recipe), *runs)
    assert res.exit_code == 2 and "res.jsonl:3: not a JSON line (truncated?)" in res.output
    assert not (tmp_path / "runs" / "batched" / "llm-cache.sqlite").exists()

    failed = {"id": "x", "custom_id": ids[1], "response": None,
              "error": {"code": "batch_expired", "message": "This request could not be executed"}}
    refused = {"id": "y", "custom_id": ids[2], "response": {"status_code": 400, "body": {
        "error": {"message": "Invalid 'max_tokens'", "type": "invalid_request_error"}}}, "error": None}
    stranger = {**json.loads(good[0]), "custom_id": "f" * 64}
    results.write_text("\n".join([good[0], json.dumps(failed), json.dumps(refused), json.dumps(stranger)]) + "\n")
    res = invoke("batch", "collect", str(results), "--recipe", str(recipe), *runs)
    assert res.exit_code == 1, res.output
    assert "1 answer(s) stored" in res.output
    assert f"{ids[1]}: error: This request could not be executed" in res.output
    assert f"{ids[2]}: HTTP 400: Invalid 'max_tokens'" in res.output
    assert f"{'f' * 64}: unknown custom_id" in res.output
    cache = ResponseCache(tmp_path / "runs" / "batched" / "llm-cache.sqlite")
    assert set(cache.get_many(ids + ["f" * 64])) == {ids[0]}

    # prepare again: only the two that failed are left; --run with --requests takes the same file
    res = invoke("batch", "prepare", str(recipe), "--out-file", str(requests), *runs)
    assert "2 request(s)" in res.output
    assert {json.loads(ln)["custom_id"] for ln in requests.read_text().splitlines()} == {ids[1], ids[2]}
    results.write_text("\n".join(good) + "\n")
    res = invoke("batch", "collect", str(results), "--run", str(tmp_path / "runs" / "batched"),
                 "--requests", str(requests))
    assert res.exit_code == 0 and "2 answer(s) stored" in res.output and "1 there already" in res.output


def test_only_openai_steps_with_the_cache_are_prepared(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    out = ["--out-file", str(tmp_path / "r.jsonl"), "--runs-dir", str(tmp_path / "runs")]
    mock = recipe_file(tmp_path, [{"op": "judge.score", "params": {"backend": {"type": "mock", "responses": ["7"]}}}])
    res = invoke("batch", "prepare", str(mock), *out)
    assert res.exit_code == 2 and "uses the mock backend" in res.output
    nocache = recipe_file(tmp_path, [{"op": "judge.score", "params": {
        "backend": {"type": "openai", "base_url": url}, "cache": False}}])
    res = invoke("batch", "prepare", str(nocache), *out)
    assert res.exit_code == 2 and "cache: false" in res.output
    plain = recipe_file(tmp_path, [{"op": "dedup.exact"}])
    res = invoke("batch", "prepare", str(plain), *out)
    assert res.exit_code == 2 and "no LLM step" in res.output
    two = recipe_file(tmp_path, [{"op": "dedup.exact"}, *judge(url)])
    res = invoke("batch", "prepare", str(two), "--step", "0", *out)
    assert res.exit_code == 2 and "its LLM steps: 1 (01-judge.score)" in res.output
