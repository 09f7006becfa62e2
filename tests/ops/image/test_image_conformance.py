"""The conformance checks of tests/test_conformance.py, on a batch of images instead of texts.

The shared suite runs every operator with its ``example_params`` on a text batch (the image operators'
point at the text column there, and reject or pass every row); here each ``image.*`` operator runs with
image parameters on :func:`pictures.tricky` (good pictures in several modes and formats, a copy, and
every broken kind image.validate names)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from gristmill import registry
from gristmill.ops.base import GlobalOp, Operator, StepResult
from gristmill.records import REASON

from .pictures import batch

PARAMS: dict[str, dict[str, Any]] = {"image.resize": {"width": 16, "height": 16}, "image.label_issues": {"folds": 2}}
IMAGE_OPS = [n for n in registry.names() if n.startswith("image.")]


def make(name: str, **extra: Any) -> Operator:
    return registry.create(name, {**PARAMS.get(name, {}), **extra})


def run(op: Operator, fit: bool = True) -> StepResult:
    op.ensure_setup()
    if fit and isinstance(op, GlobalOp):
        op.fit([op.summarize(batch())])
    return op.process(batch())


def rows(table: Any) -> list[dict[str, Any]]:
    return [] if table is None else table.to_pylist()


def test_every_image_operator_is_here() -> None:
    assert set(IMAGE_OPS) == {"image.validate", "image.dedup", "image.quality", "image.resize", "image.augment",
                              "image.label_issues"}


@pytest.mark.parametrize("name", IMAGE_OPS)
def test_every_row_is_kept_or_rejected_with_a_reason(name: str) -> None:
    op = make(name)
    result = run(op)
    kept, rejected = rows(result.kept), rows(result.rejected)
    assert all(r.get(REASON) for r in rejected)
    ids = batch().column("id").to_pylist()
    if op.kind != "generator":
        assert sorted(r["id"] for r in kept + rejected) == sorted(ids)
    else:  # every original is kept or rejected, plus copies of the kept ones
        originals = [r["id"] for r in kept if r.get("augment.of") is None] + [r["id"] for r in rejected]
        assert sorted(originals) == sorted(ids)
    for column in op.writes():
        assert column in result.kept.column_names, column


@pytest.mark.parametrize("name", IMAGE_OPS)
def test_pickled_and_repeated_runs_agree(name: str) -> None:
    op = make(name)
    before = run(op)
    clone = pickle.loads(pickle.dumps(op))
    after = run(clone, fit=False)
    assert rows(after.kept) == rows(before.kept) and rows(after.rejected) == rows(before.rejected)
    again = run(make(name))
    assert rows(again.kept) == rows(before.kept) and rows(again.rejected) == rows(before.rejected)


@pytest.mark.parametrize("name", [n for n in IMAGE_OPS if registry.get(n).kind == "filter"])
def test_drop_false_keeps_every_row(name: str) -> None:
    op = make(name, drop=False)
    result = run(op)
    assert result.rejected is None and result.kept.num_rows == batch().num_rows
    for column in op.score_columns():
        assert column in result.kept.column_names
