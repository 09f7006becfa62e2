from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from gristmill.ops.quality.gopher import GopherQuality
from gristmill.records import from_rows
from gristmill.runner import run_recipe

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
COLS = ["n_words", "mean_word_length", "hash_word_ratio", "ellipsis_word_ratio", "bullet_lines_ratio",
        "ellipsis_lines_ratio", "alpha_words_ratio", "stop_words"]

# A passage of War and Peace with a bullet list added; "inline" values below were
# computed by datatrove 0.10.1 (GopherQualityFilter's own expressions, spaCy 3.8.18
# words) in benchmarks/.venv-datatrove and frozen here: datatrove is not a dependency.
INLINE = (
    'CHAPTER I.\n\n"Well, Prince, so Genoa and Lucca are now just family estates of the\nBuonapartes. But I warn '
    "you, if you don't tell me that this means war,\nif you still try to defend the infamies and horrors perpetrated"
    " by that\nAntichrist--I really believe he is Antichrist--I will have nothing more\nto do with you and you are "
    "no longer my friend, no longer my 'faithful\nslave,' as you call yourself! But how do you do? I see I have "
    'frightened\nyou--sit down and tell me all the news."\n\n- It was in July, 1805...\n- #1 and #2...\n\n"Well, '
    'Prince, so Genoa and Lucca are now just family estates of the\nBuonapartes."\n'
)
DATATROVE = {
    "inline": [116, 3.913793103448276, 0.013793103448275862, 0.013793103448275862, 0.13333333333333333,
               0.13333333333333333, 0.7793103448275862, 7],
    # (book, start, end) slices of ../shared/data/gutenberg_sample.jsonl.gz; end None = to the end of the book
    (0, 20000, 23000): [563, 3.959147424511545, 0.0, 0.0, 0.0, 0.0, 0.7691256830601093, 7],
    (0, -3000, None): [443, 5.4401805869074495, 0.0, 0.0, 0.0, 0.0, 0.9030927835051547, 8],
    (1, 20000, 23000): [515, 4.6058252427184465, 0.0, 0.0, 0.0, 0.0, 0.8728813559322034, 8],
    (1, -3000, None): [445, 5.462921348314607, 0.0, 0.0, 0.0, 0.0, 0.9034907597535934, 8],
}


def _run(op: GopherQuality, texts: list[str | None]) -> tuple[list[dict], list[str | None]]:
    """Scores (short names) and reasons (None = kept) per text, in order."""
    res = op.process(from_rows([{"id": f"r{i}", "text": t} for i, t in enumerate(texts)]))
    rows = {r["id"]: r for t in (res.kept, res.rejected) if t is not None for r in t.to_pylist()}
    ordered = [rows[f"r{i}"] for i in range(len(texts))]
    return ([{c: r[f"quality.gopher.{c}"] for c in COLS} for r in ordered], [r.get("_reason") for r in ordered])


def _one(text: str, **params: object) -> tuple[dict, str | None]:
    scores, reasons = _run(GopherQuality(**params), [text])
    return scores[0], reasons[0]


TINY = {"min_doc_words": 3}


def test_scores_of_a_tiny_document() -> None:
    # words: The cat and the dog .  -> 6 words, 5 not symbols; 'The' is not the stop word 'the'
    scores, reason = _one("The cat and the dog.", **TINY)
    assert scores == {"n_words": 5, "mean_word_length": 3.0, "hash_word_ratio": 0.0, "ellipsis_word_ratio": 0.0,
                      "bullet_lines_ratio": 0.0, "ellipsis_lines_ratio": 0.0, "alpha_words_ratio": 5 / 6,
                      "stop_words": 2}
    assert reason is None


def test_word_count_bounds() -> None:
    assert _one("The cat and the dog.", min_doc_words=6)[1] == "n_words: 5 < 6"
    assert _one("The cat and the dog.", min_doc_words=3, max_doc_words=4)[1] == "n_words: 5 > 4"
    assert _one("The cat and the dog.", min_doc_words=5, max_doc_words=5)[1] is None  # bounds are inclusive


def test_mean_word_length() -> None:
    scores, reason = _one("an ox is by the sea and", **TINY)  # 2+2+2+2+3+3+3 = 17 over 7
    assert scores["mean_word_length"] == pytest.approx(17 / 7) and reason == "mean_word_length: 2.429 < 3"
    scores, reason = _one("extraordinarily incomprehensibilities characteristically the and", **TINY)
    assert scores["mean_word_length"] == (15 + 21 + 18 + 3 + 3) / 5 and reason == "mean_word_length: 12 > 10"


def test_hash_and_ellipsis_per_word() -> None:
    # '#' is split off as its own word: # tag # tag the and cat -> 2 hashes over 7 words
    scores, reason = _one("#tag #tag the and cat", **TINY)
    assert scores["hash_word_ratio"] == 2 / 7 and reason == "hash_word_ratio: 0.2857 > 0.1"
    # the and cat ... dog ... -> 2 ellipses over 6 words
    scores, reason = _one("the and cat... dog...", **TINY)
    assert scores["ellipsis_word_ratio"] == 2 / 6 and reason == "ellipsis_word_ratio: 0.3333 > 0.1"


def test_bullet_and_ellipsis_lines() -> None:
    # '-' is a symbol word, '•' is not (datatrove's punctuation set lacks it); letters are 6 of 9 words
    loose = {**TINY, "min_alpha_words_ratio": None}
    scores, reason = _one("- the cats\n  - and dogs\n• more\nfour", **loose)
    assert scores["bullet_lines_ratio"] == 3 / 4 and reason is None
    scores, reason = _one("- the cats\n- and dogs\n• more", **loose)
    assert scores["n_words"] == 6 and scores["bullet_lines_ratio"] == 1.0
    assert reason == "bullet_lines_ratio: 1 > 0.9"
    scores, reason = _one("the cat went\nand dog…\nmore words...  ", **TINY, max_symbol_word_ratio=None)
    assert scores["ellipsis_lines_ratio"] == 2 / 3 and reason == "ellipsis_lines_ratio: 0.6667 > 0.3"


def test_alpha_words_counts_punctuation_as_words() -> None:
    scores, reason = _one("the and 1 2 3 4 cat", **TINY, min_avg_word_length=None)  # digits are words
    assert scores["alpha_words_ratio"] == 3 / 7 and reason == "alpha_words_ratio: 0.4286 < 0.8"
    scores, reason = _one("the, and, cat.", **TINY)  # 3 of 6 words have a letter
    assert scores["n_words"] == 3 and scores["alpha_words_ratio"] == 0.5


def test_stop_words_are_distinct_and_case_sensitive() -> None:
    scores, reason = _one("The cat sat on a mat with hats with The", **TINY)
    assert scores["stop_words"] == 1 and reason == "stop_words: 1 < 2"
    assert _one("The cat sat on a mat with hats with The", **TINY, stop_words=("with", "The"))[1] is None


def test_first_failing_rule_is_the_reason_and_none_disables() -> None:
    text = "#a #b ... x"  # short, and too many hashes and ellipses
    assert _one(text)[1].startswith("n_words: ")
    assert _one(text, min_doc_words=None, min_avg_word_length=None)[1] == "hash_word_ratio: 0.3333 > 0.1"
    off = {k: None for k in GopherQuality.Params.model_fields if k not in ("column", "stop_words", "drop")}
    assert _one(text, **off)[1] is None


def test_empty_and_null_texts_have_no_words() -> None:
    scores, reasons = _run(GopherQuality(), ["", None, "   \n"])
    assert reasons == ["n_words: 0 < 50"] * 3
    assert scores[0] == {"n_words": 0, "mean_word_length": None, "hash_word_ratio": None,
                         "ellipsis_word_ratio": None, "bullet_lines_ratio": None, "ellipsis_lines_ratio": None,
                         "alpha_words_ratio": None, "stop_words": 0}
    assert scores[2]["bullet_lines_ratio"] == 0.0  # one blank line


def test_drop_false_only_scores() -> None:
    res = GopherQuality(drop=False).process(from_rows([{"id": "a", "text": "tiny"}]))
    assert res.rejected is None and res.kept.column("quality.gopher.n_words").to_pylist() == [1]


def test_params_are_validated() -> None:
    with pytest.raises(ValidationError, match="min_doc_words"):
        GopherQuality(min_doc_words=-1)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        GopherQuality(max_symbol_ratio=0.1)  # a misspelt name is refused, not ignored


@pytest.mark.parametrize("name", ["max_symbol_word_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio",
                                  "min_alpha_words_ratio"])
def test_ratio_bounds_lie_between_0_and_1(name: str) -> None:
    with pytest.raises(ValidationError, match=rf"{name}\n  Input should be less than or equal to 1"):
        GopherQuality(**{name: 1.5})
    with pytest.raises(ValidationError, match=rf"{name}\n  Input should be greater than or equal to 0"):
        GopherQuality(**{name: -0.1})
    for ok in (0.0, 1.0, None):
        assert getattr(GopherQuality(**{name: ok}).params, name) == ok


@pytest.mark.parametrize("low, high", [("min_doc_words", "max_doc_words"),
                                       ("min_avg_word_length", "max_avg_word_length")])
def test_lower_bound_above_upper_bound_is_refused(low: str, high: str) -> None:
    with pytest.raises(ValidationError, match=f"{low} .* is above {high}"):
        GopherQuality(**{low: 20, high: 10})
    assert GopherQuality(**{low: 10, high: 10}).params.model_dump()[low] == 10
    GopherQuality(**{low: 20, high: None})  # an open bound is never crossed


def test_matches_datatrove_on_inline_passage() -> None:
    scores, reason = _one(INLINE)
    assert [scores[c] for c in COLS] == DATATROVE["inline"]
    assert reason == "alpha_words_ratio: 0.7793 < 0.8"


@pytest.mark.slow
def test_matches_datatrove_on_gutenberg_slices() -> None:
    with gzip.open(SHARED / "gutenberg_sample.jsonl.gz", "rt", encoding="utf-8") as f:
        books = [json.loads(f.readline())["text"] for _ in range(2)]
    keys = [k for k in DATATROVE if k != "inline"]
    texts = [books[b][start:end] for b, start, end in keys]
    scores, _ = _run(GopherQuality(), texts)
    for key, got in zip(keys, scores):
        assert [got[c] for c in COLS] == DATATROVE[key], key


def test_in_a_recipe(tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    rows = [{"id": "good", "text": INLINE.replace("- #1 and #2...\n", "") * 2}, {"id": "short", "text": "Too short."}]
    docs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    recipe = {"name": "g", "input": {"path": str(docs), "format": "jsonl"},
              "steps": [{"op": "quality.gopher", "params": {"min_alpha_words_ratio": 0.7}}],
              "output": {"format": "jsonl"}, "executor": {"workers": 1}}
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)
    step = summary.stats["steps"][0]
    assert step["dropped"] == {"n_words": 1} and step["rows_out"] == 1
    assert [r["name"] for r in step["rules"]][:2] == ["n_words", "mean_word_length"]
    scores = pq.read_table(next((tmp_path / "runs" / "g" / "scores").glob("*.parquet"))).to_pylist()
    assert {r["id"]: r["_kept"] for r in scores} == {"good": True, "short": False}
