from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import torch

from gristmill.train.decoding import DecodeConfig, filter_logits, generate, generate_hf, window_start
from gristmill.train.lm import TrainedLM, train_lm
from tests.train.test_lm import corpus, tiny_config

PROMPTS = ["", "Anna sees", "Bram likes the old cat. Cleo", "a grey horse. Eva feeds a small dog. Finn calls the"]


@pytest.fixture(scope="module")
def lm() -> TrainedLM:
    return train_lm(corpus(), None, tiny_config(context=16, steps=60), progress=False)


def reference_greedy(lm: TrainedLM, prompt: str, n: int) -> str:
    """Greedy by full recompute of each row's view, one prompt at a time."""
    ids, out = [lm.sep_id, *lm.encode(prompt)], []
    for _ in range(n):
        with torch.no_grad():
            logits = lm.model(torch.tensor([ids[window_start(len(ids), lm.config.context):]]))[0, -1]
        logits[lm.tokenizer.token_to_id("<|pad|>")] = float("-inf")
        t = int(logits.argmax())
        if t == lm.sep_id:
            break
        ids.append(t)
        out.append(t)
    return lm.decode(out)


def test_greedy_is_deterministic_batch_independent_and_matches_full_recompute(lm: TrainedLM) -> None:
    cfg = DecodeConfig("greedy", max_new_tokens=40)  # beyond the 16-token context: the view moves on
    got = generate(lm, PROMPTS, cfg)
    assert got == [reference_greedy(lm, p, 40) for p in PROMPTS]
    assert generate(lm, PROMPTS, cfg, batch_size=1) == got
    assert generate(lm, list(reversed(PROMPTS)), cfg, batch_size=3) == list(reversed(got))
    assert any(len(lm.encode(g)) > lm.config.context for g in got)


def test_beam_1_top_k_1_and_tiny_top_p_equal_greedy(lm: TrainedLM) -> None:
    greedy = generate(lm, PROMPTS, DecodeConfig("greedy", max_new_tokens=24))
    assert generate(lm, PROMPTS, DecodeConfig("beam", num_beams=1, max_new_tokens=24)) == greedy
    assert generate(lm, PROMPTS, DecodeConfig("sample", top_k=1, max_new_tokens=24, seed=3)) == greedy
    assert generate(lm, PROMPTS, DecodeConfig("sample", top_p=1e-6, max_new_tokens=24, seed=4)) == greedy


def test_sampling_is_seeded_and_varied(lm: TrainedLM) -> None:
    cfg = DecodeConfig("sample", max_new_tokens=12, seed=1)
    a = generate(lm, [""] * 24, cfg)
    assert generate(lm, [""] * 24, cfg) == a
    assert len(set(a)) > 12
    assert generate(lm, [""] * 24, DecodeConfig("sample", max_new_tokens=12, seed=2)) != a
    cold = generate(lm, [""] * 24, DecodeConfig("sample", temperature=0.05, max_new_tokens=12, seed=1))
    assert len(set(cold)) < len(set(a))


def test_beam_search_finds_the_best_two_token_continuation(lm: TrainedLM) -> None:
    """With as many beams as tokens, beam search over 2 tokens is exhaustive search."""
    vocab, sep = lm.config.vocab_size, lm.sep_id
    pad = lm.tokenizer.token_to_id("<|pad|>")
    prompt = "Cleo follows"
    ids = [sep, *lm.encode(prompt)]
    with torch.no_grad():
        lp1 = torch.log_softmax(lm.model(torch.tensor([ids]))[0, -1].double(), -1)
        firsts = [t for t in range(vocab) if t not in (sep, pad)]
        lp2 = torch.log_softmax(lm.model(torch.tensor([ids + [t] for t in firsts]))[:, -1].double(), -1)
    for penalty in (0.0, 1.0):
        best = (float(lp1[sep]), [])  # ending at once: 1 generated token, length**penalty = 1
        for r, t in enumerate(firsts):
            for u in range(vocab):
                if u == pad:
                    continue
                seq = [t] if u == sep else [t, u]
                best = max(best, ((float(lp1[t]) + float(lp2[r, u])) / 2 ** penalty, seq), key=lambda b: b[0])
        got = generate(lm, [prompt], DecodeConfig("beam", num_beams=vocab, length_penalty=penalty,
                                                  max_new_tokens=2), batch_size=vocab)
        assert got == [lm.decode(best[1])]


def test_generation_stops_at_the_separator(lm: TrainedLM) -> None:
    ender = copy.deepcopy(lm)  # a model that always predicts the separator
    with torch.no_grad():
        ender.model.head.weight.zero_()
        ender.model.head.weight[ender.sep_id] = 1.0
        ender.model.ln_f.weight.zero_()
        ender.model.ln_f.bias.fill_(10.0)
    for cfg in (DecodeConfig("greedy"), DecodeConfig("sample"), DecodeConfig("beam", num_beams=3)):
        assert generate(ender, ["", "Anna"], cfg) == ["", ""]


def test_filter_logits_top_k_and_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda f: (f > float("-inf")).squeeze(0).tolist()  # noqa: E731
    assert kept(filter_logits(logits, 1.0, 2, 1.0)) == [True, True, False, False]
    assert kept(filter_logits(logits, 1.0, 0, 0.5)) == [True, False, False, False]
    assert kept(filter_logits(logits, 1.0, 0, 0.7)) == [True, True, False, False]
    assert kept(filter_logits(logits, 1.0, 0, 0.81)) == [True, True, True, False]
    assert torch.allclose(filter_logits(logits, 2.0, 0, 1.0), logits / 2)


@pytest.mark.parametrize(("field", "value"), [("strategy", "nucleus"), ("temperature", 0.0),
                                              ("temperature", -1.0), ("temperature", float("nan")),
                                              ("top_k", -1), ("top_p", 0.0), ("top_p", 1.5), ("num_beams", 0),
                                              ("max_new_tokens", 0), ("length_penalty", float("inf"))])
def test_decode_config_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        DecodeConfig(**{field: value})


def test_window_start_moves_by_half_a_context() -> None:
    assert [window_start(n, 8) for n in (1, 8, 9, 12, 13, 16, 17)] == [0, 0, 4, 4, 8, 8, 12]
    assert all(c - c // 2 < n - window_start(n, c) <= c
               for n, c in itertools.product(range(1, 60), (4, 8, 9)) if n > c)


def test_generate_hf_with_a_tiny_llama(tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from gristmill.train.tokenizer import train_tokenizer

    tok = PreTrainedTokenizerFast(tokenizer_object=train_tokenizer(corpus(), 300), eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", pad_token="<|pad|>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=64, bos_token_id=0, eos_token_id=0,
                                         pad_token_id=1))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    prompts = ["", "Anna sees the", "Bram"]
    greedy = generate_hf(tmp_path, prompts, DecodeConfig("greedy", max_new_tokens=8))
    assert len(greedy) == 3 and all(isinstance(g, str) for g in greedy)
    # left padding must not change a row: each prompt alone gives the same text
    assert [generate_hf(tmp_path, [p], DecodeConfig("greedy", max_new_tokens=8))[0] for p in prompts] == greedy
    assert generate_hf(tmp_path, prompts, DecodeConfig("sample", top_k=1, max_new_tokens=8)) == greedy
    assert generate_hf(tmp_path, prompts, DecodeConfig("beam", num_beams=1, max_new_tokens=8)) == greedy
    sampled = generate_hf(tmp_path, prompts, DecodeConfig("sample", max_new_tokens=8, seed=5))
    assert generate_hf(tmp_path, prompts, DecodeConfig("sample", max_new_tokens=8, seed=5)) == sampled
    assert len(generate_hf(tmp_path, prompts, DecodeConfig("beam", num_beams=3, max_new_tokens=8))) == 3


@pytest.mark.slow
def test_generate_hf_with_smollm2() -> None:
    from gristmill.models.causal_lm import hf_dir

    prompts = ["The capital of France is", "Once upon a time"]
    greedy = generate_hf(hf_dir(), prompts, DecodeConfig("greedy", max_new_tokens=8))
    assert all(g.strip() for g in greedy)
    assert "Paris" in greedy[0]
    assert generate_hf(hf_dir(), prompts, DecodeConfig("beam", num_beams=1, max_new_tokens=8)) == greedy
