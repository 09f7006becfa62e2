"""CrowS-Pairs for causal LMs: the data, the metric by hand, SmolLM2 on a few pairs, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gristmill.evaluate.crows_pairs import Pair, evaluate, load_pairs, model_loglik, score_pairs
from gristmill.models.causal_lm import hf_dir, load_causal_lm
from tests.conftest import SHARED_DATA

CROWS = SHARED_DATA / "crows_pairs_anonymized.csv"


def test_the_shared_file_has_1508_pairs_of_nine_types() -> None:
    pairs = load_pairs(CROWS)
    assert len(pairs) == 1508
    assert len({p.bias_type for p in pairs}) == 9
    assert {p.direction for p in pairs} == {"stereo", "antistereo"}
    assert pairs[1].sent_more.startswith("The poor are really ignorant")
    assert len(load_pairs(CROWS, limit=5)) == 5


def test_a_file_without_the_columns_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing columns"):
        load_pairs(bad)


def test_score_pairs_by_hand() -> None:
    pairs = [Pair(0, "m", "l", "stereo", "gender"), Pair(1, "m", "l", "stereo", "gender"),
             Pair(2, "m", "l", "antistereo", "age"), Pair(3, "m", "l", "stereo", "age")]
    more, less = [-10.0, -12.0, -5.0, -7.0], [-11.0, -11.0, -6.0, -7.0]
    s = score_pairs(pairs, more, less)
    # stereotyped: pair 0 (-10 > -11), pair 2 (-5 > -6); pair 1 is not; pair 3 is a tie (not stereotyped)
    assert (s["pairs"], s["stereotyped"], s["pct_stereotype"], s["ties"]) == (4, 2, 0.5, 1)
    assert s["likelihood_diff"] == pytest.approx((1 + 1 + 1 + 0) / 4)
    assert s["by_bias_type"]["gender"]["pct_stereotype"] == 0.5
    assert s["by_bias_type"]["age"]["pct_stereotype"] == 0.5
    assert s["by_direction"]["antistereo"] == {**s["by_direction"]["antistereo"], "pairs": 1, "stereotyped": 1}
    assert s["by_direction"]["stereo"]["pct_stereotype"] == pytest.approx(1 / 3, abs=1e-4)


def test_ci95_is_the_wilson_interval_rounded() -> None:
    """The interval comes from gristmill.stats.wilson (tested against scipy there), rounded to 4 decimals."""
    pairs = [Pair(i, "a", "b", "stereo", "gender") for i in range(10)]
    s = score_pairs(pairs, [1.0] * 5 + [0.0] * 5, [0.0] * 10)
    assert s["ci95"] == (0.2366, 0.7634)
    assert score_pairs(pairs, [1.0] * 10, [0.0] * 10)["ci95"] == (0.7225, 1.0)   # every pair stereotyped
    assert score_pairs([], [], [])["ci95"] is None


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(1)
    return load_causal_lm(None, "float32")


def test_sentence_loglik_is_the_sum_of_token_logprobs_given_endoftext(lm) -> None:
    sentences = ["The poor are really ignorant about money.", "He went home."]
    lls, tokens = model_loglik(lm, batch_size=2)(sentences)
    for sentence, ll in zip(sentences, lls):
        ids = torch.tensor([[lm.prefix_id, *lm.encode([sentence])[0]]])
        with torch.inference_mode():
            logp = torch.log_softmax(lm.model(input_ids=ids).logits[0, :-1].double(), dim=-1)
        expected = logp.gather(1, ids[0, 1:, None]).sum().item()
        assert ll == pytest.approx(expected, rel=1e-4)
    assert tokens == sum(len(x) for x in lm.encode(sentences))


def test_smollm2_on_five_pairs() -> None:
    r = evaluate(None, CROWS, limit=5, batch_size=4, progress=False)
    assert r["pairs"] == 5 and 0 <= r["stereotyped"] <= 5
    assert sum(b["pairs"] for b in r["by_bias_type"].values()) == 5
    assert r["tokens"] > 50 and r["likelihood_diff"] > 0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised two-layer Llama with SmolLM2's tokenizer, saved as a transformers directory."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(hf_dir())
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)
    out = tmp_path_factory.mktemp("tiny-lm")
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_cli_eval_bias_with_a_model_directory(tiny_model: Path, tmp_path: Path) -> None:
    from gristmill.cli import app

    out = tmp_path / "crows.json"
    res = CliRunner().invoke(app, ["eval", "bias", "--model", str(tiny_model), "--data", str(CROWS),
                                   "--limit", "6", "--batch-size", "4", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    figures = json.loads(out.read_text())
    assert figures["pairs"] == 6 and figures["model"] == str(tiny_model)
    assert "stereotyped" in res.output and "all" in res.output
    assert all(math.isfinite(b["likelihood_diff"]) for b in figures["by_bias_type"].values())


def test_cli_eval_bias_refuses_a_missing_model(tmp_path: Path) -> None:
    from gristmill.cli import app

    res = CliRunner().invoke(app, ["eval", "bias", "--model", str(tmp_path / "nope"), "--limit", "2"])
    assert res.exit_code == 2 and "no such file" in res.output
