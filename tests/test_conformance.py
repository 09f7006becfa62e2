"""Checks every registered operator must pass, whatever it does (scikit-learn's check_estimator).

Each operator runs with its ``example_params`` (defaults when it declares none). Global
operators are summarised and fitted on the batch they then process.
"""

from __future__ import annotations

import pickle
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gristmill import registry
from gristmill.ops.base import Filter, GlobalOp, Operator, StepResult
from gristmill.records import REASON, empty_batch, from_rows

NAMES = registry.names()

TRICKY_TEXTS = [
    None,
    "",
    "plain ASCII text with a few words in it",
    "数据清洗是训练语言模型的第一步。",  # CJK
    "emoji 👩‍👩‍👧 family, 👍🏽 and flags 🇯🇵",  # ZWJ sequence, skin tone, regional indicators
    "\u202bمرحبا بالعالم\u202c and עברית",  # RTL with embedding marks
    "combining: e\u0301 a\u0308 \u1100\u1161 Z\u0351\u0300\u0318",  # combining marks, jamo
    "plain ASCII text with a few words in it",  # a duplicate of row 2
    "donâ€™t <b>stop</b> &amp; ﬁne\u00a0 \t\r\n\r\n\r\nend\x00",
    " ",
]


def _batch() -> pa.Table:
    return from_rows([{"id": f"r{i}", "text": t} for i, t in enumerate(TRICKY_TEXTS)])


def _make(name: str) -> Operator:
    cls = registry.get(name)
    return cls(**cls.example_params)


def _run(op: Operator, batch: pa.Table, *, fit: bool = True) -> StepResult:
    op.ensure_setup()
    if fit and isinstance(op, GlobalOp):
        op.fit([op.summarize(batch)])
    return op.process(batch)


def _rows(table: pa.Table | None) -> list[dict[str, Any]]:
    return [] if table is None else table.to_pylist()


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_registry_resolves_to_the_named_class(name: str) -> None:
    cls = registry.get(name)
    assert cls.name == name
    assert issubclass(cls, Operator)
    assert cls.kind in ("mapper", "annotator", "filter", "global", "generator")
    assert cls.version


def test_has_a_one_line_summary(name: str) -> None:
    assert registry.get(name).summary().strip()


def test_params_reject_unknown_keys(name: str) -> None:
    cls = registry.get(name)
    with pytest.raises(ValidationError):
        cls(**cls.example_params, no_such_parameter=1)


def test_params_are_documented(name: str) -> None:
    for field, info in registry.get(name).Params.model_fields.items():
        assert info.description, f"{name}: parameter {field!r} has no description"


def test_empty_batch(name: str) -> None:
    result = _run(_make(name), empty_batch(("id", "text")))
    assert result.kept.num_rows == 0
    assert result.rejected is None or result.rejected.num_rows == 0


def test_null_and_unicode_rows_are_kept_or_rejected_with_a_reason(name: str) -> None:
    op = _make(name)
    batch = _batch()
    result = _run(op, batch)
    kept, rejected = _rows(result.kept), _rows(result.rejected)
    assert all(row.get(REASON) for row in rejected), "every rejected row needs a reason"
    if op.kind != "generator":
        assert len(kept) + len(rejected) == batch.num_rows
        ids = [row["id"] for row in kept + rejected]
        assert sorted(ids) == sorted(batch.column("id").to_pylist())
    if kept:
        for column in op.writes():
            assert column in result.kept.column_names, f"{name} declares it writes {column!r}"


def test_pickled_operator_gives_the_same_output(name: str) -> None:
    op = _make(name)
    batch = _batch()
    before = _run(op, batch)
    clone = pickle.loads(pickle.dumps(op))
    after = _run(clone, batch, fit=False)
    assert _rows(after.kept) == _rows(before.kept)
    assert _rows(after.rejected) == _rows(before.rejected)


def test_deterministic(name: str) -> None:
    batch = _batch()
    first, second = _run(_make(name), batch), _run(_make(name), batch)
    assert _rows(first.kept) == _rows(second.kept)
    assert _rows(first.rejected) == _rows(second.rejected)


IDEMPOTENT = [n for n in NAMES if registry.get(n).idempotent]


def test_idempotent_operators_are_declared() -> None:
    assert {"clean.normalize", "clean.strip_html"} <= set(IDEMPOTENT)


@pytest.mark.parametrize("name", IDEMPOTENT)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text() | st.none(), min_size=1, max_size=4))
def test_applying_twice_equals_once(name: str, texts: list[str | None]) -> None:
    op = _make(name)
    batch = pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())})
    once = _run(op, batch)
    twice = _run(op, once.kept)
    assert twice.kept.to_pylist() == once.kept.to_pylist()


def test_hooks_are_declared_on_the_base_and_answer_for_every_operator() -> None:
    """The runner, report and CLI call hooks without getattr: every operator answers each one."""
    for name in registry.names():
        cls = registry.get(name)
        op = cls(**cls.example_params)
        assert isinstance(op.score_columns(), list) and isinstance(op.rules(), list), name
        assert op.take_usage() is None or isinstance(op.take_usage(), dict), name
        assert all(isinstance(m, str) for m in op.required_modules()), name
        for hook in ("score_columns", "rules", "run_summary", "take_usage", "describe_extra", "required_modules"):
            assert callable(getattr(Operator, hook))
    assert registry.get("dedup.minhash").overrides("describe_extra")
    assert not registry.get("filter.length").overrides("describe_extra")
    assert registry.get("toxicity.score").overrides("audit_section")  # a classmethod hook
    assert not registry.get("filter.length").overrides("audit_section")


def test_one_filter_base_owns_the_loop() -> None:
    """Every filter is a Filter: its base writes scores, checks rules and honours drop: false;
    no filter re-implements process()."""
    for name in registry.names():
        cls = registry.get(name)
        if cls.kind != "filter":
            continue
        assert issubclass(cls, Filter), name
        assert "drop" in cls.Params.model_fields, name
        assert cls.process is Filter.process, f"{name} overrides process()"


def test_a_missing_column_is_named_by_every_operator() -> None:
    """The base class of each kind checks the columns reads() names, before the operator's own code."""
    checked = 0
    for name in NAMES:
        op = _make(name)
        needed = [c for c in op.reads() if c != "id"]
        if not needed:  # reads only id, which every batch has
            continue
        batch = _batch().drop_columns([c for c in needed if c in _batch().column_names])
        batch = batch.append_column("other", pa.array(["x"] * batch.num_rows))
        op.ensure_setup()
        with pytest.raises(KeyError, match=f"{name}: column '{needed[0]}' not in batch"):
            if isinstance(op, GlobalOp):
                op.check_columns(batch)  # the worker checks before summarize(); process() checks again
            op.process(batch)
        checked += 1
    assert checked >= 25


def test_drop_false_keeps_every_row_and_writes_the_scores() -> None:
    for name in registry.names():
        cls = registry.get(name)
        if cls.kind != "filter" or name == "judge.score":
            continue
        op = cls(**{**cls.example_params, "drop": False})
        result = _run(op, _batch())
        assert result.rejected is None and result.kept.num_rows == len(TRICKY_TEXTS), name
        for col in op.score_columns():
            assert col in result.kept.column_names, (name, col)
