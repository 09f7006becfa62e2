"""quality.perplexity with the real SmolLM2-135M (one model load for the module)."""

from __future__ import annotations

import pickle
import random
import re

import pytest
from pydantic import ValidationError

from gristmill.ops.quality.perplexity import SCORE, Perplexity
from gristmill.records import from_rows
from tests.models._text import paragraphs

FAST = {"threads": 1, "max_tokens": 96}


def _shuffled(text: str, seed: int) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return paragraphs(0, 2) + paragraphs(3, 2)


def _scores(op: Perplexity, texts: list[str | None]) -> list[float | None]:
    op.ensure_setup()
    batch = from_rows([{"id": f"r{i}", "text": t} for i, t in enumerate(texts)])
    return op.scores(batch)[SCORE].to_pylist()


def test_fluent_english_scores_lower_than_its_shuffled_words(texts: list[str]) -> None:
    op = Perplexity(**FAST)
    fluent = _scores(op, texts)
    shuffled = _scores(op, [_shuffled(t, i) for i, t in enumerate(texts)])
    for f, s in zip(fluent, shuffled):
        assert 5 < f < 150 and s > 3 * f


def test_batching_gives_the_numbers_of_batch_size_one(texts: list[str]) -> None:
    mixed = [texts[0][:200], texts[1], texts[2][:90], texts[3]]  # unequal lengths: padding in a batch
    one = _scores(Perplexity(**FAST, batch_size=1), mixed)
    four = _scores(Perplexity(**FAST, batch_size=4), mixed)
    assert four == pytest.approx(one, rel=2e-2)
    exact1 = _scores(Perplexity(**FAST, batch_size=1, dtype="float32"), mixed)
    exact4 = _scores(Perplexity(**FAST, batch_size=3, dtype="float32"), mixed)
    assert exact4 == pytest.approx(exact1, rel=1e-4)
    assert four == pytest.approx(exact1, rel=0.1)  # bfloat16 near float32 (measured: within 5%)


def test_rows_above_the_ceiling_are_dropped_with_the_value(texts: list[str]) -> None:
    rows = [{"id": "fluent", "text": texts[0]}, {"id": "shuffled", "text": _shuffled(texts[0], 1)},
            {"id": "null", "text": None}, {"id": "blank", "text": "  \n"}]
    result = Perplexity(**FAST, max_perplexity=200).process(from_rows(rows))
    assert result.kept.column("id").to_pylist() == ["fluent", "null", "blank"]
    assert result.kept.column(SCORE).to_pylist()[1:] == [None, None]
    (dropped,) = result.rejected.to_pylist()
    assert dropped["id"] == "shuffled" and dropped[SCORE] > 200
    assert re.fullmatch(r"max_perplexity: [\d.e+]+ > 200", dropped["_reason"])
    annotated = Perplexity(**FAST, max_perplexity=200, drop=False).process(from_rows(rows))
    assert annotated.rejected is None and annotated.kept.num_rows == 4
    assert Perplexity(max_perplexity=None).rules() == []


def test_windows_score_every_token_once_with_context() -> None:
    op = Perplexity(max_tokens=8, stride=3)
    tokens = list(range(20))
    windows = op.windows(tokens)
    scored = [w[f:] for w, f in windows]
    assert [t for s in scored for t in s] == tokens[1:]
    for k, (w, f) in enumerate(windows):
        assert len(w) <= 8 and (k == 0 or f >= 8 - 3)
    assert Perplexity(max_tokens=8).windows(tokens) == [(tokens[:8], 1)]


def test_stride_scores_the_whole_document(texts: list[str]) -> None:
    long_doc = " ".join(texts)
    short = texts[0][:150]
    strided = Perplexity(threads=1, max_tokens=64, stride=48)
    truncated = Perplexity(threads=1, max_tokens=64)
    s_long, s_short = _scores(strided, [long_doc, short])
    t_long, t_short = _scores(truncated, [long_doc, short])
    assert s_short == pytest.approx(t_short, rel=1e-6)  # fits in one window: the same computation
    assert s_long != pytest.approx(t_long, rel=1e-3)
    assert 5 < s_long < 150


def test_params_and_pickling() -> None:
    with pytest.raises(ValidationError, match="stride"):
        Perplexity(max_tokens=64, stride=64)
    op = Perplexity(**FAST)
    op.ensure_setup()
    clone = pickle.loads(pickle.dumps(op))
    assert clone._lm is None and len(pickle.dumps(op)) < 10_000
