"""quality.fineweb: each rule on tiny hand-made texts, scores checked by hand, and the
Gutenberg sample against datatrove's FineWebQualityFilter counts."""

from __future__ import annotations

import collections
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gristmill.io import open_reader
from gristmill.io.base import BadRecord, ReaderOptions
from gristmill.ops.quality.fineweb import FineWebQuality, count_words

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
NS = "quality.fineweb."

# Lines over 30 characters, ending with a full stop, all different.
PROSE = [f"This is line number {i} of a perfectly ordinary text." for i in range(10)]


def run(*texts: str | None, **params):
    batch = pa.table({"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.string())})
    return FineWebQuality(**params).process(batch)


def scores(text: str | None, **params) -> dict:
    res = run(text, **params, drop=False)
    row = res.kept.to_pylist()[0]
    return {k[len(NS):]: v for k, v in row.items() if k.startswith(NS)}


def reason(text: str | None, **params) -> str | None:
    res = run(text, **params)
    return None if res.rejected is None else res.rejected.column("_reason")[0].as_py()


def test_plain_prose_passes_every_rule() -> None:
    text = "\n".join(PROSE)
    s = scores(text)
    assert s["lines"] == 10
    assert s["line_punct_ratio"] == 1.0
    assert s["short_line_ratio"] == 0.0
    assert s["char_dup_ratio"] == 0.0
    # 9 newlines; each line has 10 words + "." = 11 words.
    assert s["newline_ratio"] == pytest.approx(9 / 110)
    assert reason(text) is None


def test_line_punct_ratio() -> None:
    one = "\n".join([PROSE[0]] + [p[:-1] for p in PROSE[1:]])  # 1 of 10 lines ends with "."
    two = "\n".join(PROSE[:2] + [p[:-1] for p in PROSE[2:]])
    assert scores(one)["line_punct_ratio"] == pytest.approx(0.1)
    assert reason(one) == "line_punct_ratio: 0.1 < 0.12"
    assert scores(two)["line_punct_ratio"] == pytest.approx(0.2)
    assert reason(two) is None
    # Every terminal mark of datatrove's set counts, e.g. "?" "!" "。"; a trailing space does not.
    assert scores("Is it?\nYes!\n是的。\nno. ")["line_punct_ratio"] == pytest.approx(0.75)
    # line_punct_exclude_zero lets a text with no punctuated line through that rule.
    bare = "\n".join(p[:-1] for p in PROSE)
    assert reason(bare) == "line_punct_ratio: 0 < 0.12"
    assert reason(bare, line_punct_exclude_zero=True) is None
    # Custom stop characters (whole strings).
    assert scores(bare, stop_chars=["text"])["line_punct_ratio"] == 1.0


def test_short_line_ratio() -> None:
    short = ["Short line one.", "Short line two.", "Short line three."]  # <= 30 characters
    three = "\n".join(short)
    two_of_three = "\n".join(short[:2] + [PROSE[0]])
    assert scores(three)["short_line_ratio"] == 1.0
    assert reason(three) == "short_line_ratio: 1 > 0.67"
    assert scores(two_of_three)["short_line_ratio"] == pytest.approx(2 / 3)  # 0.667 <= 0.67
    assert reason(two_of_three) is None
    # Exactly 30 characters is short, 31 is not.
    assert scores("x" * 30 + "\n" + "y" * 31)["short_line_ratio"] == 0.5


def test_char_dup_ratio() -> None:
    text = "\n".join(PROSE[:3] + [PROSE[0], PROSE[0]])  # PROSE[0] twice more
    chars = len(text) - text.count("\n")
    s = scores(text)
    assert s["char_dup_ratio"] == pytest.approx(2 * len(PROSE[0]) / chars)
    assert reason(text).startswith("char_dup_ratio: 0.4")
    # Blank lines are not lines, so they never repeat; repeats across texts do not count.
    spaced = "\n\n\n".join(PROSE)
    assert scores(spaced)["char_dup_ratio"] == 0.0
    res = run("\n".join(PROSE), "\n".join(PROSE))
    assert res.rejected is None


def test_newline_ratio() -> None:
    # One long word and a full stop per line: 2 words per line, so 9 newlines / 20 words.
    lines = [f"{'abcdefghij' * 4}{i}." for i in range(10)]
    text = "\n".join(lines)
    s = scores(text)
    assert s["newline_ratio"] == pytest.approx(0.45)
    assert reason(text) == "newline_ratio: 0.45 > 0.3"
    assert reason(text, new_line_ratio=0.5) is None
    # Blank lines still count as newlines.
    assert scores("\n\n".join(PROSE))["newline_ratio"] == pytest.approx(18 / 110)


def test_empty_and_null_texts_are_dropped_with_null_ratios() -> None:
    for text in ("", "   \n \t\n", None):
        s = scores(text)
        assert s["lines"] == 0
        assert s["line_punct_ratio"] is None and s["newline_ratio"] is None
        assert reason(text) == "empty: 0 < 1"


def test_rules_are_checked_in_datatrove_order() -> None:
    # Fails line punctuation and short lines: the first rule names the reason.
    assert reason("a\nb\nc") == "line_punct_ratio: 0 < 0.12"
    # A rule set to None is not checked.
    assert reason("a\nb\nc", line_punct_thr=None) == "short_line_ratio: 1 > 0.67"
    assert [r.name for r in FineWebQuality().rules()] == ["empty", "line_punct_ratio", "short_line_ratio",
                                                          "char_dup_ratio", "newline_ratio"]


def test_crlf_lines_do_not_end_in_punctuation() -> None:
    # datatrove splits on "\n" only, so "\r" ends every line (clean.normalize first).
    crlf = "\r\n".join(PROSE)
    assert scores(crlf)["line_punct_ratio"] == pytest.approx(0.1)


@pytest.mark.parametrize(("text", "n"), [
    ("Hello, world.", 4),
    ("don't", 2),
    ("3.5 1,000", 2),
    ("well-known", 3),
    ("wait...", 2),
    ("a--b", 3),
    ("“Yes,” she said.", 7),
    ("naïve café", 2),
    ("It’s John’s.", 5),
    ("(a) [b]", 6),
    ("x — y", 3),
    ("", 0),
    ("  \n ", 0),
])
def test_word_counts_match_spacy(text: str, n: int) -> None:
    # The expected numbers are spaCy's (datatrove's split_into_words) for these texts.
    assert count_words(pa.array([text]))[2][0] == n


def test_word_count_known_differences_from_spacy() -> None:
    # spaCy keeps abbreviations whole and splits "." between a lower-case and a capital letter.
    assert list(count_words(pa.array(["Mr. Smith", "e.g. this", "end.Next"]))[2]) == [3, 3, 1]  # spaCy: 2, 2, 3


def test_word_counts_over_many_texts_and_slices() -> None:
    texts = pc.fill_null(pa.array(["a b", None, "", "c, d.\n", "x" * 10, "é’s"]), "")
    chars, newlines, words = count_words(texts)
    assert list(words) == [2, 0, 0, 4, 1, 2]
    assert list(chars) == [3, 0, 0, 6, 10, 3]
    assert list(newlines) == [0, 0, 0, 1, 0, 0]
    # A slice of a larger array (non-zero offset) gives the same counts.
    assert list(count_words(texts.slice(3, 2))[2]) == [4, 1]


@pytest.mark.slow
def test_gutenberg_sample_matches_datatrove() -> None:
    """Drops by rule on the Gutenberg sample cut into 3,000-character documents (CRLF
    normalised), equal to datatrove 0.10.1's FineWebQualityFilter on the same documents."""
    rows = [r for r in open_reader(SHARED_DATA / "gutenberg_sample.jsonl.gz", ReaderOptions(chunk_chars=3000))
            if not isinstance(r, BadRecord)]
    batch = pa.table({"id": [r["id"] for r in rows], "text": [r["text"].replace("\r\n", "\n") for r in rows]})
    res = FineWebQuality().process(batch)
    rules = collections.Counter(r.split(":")[0] for r in res.rejected.column("_reason").to_pylist())
    assert res.kept.num_rows == 6590
    assert rules == {"line_punct_ratio": 8702, "char_dup_ratio": 252, "short_line_ratio": 10, "newline_ratio": 3}
