from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run by default, so CI is reproducible; set
# HYPOTHESIS_PROFILE=explore to search new examples (a failure prints its reproduction blob).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def docs_file(tmp_path: Path) -> Path:
    """A small JSONL corpus with duplicates, short rows and two malformed lines."""
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    lines = []
    for i in range(60):
        j = i % 45  # rows 45..59 repeat rows 0..14 exactly
        text = " ".join(words[(j + k) % len(words)] for k in range(8 + j % 30)) + f" doc {j}."
        lines.append(json.dumps({"id": f"d{i}", "text": text, "label": "ab"[i % 2]}))
    lines.insert(10, '{"id": "broken", "text": ')
    lines.insert(20, json.dumps({"id": "blank", "text": "  "}))
    p = tmp_path / "docs.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def recipe_dict(path: Path, **over) -> dict:
    base = {
        "name": "t",
        "input": {"path": str(path), "format": "jsonl", "shard_rows": 7},
        "steps": [
            {"op": "clean.normalize"},
            {"op": "filter.length", "params": {"min_words": 15}},
            {"op": "dedup.exact"},
            {"op": "split.train_test", "params": {"test": 0.25, "seed": 1}},
        ],
        "output": {"format": "jsonl"},
        "executor": {"workers": 1},
    }
    base.update(over)
    return base
