"""``split.train_test``: assign every row to train, dev or test, keeping groups together."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa
import xxhash
from pydantic import Field, model_validator

from gristmill.ops.base import GlobalOp, Params, StepResult
from gristmill.records import ID, column_list, set_column

__all__ = ["TrainTestSplit", "SPLIT"]

SPLIT = "split"


def _hashable(value: Any) -> Any:
    """A dict key for a cell value (lists and structs become their JSON text)."""
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


class TrainTestSplit(GlobalOp):
    """Assign each row to ``train``, ``dev`` or ``test`` in a ``split`` column; drops nothing.

    Rows sharing a group (``group_column``, by default the ``dedup.cluster`` written by the
    dedup operators; a row without one is its own group) always land in the same split,
    so near-copies cannot straddle train and test. Groups are taken in an order fixed by a
    hash of ``seed`` and the group key and filled greedily, so each share of rows comes
    as close to ``test`` / ``dev`` as whole groups allow. With ``label_column`` the
    split is stratified: the shares hold within each label (a group counts under its
    majority label). The same data and seed always give the same split.
    """

    name = "split.train_test"
    version = "1"

    class Params(Params):
        test: float = Field(0.1, ge=0, le=1, description="Fraction of rows for the test split.")
        dev: float = Field(0.0, ge=0, le=1, description="Fraction of rows for the dev split.")
        seed: int = Field(0, description="Seed of the group order; change it for another split.")
        label_column: str | None = Field(None, description="Stratify by this column (None: no stratification).")
        group_column: str | None = Field("dedup.cluster",
                                         description="Rows with equal values stay together; falls back to id when absent.")

        @model_validator(mode="after")
        def _fractions_fit(self) -> TrainTestSplit.Params:
            if self.test + self.dev > 1:
                raise ValueError(f"test + dev must not exceed 1 (test={self.test}, dev={self.dev})")
            return self

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # Fit state: group key -> "test" / "dev"; groups not in it are train.
        self.assigned: dict[Any, str] | None = None

    def reads(self) -> list[str]:
        return [ID] + ([self.params.label_column] if self.params.label_column else [])

    def writes(self) -> list[str]:
        return [SPLIT]

    def _groups(self, batch: pa.Table) -> list[Any]:
        ids = column_list(batch, ID)
        column = self.params.group_column
        if not column or column not in batch.column_names:
            return ids
        return [rid if g is None else _hashable(g) for g, rid in zip(column_list(batch, column), ids)]

    def summarize(self, batch: pa.Table) -> dict[Any, Counter]:
        """Rows per label for each group of the shard."""
        label_column = self.params.label_column
        labels = [_hashable(v) for v in column_list(batch, label_column)] if label_column else [None] * batch.num_rows
        out: dict[Any, Counter] = {}
        for group, label in zip(self._groups(batch), labels):
            out.setdefault(group, Counter())[label] += 1
        return out

    def _order(self, group: Any) -> tuple[int, str]:
        key = repr(group)
        return xxhash.xxh3_64_intdigest(f"{self.params.seed}\x1f{key}".encode("utf-8", "surrogatepass")), key

    def fit(self, summaries: list[Any]) -> None:
        groups: dict[Any, Counter] = {}
        for summary in summaries:
            for group, labels in (summary or {}).items():
                groups.setdefault(group, Counter()).update(labels)
        by_label: dict[str, list[tuple[tuple[int, str], Any, int]]] = {}
        for group, labels in groups.items():
            majority = min(labels.items(), key=lambda kv: (-kv[1], repr(kv[0])))[0]
            by_label.setdefault(repr(majority), []).append((self._order(group), group, sum(labels.values())))
        assigned: dict[Any, str] = {}
        for _, members in sorted(by_label.items()):
            members.sort(key=lambda m: m[0])
            total = sum(size for _, _, size in members)
            targets = {"test": self.params.test * total, "dev": self.params.dev * total}
            filled = {"test": 0, "dev": 0}
            for _, group, size in members:
                # A group joins a split while that brings the split's size closer to its target.
                for split in ("test", "dev"):
                    if filled[split] + size / 2 < targets[split]:
                        assigned[group] = split
                        filled[split] += size
                        break
        self.assigned = assigned

    def apply(self, batch: pa.Table) -> StepResult:
        if self.assigned is None:
            raise RuntimeError(f"{self.name}: fit() must run before apply()")
        splits = [self.assigned.get(g, "train") for g in self._groups(batch)]
        return StepResult(set_column(batch, SPLIT, pa.array(splits, pa.string())))
