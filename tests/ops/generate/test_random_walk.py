"""generate.random_walk in recipes/knowledge_graph.yaml: the template questions (no model, the recipe's
default), rephrased by the mock backend (fast) and by the embedded model (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.runner import run_recipe
from tests.conftest import REPO

RECIPE = REPO / "recipes" / "knowledge_graph.yaml"


def _chat_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((run_dir / "data").glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines()]


def _template_run(tmp_path: Path) -> list[dict]:
    s = run_recipe(RECIPE, runs_dir=tmp_path, name="template", progress=False)
    step = s.stats["steps"][0]
    assert not (step.get("llm") or {}).get("requests")  # no model asked
    assert step["op"] == "generate.random_walk" and step["rows_in"] == 8
    assert step["dropped"] == {"duplicate_walk": 3}  # 16 walks, 3 repeat a walk from the same start
    return _chat_rows(s.run_dir)


def test_knowledge_graph_recipe_without_a_model(tmp_path: Path) -> None:
    rows = _template_run(tmp_path)
    assert len(rows) == 13
    for row in rows:
        user, assistant = row["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert user["content"].startswith("What is the ") and "So the answer is " in assistant["content"]
    faust = [r for r in rows if r["messages"][0]["content"] == "What is the birthplace of the author of Faust?"]
    assert faust and faust[0]["messages"][1]["content"].endswith("So the answer is Frankfurt.")


def test_knowledge_graph_recipe_rephrased_by_the_mock_backend(tmp_path: Path) -> None:
    questions = [r["messages"][0]["content"] for r in _template_run(tmp_path)]
    drift = "What is the birthplace of the author of Hamlet?"
    rewrites = {f"Rewrite this question: {q}": q.replace("What is the ", "Which is the ", 1) for q in questions}
    rewrites[f"Rewrite this question: {drift}"] = "Where was he born?"  # the start entity is gone
    backend = {"type": "mock", "responses": rewrites}
    s = run_recipe(RECIPE, runs_dir=tmp_path, name="mock", progress=False,
                   overrides=["steps.0.params.rephrase=true", f"steps.0.params.backend={json.dumps(backend)}"])
    step = s.stats["steps"][0]
    assert step["llm"]["requests"] == 13
    assert step["dropped"] == {"duplicate_walk": 3, "rephrase_drift": 1}
    rows = _chat_rows(s.run_dir)
    assert len(rows) == 12 and all(r["messages"][0]["content"].startswith("Which is the ") for r in rows)
    assert (s.run_dir / "report.html").is_file()


@pytest.mark.slow
def test_knowledge_graph_recipe_with_the_embedded_model(tmp_path: Path) -> None:
    s = run_recipe(RECIPE, runs_dir=tmp_path, progress=False,
                   overrides=["steps.0.params.rephrase=true", "steps.0.params.walks_per_row=1"])
    step = s.stats["steps"][0]
    assert step["llm"]["requests"] == 8 and step["llm"]["errors"] == 0  # one rewrite per walk
    assert set(step["dropped"]) <= {"rephrase_drift", "rephrase_leak", "rephrase_not_question", "empty"}
    assert step["rows_out"] + sum(step["dropped"].values()) == 8  # SmolLM2-135M mostly answers instead: few or none kept
    starts = [json.loads(line)["text"] for line in (REPO / "recipes" / "data" / "kg_starts.jsonl").open()]
    for row in _chat_rows(s.run_dir):
        question, answer = row["messages"][0]["content"], row["messages"][1]["content"]
        assert question.endswith("?") and any(e.lower() in question.lower() for e in starts)
        assert "So the answer is " in answer
