"""toxicity.score: the packaged classifier per segment, word-list counts, rules and drop reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.ops.text.phrases import PhraseMatcher, segments, tokenize
from gristmill.ops.toxicity import BADWORD_COUNT, BADWORDS, SCORE, ToxicityScore, word_matcher
from gristmill.records import from_rows

CLEAN = [
    "The committee met on Tuesday to review the budget for the new library.",
    "She planted tomatoes and basil in the garden behind the house.",
    "Add two cups of flour, a pinch of salt and stir until smooth.",
]
PROFANE = [
    "Shut the fuck up, you stupid idiot.",
    "This is bullshit and you are a worthless piece of shit.",
    "You dumb bitch, nobody cares.",
]


def _run(texts: list[str | None], **params):
    op = ToxicityScore(**params)
    op.ensure_setup()
    return op.process(from_rows([{"id": f"r{i}", "text": t} for i, t in enumerate(texts)]))


def test_clean_text_scores_low_and_profane_text_high() -> None:
    op = ToxicityScore()
    op.ensure_setup()
    clean, profane = op.probabilities(CLEAN), op.probabilities(PROFANE)
    assert max(clean) < 0.2
    assert min(profane) > 0.95


def test_profane_rows_are_dropped_with_the_score_in_the_reason() -> None:
    result = _run(CLEAN + PROFANE)
    assert [r["id"] for r in result.kept.to_pylist()] == ["r0", "r1", "r2"]
    reasons = result.rejected.column("_reason").to_pylist()
    assert len(reasons) == 3 and all(r.startswith("toxicity: ") and r.endswith(" > 0.9") for r in reasons)
    assert result.rejected.column(SCORE).to_pylist() == pytest.approx([float(r.split()[1]) for r in reasons], abs=1e-3)


def test_one_offensive_sentence_in_a_long_clean_text_is_not_diluted() -> None:
    long_clean = " ".join(CLEAN * 20)
    op = ToxicityScore()
    op.ensure_setup()
    diluted = op.probabilities([long_clean + " Fuck you, you stupid idiot."])[0]
    assert diluted > 0.99  # the worst segment counts, not the average over the document
    assert op.probabilities([long_clean])[0] < 0.2


def test_bad_words_are_counted_as_whole_words_with_plurals_and_phrases() -> None:
    result = _run(["Scunthorpe and Essex are places; a classic assessment.",
                   "The bitches and the bastards watched 2 girls 1 cup.",
                   None, "   "], drop=False)
    rows = result.kept.to_pylist()
    assert [r[BADWORD_COUNT] for r in rows] == [0, 3, 0, 0]
    assert rows[1][BADWORDS] == ["2 girls 1 cup", "bastard", "bitches"]  # "bastards": an added s
    assert rows[2][SCORE] is None and rows[3][SCORE] is None  # nothing to score: null, and the rule passes


def test_badword_rule_and_custom_word_list(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# my list\nturnip\nrotten egg\n", encoding="utf-8")
    result = _run(["A turnip.", "Two turnips and a rotten egg.", "Carrots only."],
                  word_lists=[str(words)], max_badwords=1, max_score=None)
    assert [r["id"] for r in result.kept.to_pylist()] == ["r0", "r2"]
    assert result.rejected.column("_reason").to_pylist() == ["badwords: 2 > 1"]


def test_rules_and_score_columns() -> None:
    op = ToxicityScore(max_score=0.5, max_badwords=0)
    assert [(r.name, r.column, r.max) for r in op.rules()] == [("toxicity", SCORE, 0.5), ("badwords", BADWORD_COUNT, 0)]
    assert op.score_columns() == [SCORE, BADWORD_COUNT]
    assert ToxicityScore(max_score=None).rules() == []


def test_segments_split_sentences_and_paragraphs_and_cut_long_pieces() -> None:
    text = "First one. Second one!\nstill second?  Third\n\nFourth " + "w " * 10
    assert segments(text, max_words=6) == ["First one.", "Second one!", "still second?", "Third",
                                           "Fourth w w w w w", "w w w w w"]


def test_phrase_matcher_longest_first_case_and_placeholders() -> None:
    m = PhraseMatcher({"person": ["woman", "women", "man"]})
    m.add("new york", "city")
    m.add("new", "adj")
    m.add("Miss", "title")
    m.add("black {person}", "race")
    found = m.find(tokenize("New York is new. I miss Miss Jones and a black cat and a Black woman."))
    assert [(x.label, x.text) for x in found] == [("city", "New York"), ("adj", "new"), ("title", "Miss"),
                                                  ("race", "Black")]


def test_default_lists_load_once() -> None:
    assert word_matcher() is word_matcher()
    assert len(word_matcher()) > 500


@pytest.mark.parametrize("params, threshold", [
    ({}, None),  # nothing recorded: the operator's own default
    ({"max_score": None}, None),  # no bound to drop by: still the default for the audit
    ({"max_score": 0.3}, 0.3),  # a recipe.yaml without the rule in stats.json
])
def test_the_audit_threshold_comes_from_the_step_else_the_operators_default(tmp_path: Path, params: dict,
                                                                            threshold: float | None) -> None:
    """Issue 17: the audit had its own default threshold (0.5) while toxicity.score's max_score defaults to 0.9."""
    from gristmill.audit import build_audit
    from tests.audit.conftest import fake_run

    default = ToxicityScore.Params.model_fields["max_score"].default
    expected = default if threshold is None else threshold
    scores = [0.25, default - 0.05, min(1.0, default + 0.05)]
    rows = [{"id": f"t{i}", SCORE: s} for i, s in enumerate(scores)]
    audit = build_audit(fake_run(tmp_path / "r", [{"op": "toxicity.score", "params": params}], rows))
    assert audit["summaries"]["toxicity"]["threshold"] == expected
    assert audit["metrics"]["toxicity.count"]["value"] == sum(s > expected for s in scores)
    assert audit["metrics"]["toxicity.fraction"]["note"] == f"{SCORE} > {expected:g}"
