from __future__ import annotations

import pickle

import pytest

from gristmill.ops.dedup.exact import CLUSTER, DUPLICATE_OF, ExactDedup
from gristmill.records import from_rows

SHARD_1 = from_rows([
    {"id": "a1", "text": "The cat sat."},
    {"id": "a2", "text": "Something else"},
    {"id": "a3", "text": "the  CAT sat."},  # same as a1 once case and spaces are normalised
    {"id": "a4", "text": None},
])
SHARD_2 = from_rows([
    {"id": "b1", "text": "  the cat sat.\n"},
    {"id": "b2", "text": "something else!"},
    {"id": "b3", "text": None},
    {"id": "b4", "text": "unique"},
])


def _fitted(**params) -> ExactDedup:
    op = ExactDedup(**params)
    op.fit([op.summarize(SHARD_1), op.summarize(SHARD_2)])
    return op


def test_first_occurrence_across_shards_is_kept() -> None:
    op = _fitted()
    r1, r2 = op.process(SHARD_1), op.process(SHARD_2)
    assert r1.kept.column("id").to_pylist() == ["a1", "a2", "a4"]
    assert r2.kept.column("id").to_pylist() == ["b2", "b3", "b4"]
    assert r1.rejected.select(["id", "_reason", DUPLICATE_OF]).to_pylist() == [
        {"id": "a3", "_reason": "duplicate: of a1", DUPLICATE_OF: "a1"}]
    assert r2.rejected.select(["id", "_reason", DUPLICATE_OF]).to_pylist() == [
        {"id": "b1", "_reason": "duplicate: of a1", DUPLICATE_OF: "a1"}]


def test_cluster_column_points_every_row_to_its_kept_row() -> None:
    op = _fitted()
    r1, r2 = op.process(SHARD_1), op.process(SHARD_2)
    assert r1.kept.column(CLUSTER).to_pylist() == ["a1", "a2", "a4"]
    assert r1.rejected.column(CLUSTER).to_pylist() == ["a1"]
    assert r2.kept.column(CLUSTER).to_pylist() == ["b2", "b3", "b4"]
    assert r2.rejected.column(CLUSTER).to_pylist() == ["a1"]


def test_strip_punctuation_and_case_sensitivity() -> None:
    r2 = _fitted(strip_punctuation=True).process(SHARD_2)
    assert r2.rejected.column("_reason").to_pylist() == ["duplicate: of a1", "duplicate: of a2"]
    strict = _fitted(lowercase=False, collapse_whitespace=False)
    assert strict.process(SHARD_1).rejected is None and strict.process(SHARD_2).rejected is None


def test_shard_order_decides_which_copy_stays() -> None:
    op = ExactDedup()
    op.fit([op.summarize(SHARD_2), op.summarize(SHARD_1)])
    assert op.process(SHARD_1).rejected.column("_reason").to_pylist() == ["duplicate: of b1", "duplicate: of b1"]


def test_state_is_small_and_picklable() -> None:
    op = _fitted()
    assert op.kept_for == {op.key("The cat sat."): "a1"}  # only texts that repeat
    clone = pickle.loads(pickle.dumps(op))
    assert clone.process(SHARD_2).kept.to_pylist() == op.process(SHARD_2).kept.to_pylist()


def test_key_is_a_128_bit_hex_digest() -> None:
    key = ExactDedup().key("x")
    assert len(key) == 32 and int(key, 16) >= 0


def test_apply_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        ExactDedup().process(SHARD_1)


def test_declared_columns() -> None:
    op = ExactDedup(column="output")
    assert op.reads() == ["id", "output"] and op.writes() == [CLUSTER]
