"""Pages stay fast at 100,000 queued rows (slow: it builds a run of 100,000 rows; prints the timings).

The run: 100,000 short rows, each queued by a ``review.queue`` column (kept or dropped), with a judge score;
``filter.length`` drops a sixth of them (a 16,667-row ``dropped`` queue). Timed through the API the page
uses: the first page, a page 1,000 pages deep, a text search, the page sorted by score, one item, one
decision, a bulk accept of about 40,000 rows, and the first page of what is left after it (the index must
skip the decided rows), and the figures.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gristmill.review.app import create_app
from gristmill.review.server import prepare
from gristmill.runner import run_recipe

ROWS = 100_000
WORDS = "river bread lamp garden violin harbour clock meadow kettle lantern orchard bridge stone cloud".split()


def _timed(f: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


@pytest.mark.slow
def test_pages_at_100k_rows(tmp_path: Path) -> None:
    rng = random.Random(0)
    src = tmp_path / "big.jsonl"
    with src.open("w", encoding="utf-8") as fh:
        for i in range(ROWS):
            n = 3 if i % 6 == 0 else rng.randint(6, 14)
            fh.write(json.dumps({"id": f"r{i}", "text": " ".join(rng.choice(WORDS) for _ in range(n)) + f" n{i}",
                                 "judge.score": rng.random() * 10, "review.queue": "bulk",
                                 "review.priority": rng.random()}) + "\n")
    run_recipe({"name": "big", "input": {"path": str(src), "format": "jsonl", "shard_rows": 20_000},
                "steps": [{"op": "filter.length", "params": {"min_words": 5}}], "output": {"format": "parquet"},
                "executor": {"workers": 1}}, runs_dir=tmp_path / "runs", progress=False)
    build, prepared = _timed(lambda: prepare(tmp_path / "runs" / "big", {"sample_size": 400}))
    c = TestClient(create_app(prepared.index, {"t": "ann"}, {"http://testserver"}, None))
    h = {"X-Review-Token": "t"}
    queues = {q["queue"]: q["total"] for q in c.get("/api/queues", headers=h).json()["queues"]}
    assert queues["queue:bulk"] == 100_000 and queues["judge"] == 100_000 and queues["dropped:min_words"] == 16_667

    def page(**params: Any) -> dict[str, Any]:
        r = c.get("/api/items", params={"queue": "queue:bulk", "size": 50, **params}, headers=h)
        assert r.status_code == 200
        return r.json()

    timings: dict[str, float] = {"index build (s)": build}
    timings["first page"], first = _timed(page)
    assert first["total"] == 100_000
    timings["page 1,000"], deep = _timed(lambda: page(page=1000))
    assert len(deep["items"]) == 50
    timings["text search"], found = _timed(lambda: page(q="violin harbour"))
    assert 0 < found["total"] < 100_000
    timings["sorted by score"], ranked = _timed(lambda: page(sort="score_desc"))
    assert ranked["items"][0]["score"] >= ranked["items"][-1]["score"]
    iid = first["items"][0]["iid"]
    timings["one item"], _ = _timed(lambda: c.get(f"/api/items/{iid}", headers=h).json())
    timings["one decision"], r = _timed(lambda: c.post("/api/decide", json={"iid": iid, "action": "accept"},
                                                       headers=h))
    assert r.status_code == 200
    timings["bulk accept ~40,000 (s)"], r = _timed(lambda: c.post(
        "/api/bulk", json={"queue": "queue:bulk", "action": "accept", "max": 0.4}, headers=h))
    assert 38_000 < r.json()["decided"] < 42_000
    timings["first page after it"], left = _timed(page)
    assert 58_000 < left["total"] < 62_000
    timings["figures (s)"], _ = _timed(lambda: c.get("/api/figures", headers=h).json())
    print("\nreview at 100,000 queued rows (seconds; pages of 50):")
    for k, v in timings.items():
        print(f"  {k:<28} {v:8.3f}")
    for k in ("first page", "page 1,000", "text search", "sorted by score", "one item", "first page after it"):
        assert timings[k] < 2.0, (k, timings[k])
