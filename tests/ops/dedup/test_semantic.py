"""dedup.semantic with the real all-MiniLM-L6-v2 (loaded once per process)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gristmill.ops.dedup.semantic import CLUSTER, DUPLICATE_OF, SemanticDedup, components, similar_pairs
from gristmill.records import from_rows
from gristmill.runner import run_recipe
from tests.models._text import paragraphs

FAST = {"threads": 1}
GUITAR = "A man is playing a guitar on stage."
GUITAR_2 = "A person performs guitar music on a stage."
WEATHER = "The weather is lovely today."
QUANTUM = "Quantum computers factor large integers."


def _edited(text: str, rate: float, seed: int) -> str:
    """``text`` with about ``rate`` of its words substituted, deleted or doubled."""
    rng = random.Random(seed)
    words = text.split()
    out: list[str] = []
    for w in words:
        u = rng.random()
        if u < rate / 3:
            out.append(rng.choice(words))
        elif u < 2 * rate / 3:
            continue
        elif u < rate:
            out += [w, w]
        else:
            out.append(w)
    return " ".join(out)


def _fitted(shards: list[list[dict]], **params) -> tuple[SemanticDedup, list]:
    op = SemanticDedup(**FAST, **params)
    batches = [from_rows(rows) for rows in shards]
    op.fit([op.summarize(b) for b in batches])
    return op, [op.process(b) for b in batches]


@pytest.fixture(scope="module")
def corpus() -> tuple[list[dict], list[dict], set[str]]:
    """Two shards of real paragraphs; shard 2 also holds 5%-edited copies of five shard-1 paragraphs."""
    originals = paragraphs(0, 12) + paragraphs(2, 12)
    first = [{"id": f"a{i}", "text": t} for i, t in enumerate(originals[:14])]
    second = [{"id": f"b{i}", "text": t} for i, t in enumerate(originals[14:])]
    copies = {f"c{k}": f"a{k * 2}" for k in range(5)}
    second += [{"id": c, "text": _edited(first[int(a[1:])]["text"], 0.05, k)} for k, (c, a) in enumerate(copies.items())]
    return first, second, set(copies)


def test_paraphrase_pair_merged_unrelated_pair_kept() -> None:
    rows = [{"id": "g1", "text": GUITAR}, {"id": "w", "text": WEATHER}, {"id": "g2", "text": GUITAR_2},
            {"id": "q", "text": QUANTUM}, {"id": "n", "text": None}, {"id": "blank", "text": "  "}]
    op, (result,) = _fitted([rows], threshold=0.8)
    assert result.kept.column("id").to_pylist() == ["g1", "w", "q", "n", "blank"]
    assert result.kept.column(CLUSTER).to_pylist() == ["g1", "w", "q", "n", "blank"]
    (dup,) = result.rejected.to_pylist()
    assert dup["id"] == "g2" and dup[DUPLICATE_OF] == "g1" and dup[CLUSTER] == "g1"
    cos = float(dup["_reason"].rsplit("cos ", 1)[1].rstrip(")"))
    assert dup["_reason"] == f"semantic_duplicate: of g1 (cos {cos:.3f})" and 0.8 <= cos < 0.95
    assert op.fit_stats == {"rows": 4, "pairs": 1, "method": "exact", "clusters": 1, "dropped": 1}


def test_threshold_decides_at_the_pairs_cosine() -> None:
    probe = SemanticDedup(**FAST)
    a, b = probe.embed([GUITAR, GUITAR_2])
    cos = float(a @ b)
    rows = [{"id": "g1", "text": GUITAR}, {"id": "g2", "text": GUITAR_2}]
    _, (below,) = _fitted([rows], threshold=cos - 0.005)
    _, (above,) = _fitted([rows], threshold=cos + 0.005)
    assert below.kept.column("id").to_pylist() == ["g1"]
    assert above.kept.column("id").to_pylist() == ["g1", "g2"] and above.rejected is None
    _, (default,) = _fitted([rows])  # 0.95: a paraphrase is not a near-duplicate
    assert default.rejected is None


def test_edited_copies_across_shards_are_dropped_for_the_first_occurrence(corpus) -> None:
    first, second, copies = corpus
    op, (r1, r2) = _fitted([first, second])
    assert r1.rejected is None
    dropped = {row["id"]: row[DUPLICATE_OF] for row in r2.rejected.to_pylist()}
    assert dropped == {c: f"a{int(c[1:]) * 2}" for c in copies}
    assert all(row["_reason"].startswith(f"semantic_duplicate: of {row[DUPLICATE_OF]} (cos 0.9")
               for row in r2.rejected.to_pylist())
    kept = {row["id"]: row[CLUSTER] for row in r1.kept.to_pylist() + r2.kept.to_pylist()}
    assert all(kept[i] == i for i in kept)
    assert op.fit_stats["method"] == "exact" and op.fit_stats["dropped"] == len(copies)


def test_approximate_index_finds_what_the_exact_search_finds(corpus) -> None:
    first, second, _ = corpus
    exact, _ = _fitted([first, second], threshold=0.7)
    ann, _ = _fitted([first, second], threshold=0.7, ann_threshold=0, ann_lists=4, ann_probes=2)
    assert ann.fit_stats["method"] == "ann" and exact.fit_stats["method"] == "exact"
    assert ann.members == exact.members and len(exact.members) > 10
    assert {k: v for k, v in ann.fit_stats.items() if k != "method"} == \
        {k: v for k, v in exact.fit_stats.items() if k != "method"}


def test_similar_pairs_exact_and_approximate_agree_on_planted_neighbours() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((1500, 32)).astype(np.float32)
    near = base[:300] + 0.05 * rng.standard_normal((300, 32)).astype(np.float32)
    v = np.concatenate([base, near])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    i, j = similar_pairs(v, 0.95)
    assert set(zip(i.tolist(), j.tolist())) == {(k, 1500 + k) for k in range(300)}
    ai, aj = similar_pairs(v, 0.95, ann=True, lists=16, probes=16)  # all cells probed: exact
    assert np.array_equal(ai, i) and np.array_equal(aj, j)
    bi, bj = similar_pairs(v, 0.95, ann=True, lists=16, probes=3)
    found = set(zip(bi.tolist(), bj.tolist()))
    assert found <= set(zip(i.tolist(), j.tolist())) and len(found) >= 0.95 * len(i)


def test_components_join_chains_at_their_first_member() -> None:
    root = components(7, np.array([1, 3, 2, 5]), np.array([4, 4, 3, 6]))
    assert root.tolist() == [0, 1, 1, 1, 1, 5, 5]


def test_summaries_are_cached_in_scratch(tmp_path: Path, corpus) -> None:
    first, _, _ = corpus
    op = SemanticDedup(**FAST)
    op.bind(scratch=tmp_path)
    batch = from_rows(first)
    ids, path = op.summarize(batch)
    assert ids == [r["id"] for r in first] and Path(path).parent == tmp_path
    stamp = Path(path).stat().st_mtime_ns
    assert op.summarize(batch) == (ids, path) and Path(path).stat().st_mtime_ns == stamp
    assert np.load(path).shape == (len(first), 384)
    assert [p.name for p in tmp_path.iterdir()] == [Path(path).name]
    other = SemanticDedup(**FAST, max_tokens=128)
    other.bind(scratch=tmp_path)
    assert other.summarize(batch)[1] != path  # other embedding parameters, another file


def test_runs_in_a_recipe_across_shards(tmp_path: Path) -> None:
    rows = [GUITAR, WEATHER, QUANTUM, GUITAR_2, "The weather is lovely today!", "Bananas are yellow."]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(rows)))
    recipe = {"name": "sem", "input": {"path": str(src), "format": "jsonl", "shard_rows": 2},
              "steps": [{"op": "dedup.semantic", "params": {"threshold": 0.8, "threads": 1}}],
              "output": {"format": "jsonl"}, "executor": {"workers": 1}}
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)
    run = summary.run_dir
    rejected = pq.read_table(run / "rejected" / "00-dedup.semantic.parquet").to_pylist()
    assert {r["id"]: r[DUPLICATE_OF] for r in rejected} == {"d3": "d0", "d4": "d1"}
    kept = [json.loads(line) for f in summary.outputs for line in Path(f).read_text().splitlines()]
    assert sorted(r["id"] for r in kept) == ["d0", "d1", "d2", "d5"]
    assert {r["id"]: r[CLUSTER] for r in kept} == {"d0": "d0", "d1": "d1", "d2": "d2", "d5": "d5"}
    assert len(list(run.glob("cache/step-*/scratch/emb-*.npy"))) == 3
