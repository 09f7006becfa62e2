"""augment.entity_swap, augment.noise and augment.mix on WNUT-17 rows and on plain text."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from gristmill.io.readers import open_reader
from gristmill.io.base import ReaderOptions
from gristmill.ops.augment import AUGMENT_OF, EntitySwap, NoiseInjection, TextMix, entity_spans, typo
from tests.conftest import SHARED_DATA

WNUT = SHARED_DATA / "wnut17" / "wnut17train.conll"


@pytest.fixture(scope="module")
def wnut() -> pa.Table:
    rows = []
    for rec in open_reader(WNUT, ReaderOptions(format="conll")):
        rows.append({"id": rec["id"], "tokens": rec["tokens"], "tags": rec["tags"], "text": rec["text"]})
        if len(rows) == 120:
            break
    return pa.Table.from_pylist(rows)


def fitted_swap(table: pa.Table, **params) -> EntitySwap:
    op = EntitySwap(**params)
    op.ensure_setup()
    op.fit([op.summarize(table.slice(0, 60)), op.summarize(table.slice(60))])
    return op


def test_entity_spans() -> None:
    assert entity_spans(["B-a", "I-a", "O", "I-b", "B-b", "I-a"]) == [(0, 2, "a"), (3, 4, "b"), (4, 5, "b"),
                                                                      (5, 6, "a")]


def test_entity_swap_replaces_spans_with_same_type_spans_from_the_inventory(wnut: pa.Table) -> None:
    op = fitted_swap(wnut, copies=2, seed=3)
    out = op.process(wnut).kept.to_pylist()
    originals = {r["id"]: r for r in wnut.to_pylist()}
    copies = [r for r in out if r[AUGMENT_OF] is not None]
    assert len(out) == len(originals) + len(copies) and copies
    with_entities = sum(1 for r in originals.values() if any(t != "O" for t in r["tags"]))
    assert len(copies) == 2 * with_entities  # the inventory has at least two spans of each type here
    inventory = {k: set(v) for k, v in op.inventory.items()}
    for c in copies:
        src = originals[c[AUGMENT_OF]]
        assert c["id"] in (f"{src['id']}~swap1", f"{src['id']}~swap2")
        assert len(c["tokens"]) == len(c["tags"]) and c["text"] == " ".join(c["tokens"])
        old, new = entity_spans(src["tags"]), entity_spans(c["tags"])
        assert [k for _, _, k in old] == [k for _, _, k in new]  # the same types in the same order
        for s, e, k in new:
            assert tuple(c["tokens"][s:e]) in inventory[k]
        assert c["tokens"] != src["tokens"]
        outside = [t for t, g in zip(c["tokens"], c["tags"]) if g == "O"]
        assert outside == [t for t, g in zip(src["tokens"], src["tags"]) if g == "O"]


def test_entity_swap_is_deterministic_per_row_whatever_the_batch(wnut: pa.Table) -> None:
    op = fitted_swap(wnut, seed=1)
    whole = {r["id"]: r for r in op.process(wnut).kept.to_pylist()}
    part = {r["id"]: r for r in op.process(wnut.slice(30, 10)).kept.to_pylist()}
    assert all(whole[k] == v for k, v in part.items())
    other = fitted_swap(wnut, seed=2)
    assert other.process(wnut).kept.to_pylist() != list(whole.values())


def test_entity_swap_on_text_rows_uses_the_entities_file(tmp_path: Path) -> None:
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"person": ["Alice Smith", "Bob", "Carol"], "location": ["Paris", "Oslo"]}))
    op = EntitySwap(entities_file=str(names))
    op.fit([op.summarize(pa.table({"id": ["a"], "text": ["x"]}))])
    batch = pa.table({"id": ["a", "b", "c"], "text": ["Alice Smith flew to Paris.", "nothing here", "Bobby went"]})
    out = op.process(batch).kept.to_pylist()
    assert [r["id"] for r in out] == ["a", "a~swap1", "b", "c"]
    swapped = out[1]["text"]
    assert swapped.endswith(" to Oslo.") and not swapped.startswith("Alice Smith")
    assert op.input_files() == [names]


def test_typo_edits_one_character() -> None:
    rng = random.Random(0)
    for op in ("swap", "delete", "insert", "replace"):
        for word in ("keyboard", "ab", "Hello"):
            new = typo(word, rng, [op])
            assert new and abs(len(new) - len(word)) <= 1
            if op in ("swap", "replace"):
                assert len(new) == len(word) and sum(a != b for a, b in zip(new, word)) <= 2
    assert typo("1234", rng, ["replace"]) == "1234"
    assert typo("a", rng, ["delete"]) == "a"


def test_noise_keeps_tags_aligned_and_entities_intact(wnut: pa.Table) -> None:
    op = NoiseInjection(char_rate=0.3, word_rate=0.3, seed=5)
    out = op.process(wnut).kept.to_pylist()
    originals = {r["id"]: r for r in wnut.to_pylist()}
    copies = [r for r in out if r["id"].endswith("~noise")]
    assert len(copies) > 0.8 * len(originals)
    changed_words = 0
    for c in copies:
        src = originals[c[AUGMENT_OF]]
        assert len(c["tokens"]) == len(c["tags"]) >= 1
        ents = lambda r: [(tuple(r["tokens"][s:e]), k) for s, e, k in entity_spans(r["tags"])]  # noqa: E731
        assert ents(c) == ents(src)  # entity tokens untouched by default
        changed_words += len(set(c["tokens"]) - set(src["tokens"]))
    assert changed_words > 0
    again = NoiseInjection(char_rate=0.3, word_rate=0.3, seed=5).process(wnut.slice(10, 5)).kept.to_pylist()
    assert all(r in out for r in again)


def test_noise_touch_entities_and_text_rows(wnut: pa.Table) -> None:
    op = NoiseInjection(char_rate=1.0, word_rate=0.0, touch_entities=True, char_ops=["replace"])
    out = [r for r in op.process(wnut).kept.to_pylist() if r[AUGMENT_OF]]
    src = {r["id"]: r for r in wnut.to_pylist()}
    assert any(t != s for r in out for t, s, g in zip(r["tokens"], src[r[AUGMENT_OF]]["tokens"], r["tags"]) if g != "O")
    text = NoiseInjection(char_rate=0.5, word_rate=0.2, seed=0, keep_original=False)
    rows = text.process(pa.table({"id": ["t"], "text": ["the quick brown fox jumps over the lazy dog"]})).kept
    assert rows.num_rows == 1 and rows.column("text")[0].as_py() != "the quick brown fox jumps over the lazy dog"
    assert NoiseInjection(row_rate=0.0).process(wnut).kept.num_rows == wnut.num_rows
    with pytest.raises(ValueError, match="unknown noise"):
        NoiseInjection(char_ops=["smash"])


def test_mix_concatenates_sentences_with_their_tags(wnut: pa.Table) -> None:
    op = TextMix(rate=1.0, seed=4)
    out = op.process(wnut).kept.to_pylist()
    src = {r["id"]: r for r in wnut.to_pylist()}
    mixes = [r for r in out if r[AUGMENT_OF]]
    assert len(mixes) == wnut.num_rows
    for m in mixes:
        a, b = src[m[AUGMENT_OF]], src[m["augment.mixed_with"]]
        assert a["id"] != b["id"] and m["tokens"] == a["tokens"] + b["tokens"]
        assert len(m["tags"]) == len(m["tokens"])
        assert m["tags"][:len(a["tags"])] == a["tags"]
        assert len(entity_spans(m["tags"])) == len(entity_spans(a["tags"])) + len(entity_spans(b["tags"]))
    texts = TextMix(rate=1.0, separator=" | ").process(pa.table({"id": ["x", "y"], "text": ["one", "two"]})).kept
    assert texts.column("text").to_pylist() == ["one", "one | two", "two", "two | one"]


def test_augment_recipe_validates() -> None:
    from gristmill.recipe import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "augment_wnut17.yaml")
    assert [s.op.name for s in recipe.steps] == ["augment.entity_swap", "augment.noise", "bias.counterfactual"]
