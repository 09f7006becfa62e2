from __future__ import annotations

import pytest
from pydantic import ValidationError

from gristmill.ops.filter.length import LengthFilter
from gristmill.records import from_rows


def _reasons(op: LengthFilter, texts: list[str | None]) -> list[str | None]:
    batch = from_rows([{"id": f"r{i}", "text": t} for i, t in enumerate(texts)])
    result = op.process(batch)
    by_id = {row["id"]: row["_reason"] for row in (result.rejected.to_pylist() if result.rejected else [])}
    assert result.kept.num_rows + len(by_id) == len(texts)
    return [by_id.get(f"r{i}") for i in range(len(texts))]


def test_reasons_name_the_rule_and_the_values() -> None:
    op = LengthFilter(min_chars=3, max_chars=20, min_words=2, max_words=4)
    assert _reasons(op, ["ab", "x" * 21, "abcdef", "a b c d e", "one two", None]) == [
        "min_chars: 2 < 3",
        "max_chars: 21 > 20",
        "min_words: 1 < 2",
        "max_words: 5 > 4",
        None,
        "missing_text: null",
    ]


def test_bounds_are_inclusive_and_chars_are_code_points() -> None:
    op = LengthFilter(min_chars=2, max_chars=2)
    assert _reasons(op, ["数据", "👍🏽", "e\u0301", "abc"]) == [None, None, None, "max_chars: 3 > 2"]


def test_words_split_on_any_whitespace() -> None:
    op = LengthFilter(min_words=3)
    assert _reasons(op, ["a\tb\nc", "  a \u3000 b  ", "数据 清洗 步骤"]) == [None, "min_words: 2 < 3", None]


def test_defaults_keep_everything_but_null() -> None:
    assert _reasons(LengthFilter(), ["", "x" * 100_000, None]) == [None, None, "missing_text: null"]


def test_other_column() -> None:
    batch = from_rows([{"id": "a", "output": "short"}, {"id": "b", "output": "a longer answer"}])
    result = LengthFilter(column="output", min_words=2).process(batch)
    assert result.kept.column("id").to_pylist() == ["b"]
    assert LengthFilter(column="output").reads() == ["output"]


@pytest.mark.parametrize(("params", "message"), [
    ({"min_chars": 10, "max_chars": 5}, "min_chars .10. must not exceed max_chars .5."),
    ({"min_words": 3, "max_words": 2}, "min_words .3. must not exceed max_words .2."),
    ({"min_words": -1}, "greater than or equal to 0"),
])
def test_invalid_bounds(params: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LengthFilter(**params)
