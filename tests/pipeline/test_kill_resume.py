"""A real run killed with SIGKILL at random moments, then resumed, ends with exactly the
records, rejected rows and quarantine of a clean run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from tests.conftest import recipe_dict


def make_corpus(path: Path, n: int = 4000) -> None:
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(400)]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if i % 397 == 5:
                f.write('{"id": "bad", "text": \n')
                continue
            k = rng.randint(3, 60)
            text = " ".join(rng.choice(vocab) for _ in range(k)) if i % 7 else "repeated text " * 6
            f.write(json.dumps({"id": f"r{i}", "text": text, "label": rng.choice("xyz")}) + "\n")


def snapshot(run: Path) -> dict:
    out = {p.name: p.read_bytes() for p in sorted((run / "data").iterdir())}
    for p in sorted((run / "rejected").iterdir()):
        t = pq.read_table(p, columns=["id", "_reason"]).to_pylist()
        out[p.name] = sorted((r["id"], r["_reason"]) for r in t)
    out["quarantine"] = (run / "quarantine.jsonl").read_bytes()
    stats = json.loads((run / "stats.json").read_text())
    out["counts"] = [(s["rows_in"], s["rows_out"], s["dropped"]) for s in stats["steps"]]
    return out


def run_cli(recipe: Path, runs: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gristmill", "run", str(recipe), "--runs-dir", str(runs), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    make_corpus(corpus)
    data = recipe_dict(corpus, executor={"workers": 2})
    data["input"]["shard_rows"] = 150
    data["steps"][3]["params"]["label_column"] = "label"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(data))

    t0 = time.perf_counter()
    assert run_cli(recipe, tmp_path / "clean").wait(timeout=300) == 0
    clean_seconds = time.perf_counter() - t0
    expected = snapshot(tmp_path / "clean" / "t")

    rng = random.Random(2024)
    runs = tmp_path / "killed"
    kills = 0
    for _ in range(6):
        proc = run_cli(recipe, runs)
        time.sleep(rng.uniform(0.05, clean_seconds * 0.9))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 3, "the run finished before it could be killed; make the corpus bigger"
    assert run_cli(recipe, runs).wait(timeout=300) == 0
    assert snapshot(runs / "t") == expected
