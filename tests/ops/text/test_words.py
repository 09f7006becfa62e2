from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.ops.text import words as W
from gristmill.ops.text.words import ConcatHashes, Lexicon, tokenize_chunk, words

# Frozen from datatrove 0.10.1 ``split_into_words(text, "eng")`` (spaCy 3.8.18), computed
# once in benchmarks/.venv-datatrove: datatrove and spaCy are not gristmill dependencies.
SPACY = {
    "Don't stop--Mr. Smith's cats (8) can't, won't; I'm sure.":
        ["Do", "n't", "stop", "--", "Mr.", "Smith", "'s", "cats", "(", "8)", "ca", "n't", ",", "wo", "n't", ";",
         "I", "'m", "sure", "."],
    "\"Well,\" said she, \"it's well-known: the U.S.A. e.g. costs $5.00 or 3km...\"":
        ['"', "Well", ",", '"', "said", "she", ",", '"', "it", "'s", "well", "-", "known", ":", "the", "U.S.A.",
         "e.g.", "costs", "$", "5.00", "or", "3", "km", "...", '"'],
    "See http://www.gutenberg.org/ebooks/1342 and www.example.com/a-b for more!":
        ["See", "http://www.gutenberg.org/ebooks/1342", "and", "www.example.com/a-b", "for", "more", "!"],
    "CHAPTER II. The ship--the _Pequod_--sailed at 10a.m. (p. 42).":
        ["CHAPTER", "II", ".", "The", "ship", "--", "the", "_", "Pequod_--sailed", "at", "10", "a.m.", "(", "p.",
         "42", ")", "."],
    "He said:--'Tis a fine day, ma'am; cannot you see 'em? O'clock…":
        ["He", "said:--'Tis", "a", "fine", "day", ",", "ma'am", ";", "can", "not", "you", "see", "'em", "?",
         "O'clock", "…"],
    "Emoticons :) and :-( or <3 and 😀 and ©2020 ®; 90°C. done":
        ["Emoticons", ":)", "and", ":-(", "or", "<3", "and", "😀", "and", "©", "2020", "®", ";", "90", "°", "C",
         ".", "done"],
    "a.B x,y 3+4=7 5-6 word/word and/or A.B.C. Ph.D. i.e. vs.":
        ["a.", "B", "x", ",", "y", "3", "+", "4=7", "5", "-", "6", "word", "/", "word", "and/or", "A.B.C.",
         "Ph.D.", "i.e.", "vs."],
}


@pytest.mark.parametrize("text", list(SPACY))
def test_words_match_spacy(text: str) -> None:
    assert words(text) == SPACY[text]


def test_special_matcher_rejoins_exceptions_found_across_affixes() -> None:
    # ')' ':' are split as suffixes, then re-found as the emoticon '):'; 'Mr' '.' as 'Mr.'
    assert tokenize_chunk("cried):") == ("cried", "):")
    assert tokenize_chunk("world—Mr.") == ("world", "—", "Mr.")
    assert tokenize_chunk("Gospel--i.e.") == ("Gospel", "--", "i.e.")


def test_whitespace_of_any_kind_separates_words() -> None:
    assert words("a\tb\n\nc\u00a0d\u3000e  ") == ["a", "b", "c", "d", "e"]
    assert words("") == [] and words(" \n ") == []


_ALPHABET = [*"aZé.,;:!?'\"-–—~()[]/<>=+*^#$%&_0129…°²µ ", "\u00a9", "\U0001f600", "\U0001d11e", "ß", "Ж"]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(_ALPHABET), max_size=14))
def test_fast_affix_regexes_equal_spacys(s: str) -> None:
    prefix, suffix, infix = (re.compile(p) for p in W._affix_patterns(fast=False))
    span = lambda m: m and m.span()  # noqa: E731
    assert span(W._prefix_search(s)) == span(prefix.search(s))
    assert span(W._suffix_search(s)) == span(suffix.search(s))
    spans = [m.span() for m in infix.finditer(s)]
    assert [m.span() for m in W._infix_finditer(s)] == spans
    if spans:
        assert W._infix_possible(s)


def test_lexicon_features_and_ids() -> None:
    lex = Lexicon()
    ids = lex.encode("The cat -- 42 ... the cat")
    assert [lex.strings[i] for i in ids] == ["The", "cat", "--", "42", "...", "the", "cat"]
    assert ids[1] == ids[6] and ids[0] != ids[5]
    assert lex.length[ids].tolist() == [3, 3, 2, 2, 3, 3, 3]
    assert ((lex.flags[ids] & Lexicon.HAS_ALPHA) != 0).tolist() == [True, True, False, False, False, True, True]
    assert ((lex.flags[ids] & Lexicon.NON_SYMBOL) != 0).tolist() == [True, True, False, True, False, True, True]
    assert lex.encode("The cat -- 42 ... the cat") is ids  # remembered
    assert lex.id_of("cat") == ids[1] and lex.id_of("dog") is None


def test_lexicon_starts_afresh_after_its_limit() -> None:
    lex = Lexicon(limit=3)
    a = lex.encode("one two three four")
    assert lex.strings[a[0]] == "one"
    b = lex.encode("five six")
    assert [lex.strings[i] for i in b] == ["five", "six"] and len(lex) == 2


def test_concat_hashes_compare_concatenations_not_word_tuples() -> None:
    lex = Lexicon()
    ids = lex.encode("ab c d a bc d x")
    grams = ConcatHashes(lex.hash[ids], lex.length[ids])
    h, chars = grams.ngrams(3)
    # 'ab'+'c'+'d' == 'a'+'bc'+'d' == 'abcd'; the others differ
    assert h[0] == h[3] and len(set(h.tolist())) == 4
    assert chars.tolist() == [4, 3, 4, 4, 4]
    h2, _ = grams.ngrams(2)  # 'ab'+'c' == 'a'+'bc'
    assert h2[0] == h2[3] and len(set(h2.tolist())) == 5
    assert grams.ngrams(8)[0].size == 0


def test_concat_hash_of_a_single_word_is_its_word_hash() -> None:
    lex = Lexicon()
    ids = lex.encode("naïve 👍🏽 x")  # thumb and skin tone are two symbols to spaCy
    h, chars = ConcatHashes(lex.hash[ids], lex.length[ids]).ngrams(1)
    assert np.array_equal(h, lex.hash[ids]) and chars.tolist() == [5, 1, 1, 1]
