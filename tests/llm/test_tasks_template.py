"""Rule-based generation: slots, linked values, product and sampled expansion, and the operator."""

from __future__ import annotations

import random

import pytest

from gristmill.llm.tasks import template as tt
from gristmill.llm.types import ParseError
from gristmill.ops.generate.template import TemplateGenerate
from gristmill.records import from_rows

PLACES = [{"country": "France", "capital": "Paris"}, {"country": "Japan", "capital": "Tokyo"}]


def test_slots() -> None:
    assert tt.template_slots("What is {a} plus {b}? {a}") == ["a", "b"]
    assert tt.template_slots({"instruction": "Name {x}", "output": "{y!s:>3}"}) == ["x", "y"]
    with pytest.raises(ValueError, match="positional slot"):
        tt.template_slots("Hello {}")


def test_product_in_list_order_with_linked_values() -> None:
    template = {"instruction": "What is the capital of {country}? Answer in {lang}.", "output": "{capital}"}
    out = tt.expand(template, {}, {"places": PLACES, "lang": ["English", "French"]})
    assert out == [
        {"instruction": "What is the capital of France? Answer in English.", "output": "Paris"},
        {"instruction": "What is the capital of France? Answer in French.", "output": "Paris"},
        {"instruction": "What is the capital of Japan? Answer in English.", "output": "Tokyo"},
        {"instruction": "What is the capital of Japan? Answer in French.", "output": "Tokyo"},
    ]
    assert len(tt.expand(template, {}, {"places": PLACES, "lang": ["English", "French"]}, limit=3)) == 3


def test_row_columns_fill_slots_first() -> None:
    out = tt.expand("Translate '{text}' into {lang}.", {"text": "good morning", "lang": "Latin"},
                    {"lang": ["German"]})
    assert out == ["Translate 'good morning' into Latin."]


def test_sample_mode_is_seeded_and_deduplicated() -> None:
    values = {"n": [str(i) for i in range(50)]}
    a = tt.expand("Double {n}.", {}, values, mode="sample", n=5, rng=random.Random(7))
    b = tt.expand("Double {n}.", {}, values, mode="sample", n=5, rng=random.Random(7))
    assert a == b and 1 <= len(a) <= 5
    assert tt.expand("Double {n}.", {}, {"n": ["2"]}, mode="sample", n=5, rng=random.Random(1)) == ["Double 2."]
    assert tt.expand("No slots.", {}, {}, mode="sample", n=3) == ["No slots."]


def test_missing_and_null_slots() -> None:
    with pytest.raises(ParseError, match=r"missing_slot: 'topic' is not a column or a value list"):
        tt.expand("Write about {topic}.", {}, {})
    with pytest.raises(ParseError, match=r"missing_slot: 'text' is null"):
        tt.expand("Summarize: {text}", {"text": None}, {})
    with pytest.raises(ValueError, match="mode"):
        tt.expand("x", {}, {}, mode="shuffle")


def test_operator() -> None:
    op = TemplateGenerate(templates=["Summarize: {text}",
                                     {"instruction": "What is the capital of {country}?", "output": "{capital}"}],
                          values={"places": PLACES}, keep_columns=["topic"])
    assert op.reads() == ["text", "topic"]
    assert set(op.writes()) >= {"text", "instruction", "output", "gen.template"}
    result = op.process(from_rows([{"id": "a", "text": "Long story.", "topic": "t", "source": "in.jsonl"},
                                   {"id": "b", "text": None, "topic": "u"}]))
    kept = result.kept.to_pylist()
    assert [(r["id"], r["text"], r.get("output")) for r in kept] == [
        ("a-t0-0", "Summarize: Long story.", None),
        ("a-t1-0", "What is the capital of France?\n\nParis", "Paris"),
        ("a-t1-1", "What is the capital of Japan?\n\nTokyo", "Tokyo"),
        ("b-t1-0", "What is the capital of France?\n\nParis", "Paris"),
        ("b-t1-1", "What is the capital of Japan?\n\nTokyo", "Tokyo"),
    ]
    assert kept[0]["source"] == "in.jsonl" and kept[3]["source"] == "generate.template"
    assert all(r["topic"] in ("t", "u") and r["gen.parent"] in ("a", "b") for r in kept)
    assert [(r["id"], r["_reason"]) for r in result.rejected.to_pylist()] == [("b-t0", "missing_slot: 'text' is null")]


def test_operator_validates_templates() -> None:
    with pytest.raises(ValueError, match="positional slot"):
        TemplateGenerate(templates=["{}"])
    with pytest.raises(ValueError):
        TemplateGenerate(templates=[])
