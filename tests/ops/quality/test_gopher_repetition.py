from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from gristmill.ops.quality.gopher_repetition import GopherRepetition
from gristmill.records import from_rows

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
COLS = (["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
        + [f"top_{n}gram" for n in (2, 3, 4)] + [f"dup_{n}gram" for n in range(5, 11)])

# Frozen from datatrove 0.10.1 (GopherRepetitionFilter's functions over spaCy 3.8.18 words),
# computed once in benchmarks/.venv-datatrove: datatrove is not a dependency.
INLINE = (
    'CHAPTER I.\n\n"Well, Prince, so Genoa and Lucca are now just family estates of the\nBuonapartes. But I warn '
    "you, if you don't tell me that this means war,\nif you still try to defend the infamies and horrors perpetrated"
    " by that\nAntichrist--I really believe he is Antichrist--I will have nothing more\nto do with you and you are "
    "no longer my friend, no longer my 'faithful\nslave,' as you call yourself! But how do you do? I see I have "
    'frightened\nyou--sit down and tell me all the news."\n\n- It was in July, 1805...\n- #1 and #2...\n\n"Well, '
    'Prince, so Genoa and Lucca are now just family estates of the\nBuonapartes."\n'
)
DATATROVE = {
    "inline": [0.0, 0.0, 0.07692307692307693, 0.11202635914332784, 0.019769357495881382, 0.026359143327841845,
               0.04942339373970346, 0.08731466227347612, 0.11202635914332784, 0.08401976935749589,
               0.09225700164744646, 0.11202635914332784, 0.051070840197693576],
    # (book, start, end) slices of ../shared/data/gutenberg_sample.jsonl.gz; end None = to the end of the book
    (0, 20000, 23000): [0.0, 0.0, 0.0, 0.0, 0.02, 0.007, 0.009333333333333334, 0.007333333333333333,
                        0.009666666666666667, 0.012333333333333333, 0.004666666666666667, 0.0, 0.0],
    (0, -3000, None): [0.0, 0.0, 0.23529411764705882, 0.005333333333333333, 0.051, 0.038, 0.044, 0.018, 0.012,
                       0.015333333333333332, 0.0, 0.0, 0.0],
    (1, 20000, 23000): [0.0, 0.0, 0.02127659574468085, 0.0003333333333333333, 0.013333333333333334,
                        0.007333333333333333, 0.007666666666666666, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    (1, -3000, None): [0.0, 0.0, 0.19696969696969696, 0.004333333333333333, 0.051, 0.038, 0.044, 0.018, 0.012,
                       0.015333333333333332, 0.0, 0.0, 0.0],
}
OFF = {"dup_para_frac": None, "dup_para_char_frac": None, "dup_line_frac": None, "dup_line_char_frac": None,
       "top_n_grams": {2: None, 3: None, 4: None}, "dup_n_grams": {n: None for n in range(5, 11)}}


def _run(op: GopherRepetition, texts: list[str | None]) -> tuple[list[dict], list[str | None]]:
    res = op.process(from_rows([{"id": f"r{i}", "text": t} for i, t in enumerate(texts)]))
    rows = {r["id"]: r for t in (res.kept, res.rejected) if t is not None for r in t.to_pylist()}
    ordered = [rows[f"r{i}"] for i in range(len(texts))]
    return ([{k.removeprefix("quality.rep."): v for k, v in r.items() if k.startswith("quality.rep.")}
             for r in ordered], [r.get("_reason") for r in ordered])


def _one(text: str, **params: object) -> tuple[dict, str | None]:
    scores, reasons = _run(GopherRepetition(**{**OFF, **params}), [text])
    return scores[0], reasons[0]


def test_duplicate_paragraphs_by_count_and_characters() -> None:
    text = "a b\n\na b\n\nc d"  # 3 paragraphs, the second repeats the first: 1 of 3, 3 of 13 characters
    scores, reason = _one(text, dup_para_frac=0.3, dup_para_char_frac=0.2)
    assert scores["dup_para_frac"] == 1 / 3 and scores["dup_para_char_frac"] == 3 / 13
    assert reason == "dup_para_frac: 0.3333 > 0.3"
    assert _one(text, dup_para_char_frac=0.2)[1] == "dup_para_char_frac: 0.2308 > 0.2"
    assert _one(text, dup_para_frac=0.34, dup_para_char_frac=0.24)[1] is None


def test_duplicate_lines_bounds_are_inclusive() -> None:
    text = "x y\nx y\nz\nw\nvvv"  # lines split on runs of newlines: 1 of 5 repeats, 3 of 15 characters
    scores, reason = _one(text, dup_line_frac=0.2, dup_line_char_frac=0.2)
    assert scores["dup_line_frac"] == 0.2 and scores["dup_line_char_frac"] == 0.2 and reason is None
    assert _one(text, dup_line_frac=0.19)[1] == "dup_line_frac: 0.2 > 0.19"
    assert _one("p\n\n\nq\n\np", dup_line_frac=0.3)[0]["dup_line_frac"] == 1 / 3


def test_top_ngram_is_the_most_frequent_times_its_count() -> None:
    # 2-grams: 'the cat' x3, 'cat the' x2 -> 7 chars * 3 over 23
    scores, reason = _one("the cat the cat the cat", top_n_grams={2: 0.2, 3: None, 4: None})
    assert scores["top_2gram"] == 21 / 23 and reason == "top_2gram: 0.913 > 0.2"
    # 3-grams: 'the cat the' x2 (11 chars) and 'cat the cat' x2: the first seen wins
    assert scores["top_3gram"] == 22 / 23


def test_top_ngram_ties_go_to_the_first_seen_not_the_longest() -> None:
    # 'a bb' and 'bb cc' both twice: 'a bb' comes first -> 4 * 2 characters over 15
    assert _one("a bb cc a bb cc")[0]["top_2gram"] == 8 / 15


def test_top_ngram_is_null_when_there_are_fewer_words() -> None:
    scores, _ = _one("one two three")
    assert scores["top_2gram"] == (7 / 13) and scores["top_3gram"] == 1.0 and scores["top_4gram"] is None
    assert [scores[f"dup_{n}gram"] for n in range(5, 11)] == [0.0] * 6


def test_duplicated_ngrams_skip_overlaps() -> None:
    text = "a b c d e a b c d e a b c d e"  # 5-grams: 'abcde' at 0, repeats at 5 and 10 (jump 5 each)
    scores, reason = _one(text, dup_n_grams={**OFF["dup_n_grams"], 5: 0.15})
    assert scores["dup_5gram"] == 10 / 29 and reason == "dup_5gram: 0.3448 > 0.15"
    # 6-grams: 'abcdea' at 0 repeats at 5 (+6, jump to 11: beyond the last 6-gram at 9)
    assert scores["dup_6gram"] == 6 / 29 and scores["dup_10gram"] == 10 / 29


def test_duplicated_ngrams_compare_words_joined_without_spaces() -> None:
    # 'ab c d e f' and 'a bc d e f' are the same 5-gram for datatrove: 'abcdef'
    scores, _ = _one("ab c d e f x a bc d e f")
    assert scores["dup_5gram"] == 6 / 23 and scores["dup_6gram"] == 0.0


def test_empty_text_is_dropped() -> None:
    scores, reasons = _run(GopherRepetition(), ["", None])
    assert reasons == ["empty: 0 < 1", "empty: 0 < 1"]
    assert scores[0]["n_chars"] == 0 and scores[0]["top_2gram"] is None and scores[0]["dup_line_frac"] is None


def test_rules_follow_datatrove_order_and_custom_ngrams() -> None:
    op = GopherRepetition(top_n_grams={3: 0.5}, dup_n_grams={7: 0.2, 5: 0.1})
    assert [r.name for r in op.rules()] == ["empty", "dup_para_frac", "dup_para_char_frac", "dup_line_frac",
                                            "dup_line_char_frac", "top_3gram", "dup_5gram", "dup_7gram"]
    assert "quality.rep.dup_7gram" in op.writes() and "quality.rep.top_2gram" not in op.writes()
    with pytest.raises(ValidationError):
        GopherRepetition(top_n_grams={0: 0.1})


def test_matches_datatrove_on_inline_passage() -> None:
    scores, reason = _run(GopherRepetition(), [INLINE])
    assert [scores[0][c] for c in COLS] == DATATROVE["inline"]
    assert scores[0]["n_chars"] == len(INLINE) and reason == ["dup_9gram: 0.112 > 0.11"]


@pytest.mark.slow
def test_matches_datatrove_on_gutenberg_slices() -> None:
    with gzip.open(SHARED / "gutenberg_sample.jsonl.gz", "rt", encoding="utf-8") as f:
        books = [json.loads(f.readline())["text"] for _ in range(2)]
    keys = [k for k in DATATROVE if k != "inline"]
    scores, _ = _run(GopherRepetition(), [books[b][start:end] for b, start, end in keys])
    for key, got in zip(keys, scores):
        assert [got[c] for c in COLS] == DATATROVE[key], key
