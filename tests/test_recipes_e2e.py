"""The shipped recipes, end to end: the default job (mock model: fast; embedded model: slow), the
curation sample (fast) and the Gutenberg sample (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.runner import run_recipe
from tests.conftest import REPO, SHARED_DATA


# A mock model for the default job: each Self-Instruct prompt kind gets a fixed completion; the
# instance carries an e-mail address (not at example.com: reserved domains are not PII) that must not
# reach the chat data.
_MOCK_BACKEND = {"type": "mock", "responses": {
    "Is it classification?": "No",
    "Come up with examples": "Example 1\nInput: the spring picnic\nOutput: Write to jane.doe@gmail.com by Friday.",
    "Come up with a series of tasks": " Describe a rainy afternoon in a small town.\n"
                                      "10. List three uses for an old wooden chair.\n"
                                      "11. Write an invitation to a neighbourhood picnic.",
}}


def _chat_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((run_dir / "data").glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines()]


def test_default_recipe_generates_curates_and_audits_chat_data(tmp_path: Path) -> None:
    overrides = [f"steps.0.params.backend={json.dumps(_MOCK_BACKEND)}", "steps.0.params.num_instructions=3",
                 "steps.0.params.max_rounds=2"]
    s = run_recipe(REPO / "recipes" / "default.yaml", runs_dir=tmp_path, overrides=overrides, progress=False)
    ops = [st["op"] for st in s.stats["steps"]]
    assert ops[0] == "generate.self_instruct" and ops[-1] == "toxicity.score"
    assert {"clean.normalize", "filter.length", "dedup.exact", "pii.detect", "pii.redact"} <= set(ops)
    assert s.stats["input"]["rows"] == 38  # our seed tasks
    rows = _chat_rows(s.run_dir)
    assert len(rows) == 3
    for row in rows:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    text = json.dumps(rows)
    assert "Describe a rainy afternoon" in text and "the spring picnic" in text
    assert "jane.doe@gmail.com" not in text and "<EMAIL_ADDRESS>" in text
    assert (s.run_dir / "report.html").is_file()
    card = (s.run_dir / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert "generate.self_instruct" in card
    assert "Apache-2.0" in card  # generated rows carry the seeds' license into the card


@pytest.mark.slow
def test_default_recipe_runs_with_the_embedded_model(tmp_path: Path) -> None:
    s = run_recipe(REPO / "recipes" / "default.yaml", runs_dir=tmp_path, progress=False)
    assert s.stats["steps"][-1]["rows_out"] > 0
    rows = _chat_rows(s.run_dir)
    assert rows and all(r["messages"][0]["role"] == "user" and r["messages"][-1]["content"] for r in rows)
    assert (s.run_dir / "report.html").is_file() and (s.run_dir / "DATASET_CARD.md").is_file()


def test_curation_sample_recipe_runs_from_the_repository_alone(tmp_path: Path) -> None:
    s = run_recipe(REPO / "recipes" / "curate_sample.yaml", runs_dir=tmp_path, progress=False)
    stats = s.stats
    assert stats["input"]["quarantined"] == 5  # the five malformed lines written on purpose
    reasons = {json.loads(line)["reason"].split(":")[0] for line in (s.run_dir / "quarantine.jsonl").open()}
    assert reasons == {"invalid JSON", "invalid UTF-8 at byte 48", "empty text", "missing required field 'text'",
                       "not a JSON object"}
    by_op = {st["op"]: st for st in stats["steps"]}
    assert by_op["dedup.exact"]["dropped"].get("duplicate", 0) >= 5
    assert by_op["filter.length"]["dropped"].get("min_words", 0) >= 1
    text = (s.run_dir / "data" / "train.jsonl").read_text(encoding="utf-8")
    assert "<script>" not in text and "â€" not in text  # HTML stripped, mojibake repaired
    html = (s.run_dir / "report.html").read_text(encoding="utf-8")
    assert "Rows through the steps" in html and "<svg" in html


@pytest.mark.slow
def test_gutenberg_recipe_writes_a_complete_run(tmp_path: Path) -> None:
    assert (SHARED_DATA / "gutenberg_sample.jsonl.gz").exists()
    s = run_recipe(REPO / "recipes" / "gutenberg.yaml", runs_dir=tmp_path, progress=False)
    stats = s.stats
    assert stats["input"]["rows"] > 10_000 and stats["input"]["ids_renamed"] > 0  # one book appears twice
    assert stats["steps"][2]["dropped"]["duplicate"] > 100  # licence boilerplate and the repeated book
    assert {p.name for p in (s.run_dir / "data").iterdir()} == {"train.parquet", "test.parquet"}
    html = (s.run_dir / "report.html").read_text(encoding="utf-8")
    for step in stats["steps"]:
        assert step["step"] in html
