from __future__ import annotations

import pytest

from gristmill.experiments import bias_amplification as ba


def test_bias_statistics_on_hand_made_texts():
    texts = ["She is a nurse. He is a doctor.",   # nurse: female; doctor: male
             "His wife spoke to the king.",        # gendered, no occupation: his, wife, king
             "The nurse and her brother."]          # nurse with female and male terms in one segment
    s = ba.bias_statistics(texts)
    assert s["female_terms"] == 3 and s["male_terms"] == 4          # she, wife, her / he, his, king, brother
    assert s["female_share"] == pytest.approx(3 / 7)
    # (segment, occupation) pairs: nurse-f, doctor-m, nurse-f, nurse-m
    assert s["occupation_pairs"] == 4 and s["occupation_female_share"] == pytest.approx(2 / 4)
    # nurse (BLS 90% women): 2 of 3 female; doctor has no BLS figure, so no male-majority occupation
    assert s["stereotype_gap"] is None
    words = sum(len(t.split()) for t in texts)
    assert s["gendered_per_1k"] == pytest.approx(1000 * 7 / words)


def test_stereotype_gap_and_empty_text():
    s = ba.bias_statistics(["She is a nurse.", "He is a carpenter.", "She is a carpenter."])
    assert s["stereotype_gap"] == pytest.approx(1.0 - 0.5)   # nurse all female, carpenter half
    e = ba.bias_statistics(["", "no people here"])
    assert e["female_share"] is None and e["occupation_female_share"] is None and e["occupation_pairs"] == 0


def test_drop_prompt_words():
    assert ba.drop_prompt_words(["a b c d", "a"], 2) == ["c d", ""]
