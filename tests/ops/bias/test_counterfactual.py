"""bias.counterfactual: pronouns by syntax, titles, names, case, and the rows the operator adds."""

from __future__ import annotations

import pyarrow as pa
import pytest

from gristmill.ops.bias.counterfactual import COUNTERFACTUAL_OF, SWAPS, GenderCounterfactual, swap_gender
from gristmill.records import from_rows

SENTENCES = [
    # his -> her (determiner) or hers (standalone)
    ("He lost his keys.", "She lost her keys."),
    ("The book is his.", "The book is hers."),
    ("His was the best answer.", "Hers was the best answer."),
    ("A friend of his came by.", "A friend of hers came by."),
    ("His own mother knew.", "Her own father knew."),
    ("It was hers, not his.", "It was his, not hers."),
    # her -> his (possessive) or him (object)
    ("She saw her book.", "He saw his book."),
    ("He saw her at the station.", "She saw him at the station."),
    ("I gave her a pen.", "I gave him a pen."),
    ("Ask her about it.", "Ask him about it."),
    ("They let her go.", "They let him go."),
    ("They made her smile.", "They made him smile."),
    ("Her smile was bright.", "His smile was bright."),
    ("He kissed her gently.", "She kissed him gently."),
    ("He loved her very much.", "She loved him very much."),
    ("Her very own house.", "His very own house."),
    ("Her 3 children are grown.", "His 3 children are grown."),
    ("He told her mother everything.", "She told his father everything."),
    ("We found her sleeping.", "We found him sleeping."),
    ("Her running shoes were new.", "His running shoes were new."),
    ("I miss her.", "I miss him."),
    # other pronouns, contractions, reflexives
    ("He's sure he'll be fine; she'd know.", "She's sure she'll be fine; he'd know."),
    ("She did it herself, and he did it himself.", "He did it himself, and she did it herself."),
    # nouns, possessive 's, case
    ("The man's hat and the woman's coat.", "The woman's hat and the man's coat."),
    ("The king and queen rode with the prince.", "The queen and king rode with the princess."),
    ("Her husband is a waiter.", "His wife is a waitress."),
    ("HE TOLD HER TO LEAVE HIS HOUSE.", "SHE TOLD HIM TO LEAVE HER HOUSE."),
    # titles
    ("Mr. Smith met Mrs. Jones and Miss Brown.", "Ms. Smith met Mr. Jones and Mr Brown."),
    ("Yes, sir. Sir Walter Scott wrote it.", "Yes, madam. Dame Walter Scott wrote it."),
    ("Yes, ma'am, he said.", "Yes, sir, she said."),
    ("Lady Catherine spoke to the lady.", "Lord Scott spoke to the gentleman."),
    # names: first names swap, surnames (after a title or a first name) stay
    ("John and Mary went to see Mr Thomas and Emma Thomas.",
     "Elizabeth and Kyle went to see Ms Thomas and Tyler Thomas."),
    ("JOHN called.", "ELIZABETH called."),
]


@pytest.mark.parametrize(("text", "expected"), SENTENCES)
def test_swap_gender(text: str, expected: str) -> None:
    assert swap_gender(text)[0] == expected


def test_swapping_twice_gives_the_original_for_pronouns_and_pairs() -> None:
    for text in ["He lost his keys.", "The book is his.", "I gave her a pen.", "She saw her book.",
                 "The king and queen rode with the prince.", "It was hers, not his."]:
        assert swap_gender(swap_gender(text)[0])[0] == text


def test_counts_and_untouched_text() -> None:
    assert swap_gender("The weather is nice; a human mankind chairmanship.") == (
        "The weather is nice; a human mankind chairmanship.", 0)
    assert swap_gender("He and his wife.")[1] == 3
    assert swap_gender("John met Mary.", names=False) == ("John met Mary.", 0)


def test_operator_adds_a_copy_after_each_row_with_gendered_words() -> None:
    batch = pa.table({"id": ["a", "b", "c"], "text": ["He ran home.", "The sky is blue.", None],
                      "score": pa.array([1, 2, 3], pa.int16())})
    result = GenderCounterfactual().process(batch)
    rows = result.kept.to_pylist()
    assert [r["id"] for r in rows] == ["a", "a~cf", "b", "c"]
    assert rows[1]["text"] == "She ran home."
    assert rows[1][COUNTERFACTUAL_OF] == "a" and rows[1][SWAPS] == 1
    assert rows[0][COUNTERFACTUAL_OF] is None and rows[1]["score"] == 1
    assert result.kept.schema.field("score").type == pa.int16()  # other columns keep their types
    assert result.rejected is None


def test_operator_several_columns_and_copies_only() -> None:
    batch = from_rows([{"id": "x", "instruction": "Ask him.", "output": "She agreed.", "text": "none"},
                       {"id": "y", "instruction": "Plain.", "output": "Plain.", "text": "none"}])
    op = GenderCounterfactual(columns=["instruction", "output", "missing"], keep_original=False)
    rows = op.process(batch).kept.to_pylist()
    assert [(r["id"], r["instruction"], r["output"], r[SWAPS]) for r in rows] == [
        ("x~cf", "Ask her.", "He agreed.", 2)]
    assert op.process(batch.slice(1)).kept.num_rows == 0
