from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gristmill.experiments import bias_amplification as ba
from gristmill.experiments import collapse as c


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


def test_greedy_and_sampled_conditions_share_prompts(tmp_path: Path):
    rng = random.Random(0)
    vocab = "she he her his king queen nurse doctor lady lord said the a".split()
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(vocab) for _ in range(9)) for _ in range(100)), encoding="utf-8")
    lm = {"vocab_size": 300, "context": 16, "n_layer": 1, "n_head": 2, "d_model": 16, "dropout": 0.0, "steps": 2,
          "batch_size": 4, "warmup": 1, "eval_every": 1000, "eval_batches": 1, "checkpoint_every": 1000}
    conds = [c.Condition(s, "replace", c.default_decode(strategy=s, max_new_tokens=8)) for s in ("greedy", "sample")]
    spec = c.LoopSpec(data=str(corpus), conditions=conds, seeds=[0], generations=2, doc_chars=150, prompt_words=3,
                      lm=lm, threads=1)
    report, summary = ba.run_bias_amplification(spec, tmp_path / "run", progress=False)
    assert report.is_file() and set(summary) == {"greedy", "sample"}
    assert "female_share" in summary["greedy"]["1"] and "occupation_female_share" in summary["sample"]["0"]
    docs = {}
    for cond in ("greedy", "sample"):
        lines = c.cell_path(tmp_path / "run", cond, 0, 1, ".jsonl").read_text().splitlines()
        docs[cond] = [json.loads(x) for x in lines]
    assert [d["prompt"] for d in docs["greedy"]] == [d["prompt"] for d in docs["sample"]]
    assert all(len(d["prompt"].split()) == 3 and d["doc"].startswith(d["prompt"]) for d in docs["greedy"])
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["real_data"]["female_terms"] > 0
