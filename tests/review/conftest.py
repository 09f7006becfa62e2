"""A small finished run with something in every review queue, made once per test module."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from gristmill.runner import run_recipe

PASSAGE = ("It is a truth universally acknowledged that a single man in possession of a good fortune must be in "
           "want of a wife however little known the feelings or views of such a man may be on his first entering "
           "a neighbourhood this truth is so well fixed in the minds of the surrounding families")
CANARY = "GRISTMILL CANARY 0b1d the answer to the held out question is the ferry timetable"
LONG = ("the harbour master walked along the quay every morning before dawn counting the boats that had come back "
        "from the night fishing and writing their names into a ledger that his grandfather had started sixty years "
        "earlier when the town still had a cannery and a railway station")
TOPICS = "river bread lamp garden violin harbor clock meadow kettle lantern orchard bridge".split()
WORDS = ("amber basin cedar dune ember fjord grove heron inlet juniper knoll lagoon marsh nectar oasis pebble quarry "
         "ridge spruce tundra upland valley willow yarrow zephyr brook cliff delta estuary fern glade hollow isle "
         "jetty kelp loch moor nook orchid prairie").split()


def corpus_rows() -> list[dict[str, Any]]:
    """Rows for every queue: plain (labelled a / b, some judged), short, an exact and a near duplicate, a canary,
    a copied passage, an insult, contact details, two rows queued by a column, two NER rows."""
    rows: list[dict[str, Any]] = []
    rng = random.Random(7)
    for i, t in enumerate(TOPICS * 2):
        words = " ".join(rng.choice(WORDS) for _ in range(12))
        rows.append({"id": f"p{i:02d}", "text": f"a note about the {t}: {words}", "label": "ab"[i % 2]})
    for i in range(0, 24, 4):
        rows[i]["judge.score"] = float(i % 10)
    rows[3]["review.queue"] = "custom"
    rows[3]["review.priority"] = 0.9
    rows[3]["review.note"] = "low confidence"
    rows[5]["review.queue"] = "custom"
    rows[5]["review.priority"] = 0.2
    rows += [
        {"id": "tiny", "text": "too short", "label": "a"},
        {"id": "tiny2", "text": "also short here", "label": "b"},
        {"id": "dup", "text": rows[2]["text"], "label": "a"},
        {"id": "long", "text": LONG, "label": "a"},
        {"id": "neardup", "text": LONG.replace("sixty", "seventy"), "label": "a"},
        {"id": "leak", "text": f"notes pasted by mistake {CANARY} please remove before release", "label": "b"},
        {"id": "copy", "text": f"my favourite opening line goes like this {PASSAGE} and I love it", "label": "b"},
        {"id": "rude", "text": "that referee was a complete idiot and the match was a stupid shitty mess", "label": "b"},
        {"id": "contact", "text": "write to maria at m.lopez@archive-volunteers.net or call +1 415 555 0132 today",
         "label": "a"},
        {"id": "ner1", "text": "Maria visited Paris with John last spring for the book fair",
         "tokens": ["Maria", "visited", "Paris", "with", "John", "last", "spring"],
         "tags": ["B-person", "O", "O", "O", "B-person", "O", "O"], "label": "a", "review.queue": "ner"},
    ]
    return rows


def recipe(path: Path, name: str = "rv") -> dict[str, Any]:
    return {
        "name": name,
        "input": {"path": str(path), "format": "jsonl", "license": "Apache-2.0", "shard_rows": 10},
        "steps": [
            {"op": "clean.normalize"},
            {"op": "filter.length", "params": {"min_words": 5}},
            {"op": "dedup.exact"},
            {"op": "dedup.minhash"},
            {"op": "decontam.ngram", "params": {"n": 8, "benchmarks": [{"name": "canary", "items": [CANARY]}]}},
            {"op": "copyright.overlap", "params": {"references": [{"name": "novel", "items": [PASSAGE]}],
                                                   "max_longest_span": 20, "drop": False}},
            {"op": "toxicity.score", "params": {"drop": False}},
            {"op": "pii.detect", "params": {"ner": False}},
        ],
        "output": {"format": "jsonl"},
        "executor": {"workers": 1},
    }


def write_corpus(folder: Path) -> Path:
    path = folder / "docs.jsonl"
    lines = [json.dumps(r) for r in corpus_rows()]
    lines.insert(7, '{"id": "broken", "text": ')  # quarantined
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run, built once per module (copy it before changing it: :func:`fresh_run`)."""
    folder = tmp_path_factory.mktemp("review-run")
    run_recipe(recipe(write_corpus(folder)), runs_dir=folder / "runs", progress=False)
    return folder / "runs" / "rv"


@pytest.fixture
def fresh_run(built_run: Path, tmp_path: Path) -> Path:
    """A copy of the module's run, for a test to review and change."""
    target = tmp_path / "runs" / "rv"
    shutil.copytree(built_run, target)
    return target
