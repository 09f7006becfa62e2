"""quality.c4: each line rule and document rule on tiny hand-made texts, scores checked by
hand, sentence counts against spaCy's, and the Gutenberg sample against datatrove's counts."""

from __future__ import annotations

import collections
from pathlib import Path

import pyarrow as pa
import pytest

from gristmill.io import open_reader
from gristmill.io.base import BadRecord, ReaderOptions
from gristmill.ops.quality.c4 import C4Quality, count_sentences
from gristmill.ops.text.bad_words import bad_words

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
NS = "quality.c4."

# Five lines, one sentence each, all surviving the line rules.
GOOD = ["The river ran past the old mill.", "Farmers brought their grain each autumn.",
        "The miller ground it into flour.", "Bakers in the town bought the flour.",
        "Everyone ate bread all winter long."]


def run(*texts: str | None, **params):
    batch = pa.table({"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.string())})
    return C4Quality(**params).process(batch)


def scores(text: str | None, **params) -> dict:
    row = run(text, **params, drop=False).kept.to_pylist()[0]
    return {k[len(NS):]: v for k, v in row.items() if k.startswith(NS)}


def reason(text: str | None, **params) -> str | None:
    res = run(text, **params)
    return None if res.rejected is None else res.rejected.column("_reason")[0].as_py()


def doc(*extra: str) -> str:
    return "\n".join(GOOD + list(extra))


def test_clean_text_passes() -> None:
    s = scores(doc())
    assert s == {"lorem_ipsum": 0, "curly_bracket": 0, "sentences": 5, "bad_words": 0, "kept_line_frac": 1.0}
    assert reason(doc()) is None


def test_too_few_sentences() -> None:
    four = "\n".join(GOOD[:4])
    assert scores(four)["sentences"] == 4
    assert reason(four) == "too_few_sentences: 4 < 5"
    assert reason(four, min_num_sentences=4) is None
    assert reason(four, min_num_sentences=None) is None
    # Sentences inside one line count: three lines, five sentences.
    packed = "One is here. Two is here.\nThree is here! Four is here?\nFive is here."
    assert scores(packed)["sentences"] == 5
    assert reason(packed) is None


def test_lines_without_terminal_punctuation_are_removed() -> None:
    text = doc("A heading without a full stop", "It trailed off...", "She said \"yes.\"", "Was it 'so'",
               "Was it so")
    s = scores(text)
    # 10 non-blank lines: the heading, the ellipsis and the last question are removed;
    # closing quotes count as terminal punctuation.
    assert s["kept_line_frac"] == pytest.approx(7 / 10)
    assert s["sentences"] == 7
    assert scores(text, filter_no_terminal_punct=False)["kept_line_frac"] == 1.0


def test_short_lines_are_removed() -> None:
    s = scores(doc("Yes sir.", "Yes sir, indeed."))  # 2 words: removed; 3 words: kept
    assert s["kept_line_frac"] == pytest.approx(6 / 7)
    assert scores(doc("Yes sir."), min_words_per_line=2)["kept_line_frac"] == 1.0
    assert scores(doc("Yes."), min_words_per_line=None)["kept_line_frac"] == 1.0


def test_javascript_and_policy_lines_are_removed_not_the_document() -> None:
    text = doc("Please enable JavaScript to view this page.", "This site uses cookies to work.",
               "Read our Privacy Policy for details.", "By using it you accept the terms of use.")
    s = scores(text)
    assert s["kept_line_frac"] == pytest.approx(5 / 9)
    assert s["sentences"] == 5
    assert reason(text) is None
    assert scores(text, filter_javascript=False, filter_policy=False)["kept_line_frac"] == 1.0


def test_lorem_ipsum_drops_the_document() -> None:
    text = doc("Lorem ipsum dolor sit amet, consectetur adipiscing elit.")
    assert scores(text)["lorem_ipsum"] == 1
    assert reason(text) == "lorem_ipsum: 1 > 0"
    assert reason(text, filter_lorem_ipsum=False) is None
    # Only surviving lines count: without terminal punctuation the line is just removed.
    assert reason(doc("Lorem ipsum dolor sit amet")) is None


def test_curly_bracket_drops_the_document() -> None:
    text = doc("The set {1, 2} has two members.")
    assert scores(text)["curly_bracket"] == 1
    assert reason(text) == "curly_bracket: 1 > 0"
    assert reason(text, filter_curly_bracket=False) is None
    # Not in a removed line: no terminal punctuation, or a javascript line (checked first).
    assert reason(doc("function f() { return 1; }")) is None
    assert reason(doc("In JavaScript you write {a: 1} for objects.")) is None


def test_citations_are_cut_before_the_punctuation_check() -> None:
    text = doc("The mill was built in 1820.[3]", "It burned down once.[citation needed]")
    assert scores(text)["kept_line_frac"] == 1.0
    assert scores(text, remove_citations=False)["kept_line_frac"] == pytest.approx(5 / 7)


def test_lines_with_a_too_long_word_are_removed() -> None:
    text = doc(f"A word {'x' * 1001} here.", f"A word {'y' * 1000} here.")
    assert scores(text)["kept_line_frac"] == pytest.approx(6 / 7)
    assert scores(text, max_word_length=None)["kept_line_frac"] == 1.0


def test_bad_words_drop_the_document_as_whole_words() -> None:
    text = doc("An escort waited at the gate.")
    assert scores(text)["bad_words"] == 1
    assert reason(text) == "bad_words: 1 > 0"
    assert reason(text, filter_bad_words=False) is None
    # Case-insensitive, whole words only, and only in surviving lines.
    assert scores(doc("ESCORT duty was dull."))["bad_words"] == 1
    assert scores(doc("The escorts and the class assessed it."))["bad_words"] == 0
    assert scores(doc("an escort waited"))["bad_words"] == 0
    # Phrases match across the whole phrase, flanked by non-word characters.
    assert scores(doc("We went to the strip club, sadly."))["bad_words"] == 1


def test_bad_word_list_path_and_shipped_list(tmp_path: Path) -> None:
    words = bad_words()
    assert len(words) == 377 and "2g1c" in words and "s&m" in words
    assert not any(w.startswith("#") for w in words)
    custom = tmp_path / "words.txt"
    custom.write_text("# my list\nMiller\n\nflour mill\n", encoding="utf-8")
    assert bad_words(str(custom)) == ["flour mill", "miller"]
    s = scores(doc("The flour mill closed."), bad_words_path=str(custom))
    assert s["bad_words"] == 2  # "miller" in GOOD[2], "flour mill" here


def test_kept_line_frac_rule_is_optional() -> None:
    text = doc("no punctuation here", "none here either", "or here")
    assert scores(text)["kept_line_frac"] == pytest.approx(5 / 8)
    assert reason(text) is None
    assert reason(text, min_kept_line_frac=0.7) == "kept_line_frac: 0.625 < 0.7"
    assert [r.name for r in C4Quality(min_kept_line_frac=0.5).rules()] == [
        "lorem_ipsum", "curly_bracket", "too_few_sentences", "bad_words", "kept_line_frac"]


def test_empty_and_null_texts() -> None:
    for text in ("", "  \n\n", None):
        s = scores(text)
        assert s["sentences"] == 0 and s["kept_line_frac"] is None
        assert reason(text) == "too_few_sentences: 0 < 5"


def test_splitlines_boundaries() -> None:
    # str.splitlines() also breaks on \r, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029.
    for sep in ("\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"):
        assert scores(sep.join(GOOD + ["no stop"]))["kept_line_frac"] == pytest.approx(5 / 6), repr(sep)


def test_filter_lines_rewrites_kept_texts_like_datatrove() -> None:
    text = ("  Menu\n" + "\n".join(GOOD[:3]) + "\nThe mill was built in 1820.[3]\n\n" + GOOD[3] + "\n  "
            + GOOD[4] + "  \n")
    short = "Too short.\nReally."
    res = run(text, short, filter_lines=True)
    expected = "\n".join(GOOD[:3] + ["The mill was built in 1820."] + GOOD[3:])
    assert res.kept.column("text").to_pylist() == [expected]
    assert res.rejected.column("text").to_pylist() == [short]  # rejected rows keep their text
    assert "__c4_row" not in res.kept.column_names and "__c4_row" not in res.rejected.column_names
    # Without filter_lines the text is untouched; the decision is the same.
    plain = run(text, short)
    assert plain.kept.column("text").to_pylist() == [text]
    # Applying it again changes nothing.
    again = C4Quality(filter_lines=True).process(res.kept)
    assert again.kept.column("text").to_pylist() == [expected]


def test_drop_false_keeps_every_row_with_scores() -> None:
    res = run(doc(), "short.", drop=False)
    assert res.rejected is None
    assert res.kept.column(NS + "sentences").to_pylist() == [5, 0]


@pytest.mark.parametrize(("line", "n"), [
    ("Mr. Smith went home.", 1),
    ("He left. She stayed.", 2),
    ('"Stop!" he said.', 2),
    ("It was 5 p.m. when we left.", 1),
    ("We saw e.g. this one.", 1),
    ("Wait... what?", 1),
    (". . . And then it ended.", 2),
    ("It was the end.Next one came.", 2),
    ("He shouted! She ran? They left.", 3),
    ("Dr. No met St. John in Washington D.C. today.", 1),
    ("John F. Kennedy spoke.", 1),
    ("The U.S. Army arrived.", 1),
    ("See p. 5. Then go on.", 2),
    ("It was Henry VIII.'s sister.", 2),
    ("", 0),
])
def test_sentence_counts_match_spacy(line: str, n: int) -> None:
    # The expected numbers are spaCy's (datatrove's split_into_sentences) for these lines.
    assert count_sentences(pa.array([line]))[0] == n


@pytest.mark.slow
def test_gutenberg_sample_against_datatrove() -> None:
    """The Gutenberg sample cut into 3,000-character documents (CRLF normalised): the same
    decisions as datatrove 0.10.1's C4QualityFilter (keeps 9,647, drops 5,904 for too few
    sentences and 6 for a curly bracket) and its C4BadWordsFilter after it (233 more)."""
    rows = [r for r in open_reader(SHARED_DATA / "gutenberg_sample.jsonl.gz", ReaderOptions(chunk_chars=3000))
            if not isinstance(r, BadRecord)]
    batch = pa.table({"id": [r["id"] for r in rows], "text": [r["text"].replace("\r\n", "\n") for r in rows]})
    res = C4Quality(filter_bad_words=False).process(batch)
    rules = collections.Counter(r.split(":")[0] for r in res.rejected.column("_reason").to_pylist())
    assert res.kept.num_rows == 9647
    assert rules == {"too_few_sentences": 5904, "curly_bracket": 6}
    with_bad_words = C4Quality().process(batch)
    assert with_bad_words.kept.num_rows == 9647 - 233
