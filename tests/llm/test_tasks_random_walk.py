"""Random walks over the example knowledge graph: loading, walking, questions and the answer check."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gristmill.llm.tasks import random_walk as rw
from gristmill.llm.types import ParseError
from gristmill.ops.generate.random_walk import RandomWalkQA
from gristmill.records import from_rows
from gristmill.runner import run_recipe

REPO = Path(__file__).resolve().parents[2]
KG = REPO / "recipes" / "data" / "kg_triples.csv"


@pytest.fixture(scope="module")
def graph() -> rw.Graph:
    return rw.Graph.from_triples(rw.load_triples(KG))


def test_example_graph_is_loaded(graph: rw.Graph) -> None:
    triples = rw.load_triples(KG)
    assert 100 <= len(triples) <= 200 and len(set(triples)) == len(triples)
    assert ("Radium", "discoverer") in [(h, r) for h, r, _ in triples]
    assert len(graph) == len(triples)


def test_load_jsonl_with_aliases_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "kg.jsonl"
    p.write_text(json.dumps({"subject": "A", "predicate": "next", "object": "B"}) + "\n\n"
                 + json.dumps({"head": "B", "relation": "next", "tail": "C"}) + "\n")
    assert rw.load_triples(p) == [("A", "next", "B"), ("B", "next", "C")]
    bad = tmp_path / "bad.csv"
    bad.write_text("head,relation,tail\nA,next,\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: a triple needs"):
        rw.load_triples(bad)


def test_question_and_evidence_nest_the_relations() -> None:
    walk = rw.Walk((("Hamlet", "author", "William Shakespeare"),
                    ("William Shakespeare", "birthplace", "Stratford-upon-Avon"),
                    ("Stratford-upon-Avon", "country", "England")))
    assert rw.question_for(walk) == "What is the country of the birthplace of the author of Hamlet?"
    assert rw.evidence_for(walk).startswith("The author of Hamlet is William Shakespeare. The birthplace of")
    assert (walk.start, walk.end, walk.hops) == ("Hamlet", "England", 3)


def test_walks_do_not_revisit_and_end_where_the_check_says(graph: rw.Graph) -> None:
    rng = random.Random(3)
    made = 0
    for start in sorted(graph.edges)[:60]:
        walk = rw.random_walk(graph, start, 2, rng)
        if walk is None:
            continue
        entities = [walk.start] + [t for _, _, t in walk.triples]
        assert len(set(entities)) == len(entities)
        for (h, r, t), (h2, _, _) in zip(walk.triples, walk.triples[1:]):
            assert t == h2 and (r, t) in graph.edges[h]
        made += 1
    assert made > 20
    assert rw.random_walk(graph, "Rotterdam-not-in-graph", 2, rng) is None


def test_answer_check_accepts_the_path_end(graph: rw.Graph) -> None:
    rw.check_answer(graph, "Hamlet", ["author", "birthplace", "country"], "England")
    with pytest.raises(ParseError, match=r"answer_mismatch: the path ends at 'England', not 'Spain'"):
        rw.check_answer(graph, "Hamlet", ["author", "birthplace", "country"], "Spain")
    with pytest.raises(ParseError, match=r"answer_mismatch: hop 2 \('currency'\) leads nowhere"):
        rw.check_answer(graph, "Hamlet", ["author", "currency"], "Euro")


def test_answer_check_rejects_ambiguous_questions(graph: rw.Graph) -> None:
    # Canada has two official languages in the example graph
    with pytest.raises(ParseError, match=r"ambiguous: hop 2 \('official language' of Canada\) has 2 answers"):
        rw.check_answer(graph, "Ottawa", ["country", "official language"], "English")


def test_rephrase_checks() -> None:
    walk = rw.Walk((("Hamlet", "author", "William Shakespeare"),
                    ("William Shakespeare", "birthplace", "Stratford-upon-Avon")))
    assert rw.parse_rephrase('"Where was the author of Hamlet born?"\nExtra line', walk) == \
        "Where was the author of Hamlet born?"
    with pytest.raises(ParseError, match="rephrase_drift"):
        rw.parse_rephrase("Where was the famous playwright born?", walk)
    with pytest.raises(ParseError, match="rephrase_leak"):
        rw.parse_rephrase("Was the author of Hamlet born in Stratford-upon-Avon?", walk)
    with pytest.raises(ParseError, match="rephrase_not_question"):
        rw.parse_rephrase("Tell me where the author of Hamlet was born.", walk)
    assert rw.rephrase_prompt("Q?")[-1]["content"].endswith("Q?")


def test_operator_generates_checked_questions_deterministically() -> None:
    op = RandomWalkQA(graph=str(KG), walks_per_row=3, seed=1, answer_style="chain")
    op.ensure_setup()
    batch = from_rows([{"id": f"r{i}", "text": "x", "license": "cc-by"} for i in range(10)])
    result = op.process(batch)
    kept = result.kept.to_pylist()
    assert len(kept) >= 15
    g = op.graph
    for r in kept:
        path = json.loads(r["walk.path"])
        assert 2 <= r["walk.hops"] == len(path) <= 3
        rw.check_answer(g, r["walk.start"], [p[1] for p in path], r["answer"])
        assert r["output"].endswith(f"So the answer is {r['answer']}.")
        assert r["question"].startswith("What is the ") and r["license"] == "cc-by"
    rejected = result.rejected.to_pylist() if result.rejected is not None else []
    assert all(r["_reason"].split(":")[0] in {"dead_end", "ambiguous", "duplicate_walk"} for r in rejected)
    assert len(kept) + len(rejected) == 30
    again = RandomWalkQA(graph=str(KG), walks_per_row=3, seed=1, answer_style="chain")
    again.ensure_setup()
    assert again.process(batch).kept.to_pylist() == kept


def test_operator_start_column_and_rephrase_with_mock() -> None:
    op = RandomWalkQA(graph=str(KG), start_column="entity", min_hops=2, max_hops=2, rephrase=True,
                      backend={"type": "mock", "responses": ["Who wrote Hamlet, and where was that writer born?"]})
    op.ensure_setup()
    result = op.process(from_rows([{"id": "a", "entity": "Hamlet"}, {"id": "b", "entity": "Nowhere"}]))
    kept = result.kept.to_pylist()
    assert [(r["question"], r["answer"]) for r in kept] == [
        ("Who wrote Hamlet, and where was that writer born?", "Stratford-upon-Avon")]
    assert kept[0]["gen.model"] == "mock"
    assert [r["_reason"] for r in result.rejected.to_pylist()] == ["dead_end: no 2-hop walk from 'Nowhere'"]


def test_recipe_over_the_triples_file(tmp_path: Path) -> None:
    recipe = {"name": "kg", "input": {"path": str(KG), "format": "csv", "text_column": "head"},
              "steps": [{"op": "generate.random_walk", "params": {"graph": str(KG), "start_column": "text"}}],
              "output": {"format": "jsonl"}, "executor": {"workers": 1}}
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)
    out = [json.loads(line) for p in summary.outputs for line in p.read_text().splitlines()]
    assert len(out) > 40 and len({r["walk.path"] for r in out}) == len(out)


def test_operator_params_and_graph_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_hops"):
        RandomWalkQA(graph=str(KG), min_hops=3, max_hops=2)
    missing = RandomWalkQA(graph="missing.csv")
    missing.bind(base_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=f"graph file not found: {tmp_path / 'missing.csv'}"):
        missing.ensure_setup()
    relative = RandomWalkQA(graph="data/kg_triples.csv")
    relative.bind(base_dir=REPO / "recipes")  # what the recipe loader sets for recipes/*.yaml
    relative.ensure_setup()
    assert relative.graph is not None and len(relative.graph) > 100
