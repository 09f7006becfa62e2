from __future__ import annotations

import pyarrow as pa

from gristmill.ops.base import Filter, FilterParams
from gristmill.ops.text.scoring import Rule


class WordCount(Filter):
    """Test operator: scores words and letters, keeps 3..5 words."""

    name = "test.words"

    class Params(FilterParams):
        pass

    def writes(self) -> list[str]:
        return ["t.words", "t.letters"]

    def scores(self, batch: pa.Table) -> dict:
        texts = batch.column("text").to_pylist()
        return {"t.words": [len(t.split()) if t else None for t in texts],
                "t.letters": [sum(c.isalpha() for c in t) / len(t) if t else None for t in texts]}

    def rules(self) -> list[Rule]:
        return [Rule("min_words", "t.words", min=3), Rule("max_words", "t.words", max=5),
                Rule("letters", "t.letters", min=0.5)]


def batch(*texts: str | None) -> pa.Table:
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": list(texts)})


def test_first_failing_rule_names_rule_and_value() -> None:
    res = WordCount().process(batch("a b", "a b c d", "a b c d e f", "1 2 3 4", None))
    assert res.kept.column("id").to_pylist() == ["1", "4"]
    assert res.rejected.column("_reason").to_pylist() == ["min_words: 2 < 3", "max_words: 6 > 5", "letters: 0 < 0.5"]
    # scores are on kept and rejected rows alike
    assert res.kept.column("t.words").to_pylist() == [4, None]
    assert res.rejected.column("t.words").to_pylist() == [2, 6, 4]


def test_drop_false_only_annotates() -> None:
    res = WordCount(drop=False).process(batch("a", "a b c"))
    assert res.rejected is None and res.kept.column("t.words").to_pylist() == [1, 3]


def test_empty_batch_gets_score_columns() -> None:
    res = WordCount().process(batch())
    assert res.kept.num_rows == 0 and {"t.words", "t.letters"} <= set(res.kept.column_names)
