from __future__ import annotations

import pickle
from collections import Counter

import pytest
from pydantic import ValidationError

from gristmill.ops.split import SPLIT, TrainTestSplit
from gristmill.records import from_rows


def _split(rows: list[dict], shards: int = 1, **params) -> dict[str, str]:
    """id -> split, with the rows cut into ``shards`` consecutive shards."""
    batches = [from_rows(rows[i::shards]) for i in range(shards)]
    op = TrainTestSplit(**params)
    op.fit([op.summarize(b) for b in batches])
    out = {}
    for b in batches:
        result = op.process(b)
        assert result.rejected is None and result.kept.num_rows == b.num_rows
        out.update(zip(result.kept.column("id").to_pylist(), result.kept.column(SPLIT).to_pylist()))
    return out


def test_fractions_without_groups() -> None:
    rows = [{"id": f"r{i}", "text": "t"} for i in range(1000)]
    counts = Counter(_split(rows, test=0.1, dev=0.05).values())
    assert counts == {"train": 850, "test": 100, "dev": 50}


def test_groups_never_straddle_splits() -> None:
    rows = [{"id": f"r{i}", "dedup.cluster": f"c{i % 37}", "text": "t"} for i in range(740)]
    splits = _split(rows, shards=3, test=0.2, dev=0.1)
    by_group: dict[str, set[str]] = {}
    for row in rows:
        by_group.setdefault(row["dedup.cluster"], set()).add(splits[row["id"]])
    assert all(len(s) == 1 for s in by_group.values())
    counts = Counter(splits.values())
    assert abs(counts["test"] - 148) <= 20 and abs(counts["dev"] - 74) <= 20  # whole groups of 20


def test_missing_group_column_falls_back_to_id() -> None:
    rows = [{"id": f"r{i}", "text": "t", "dedup.cluster": None if i % 2 else "same"} for i in range(100)]
    splits = _split(rows, test=0.3)
    assert len({splits[f"r{i}"] for i in range(0, 100, 2)}) == 1  # the 50 "same" rows stay together
    assert _split([{"id": f"r{i}"} for i in range(10)], test=0.3, group_column=None)


def test_stratified_shares_hold_per_label() -> None:
    rows = [{"id": f"r{i}", "label": "rare" if i % 10 == 0 else "common"} for i in range(2000)]
    splits = _split(rows, shards=4, test=0.2, dev=0.1, label_column="label")
    for label, n in (("rare", 200), ("common", 1800)):
        counts = Counter(splits[r["id"]] for r in rows if r["label"] == label)
        assert counts == {"test": 0.2 * n, "dev": 0.1 * n, "train": 0.7 * n}


def test_mixed_groups_follow_their_majority_label() -> None:
    rows = [{"id": f"g{g}-{k}", "dedup.cluster": f"g{g}", "label": "a" if k < 2 else "b"}
            for g in range(50) for k in range(3)]  # every group: two "a", one "b"
    splits = _split(rows, test=0.2, label_column="label")
    assert Counter(splits.values()) == {"train": 120, "test": 30}  # 10 of the 50 groups


def test_deterministic_and_seeded() -> None:
    rows = [{"id": f"r{i}"} for i in range(300)]
    assert _split(rows, test=0.2) == _split(rows, test=0.2)
    assert _split(rows, test=0.2) == _split(rows, shards=5, test=0.2)  # sharding does not matter
    assert _split(rows, test=0.2, seed=1) != _split(rows, test=0.2)


def test_pickled_after_fit() -> None:
    batch = from_rows([{"id": f"r{i}"} for i in range(50)])
    op = TrainTestSplit(test=0.5)
    op.fit([op.summarize(batch)])
    assert pickle.loads(pickle.dumps(op)).process(batch).kept.equals(op.process(batch).kept)


def test_invalid_fractions() -> None:
    with pytest.raises(ValidationError, match="test \\+ dev must not exceed 1"):
        TrainTestSplit(test=0.6, dev=0.5)
    with pytest.raises(ValidationError):
        TrainTestSplit(test=1.5)


def test_apply_before_fit_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        TrainTestSplit().process(from_rows([{"id": "a"}]))
