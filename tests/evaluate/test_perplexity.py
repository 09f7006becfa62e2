"""Perplexity of causal LMs over texts and chats: windows, chat spans, agreement with a plain forward pass."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gristmill.evaluate.perplexity import (
    HFScorer, TrainedLMScorer, bootstrap_ci, chat_segments, effective_window, evaluate_perplexity,
    plain_chat, score_segments, score_token_texts, text_segments, token_segment, windows,
)
from gristmill.evaluate.scorers import load_model

TEXTS = ["The quick brown fox jumps over the lazy dog.",
         "Perplexity is the exponential of the mean negative log-likelihood per token.",
         "Short."]
CHAT = [{"role": "user", "content": "What is two plus two?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "And three plus three?"},
        {"role": "assistant", "content": "Six, of course."}]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer (and chat template)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from gristmill.models.causal_lm import hf_dir

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(hf_dir())
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    d = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def scorer(tiny_dir: Path) -> HFScorer:
    s = load_model(str(tiny_dir))
    assert isinstance(s, HFScorer)
    return s


def _plain_nll(scorer: HFScorer, ids: list[int]) -> float:
    """Summed NLL of tokens 1.. of ``ids`` from one ordinary forward pass (the model's own loss)."""
    t = torch.tensor([ids])
    with torch.inference_mode():
        loss = scorer.lm.model(input_ids=t, labels=t).loss.item()
    return loss * (len(ids) - 1)


@pytest.mark.parametrize(("lo", "hi", "size", "stride"), [(1, 10, 4, 2), (1, 100, 16, 5), (30, 50, 8, 7),
                                                         (1, 3, 8, 4), (5, 6, 4, 1)])
def test_windows_score_every_token_once_with_enough_context(lo: int, hi: int, size: int, stride: int) -> None:
    scored = []
    for begin, end, first in windows(lo, hi, size, stride):
        assert 0 <= begin and end - begin <= size and first >= 1
        new = list(range(begin + first, end))
        assert all(t - begin >= min(t, size - stride) for t in new[:1])  # first scored token has its context
        scored.extend(new)
    assert scored == list(range(lo, hi))


def test_windows_reject_bad_stride() -> None:
    with pytest.raises(ValueError, match="stride"):
        windows(1, 10, 4, 4)


def test_perplexity_equals_exp_mean_nll_of_a_plain_forward_pass(scorer: HFScorer) -> None:
    docs = [text_segments(scorer, t) for t in TEXTS]
    res = evaluate_perplexity(scorer, docs, max_length=64, stride=32)
    total_nll, total_tok = 0.0, 0
    for doc, per in zip(docs, res.per_document):
        ids = list(doc[0].ids)
        nll = _plain_nll(scorer, ids)
        assert per.tokens == len(ids) - 1
        assert per.nll == pytest.approx(nll, rel=1e-4)
        total_nll += nll
        total_tok += len(ids) - 1
    assert res.tokens == total_tok
    assert res.perplexity == pytest.approx(math.exp(total_nll / total_tok), rel=1e-4)
    lo, hi = res.ci95
    assert lo <= res.perplexity <= hi


def test_strided_windows_of_a_long_text(scorer: HFScorer) -> None:
    text = " ".join(TEXTS * 8)
    doc = text_segments(scorer, text)
    ids = list(doc[0].ids)
    assert len(ids) > 64  # longer than the model's context: windows are needed
    res = evaluate_perplexity(scorer, [doc], max_length=512, stride=400)
    assert (res.max_length, res.stride) == (64, 32)  # cut to the context, stride to half of it
    want = 0.0
    for begin, end, first in windows(1, len(ids), 64, 32):
        w = ids[begin:end]
        t = torch.tensor([w])
        with torch.inference_mode():
            logp = torch.log_softmax(scorer.lm.model(input_ids=t).logits.float()[0], -1)
        want += -sum(float(logp[j - 1, w[j]]) for j in range(first, len(w)))
    assert res.tokens == len(ids) - 1
    assert res.per_document[0].nll == pytest.approx(want, rel=1e-4)


def test_chat_assistant_spans_are_the_assistant_turns(scorer: HFScorer) -> None:
    segs = chat_segments(scorer, CHAT, "assistant")
    tok = scorer.lm.tokenizer
    assert [tok.decode(list(s.ids[s.lo:s.hi])) for s in segs] == ["Four.<|im_end|>\n", "Six, of course.<|im_end|>\n"]
    context = tok.decode(list(segs[1].ids[:segs[1].lo]))
    assert context.endswith("And three plus three?<|im_end|>\n<|im_start|>assistant\n")
    whole = chat_segments(scorer, CHAT, "whole")
    assert len(whole) == 1 and whole[0].hi - whole[0].lo > sum(s.hi - s.lo for s in segs)
    assert chat_segments(scorer, CHAT[:1], "assistant") == []
    (sums, n), = score_segments(scorer, [segs], 64, 32)
    assert n == sum(s.hi - s.lo for s in segs) and sums > 0


def test_empty_documents_do_not_count(scorer: HFScorer) -> None:
    res = evaluate_perplexity(scorer, [text_segments(scorer, ""), text_segments(scorer, "Hello there")], ["e", "h"])
    assert res.per_document[0].perplexity is None and res.scored_documents == 1
    with pytest.raises(ValueError, match="no token"):
        evaluate_perplexity(scorer, [[]])


def test_bootstrap_ci_is_seeded() -> None:
    nll, cnt = [10.0, 20.0, 5.0, 40.0], [5, 6, 4, 9]
    a = bootstrap_ci(nll, cnt, seed=1)
    assert a == bootstrap_ci(nll, cnt, seed=1) and a[0] < math.exp(sum(nll) / sum(cnt)) < a[1]
    assert bootstrap_ci([1.0], [1]) is None


def test_an_sft_run_directory_is_scored_with_its_merged_model(tiny_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "merged").symlink_to(tiny_dir, target_is_directory=True)
    scorer = load_model(str(tmp_path))
    assert isinstance(scorer, HFScorer) and scorer.max_context == 64


def test_load_model_rejects_non_models(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_model(str(tmp_path / "missing"))
    (tmp_path / "x.bin").write_text("x")
    with pytest.raises(ValueError, match="gguf"):
        load_model(str(tmp_path / "x.bin"))
    with pytest.raises(ValueError, match="not a model directory"):
        load_model(str(tmp_path))


def test_trained_lm_directories_are_scored(tmp_path: Path) -> None:
    import gristmill.train.lm as lm_mod
    from gristmill.train.tokenizer import train_tokenizer

    torch.manual_seed(0)
    texts = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning"] * 10
    tok = train_tokenizer(texts, 300)
    cfg = lm_mod.LMConfig(vocab_size=tok.get_vocab_size(), context=16, n_layer=1, n_head=2, d_model=16, dropout=0.0)
    lm = lm_mod.TrainedLM(lm_mod.TransformerLM(cfg).eval(), tok, cfg)
    lm.save(tmp_path / "model")
    scorer = load_model(str(tmp_path))  # the run directory: its model/ is found
    assert isinstance(scorer, TrainedLMScorer) and scorer.max_context == 16
    text = "the cat sat in the park and the dog ran on the mat in the morning " * 2
    doc = text_segments(scorer, text)
    ids = list(doc[0].ids)
    res = evaluate_perplexity(scorer, [doc], max_length=16, stride=8)
    want = 0.0
    for begin, end, first in windows(1, len(ids), 16, 8):
        w = torch.tensor([ids[begin:end]])
        with torch.inference_mode():
            logp = torch.log_softmax(scorer.lm.model(w).float()[0], -1)
        want += -sum(float(logp[j - 1, ids[begin + j]]) for j in range(first, end - begin))
    assert res.per_document[0].nll == pytest.approx(want, rel=1e-5)
    # the plain chat rendering gives assistant spans too
    segs = chat_segments(scorer, CHAT, "assistant")
    assert len(segs) == 2 and plain_chat(CHAT[:1], True).endswith("assistant: ")


def test_eval_train_lm_and_the_operator_give_the_same_figure(tmp_path: Path) -> None:
    """One windowed perplexity: ``eval perplexity`` of a ``train lm`` run, that run's dev perplexity (logged
    and in results), and ``quality.perplexity``'s call of the shared function agree on the same texts."""
    from gristmill.rundir import RunDir
    from gristmill.train.lm import LMConfig, perplexity, train_lm

    words = "the cat sat on a mat while dogs ran in the park and birds sang every morning".split()
    texts = [" ".join(words[(i * 3 + j) % len(words)] for j in range(30 + 7 * i)) for i in range(8)]
    train, dev = texts[:5], texts[5:]
    cfg = LMConfig(vocab_size=290, context=16, n_layer=1, n_head=2, d_model=16, dropout=0.1, steps=6, batch_size=4,
                   warmup=2, eval_every=3, checkpoint_every=3, threads=1)
    run = RunDir.create(tmp_path / "run", kind="train-lm", config={})
    lm = train_lm(train, dev, cfg, run=run, progress=False)
    lm.save(run.path / "model")
    assert all(len(lm.encode(t)) > 2 * cfg.context for t in dev)  # several windows per text

    # train lm: the final dev point and perplexity() (what the command writes to results.json)
    trained = perplexity(lm, dev)
    assert run.metrics("dev")[-1]["perplexity"] == pytest.approx(trained, rel=1e-9)
    # eval perplexity of the run directory, with the command's default window (fitted to the context)
    scorer = load_model(str(run.path))
    res = evaluate_perplexity(scorer, [text_segments(scorer, t) for t in dev], max_length=512, stride=256)
    assert (res.max_length, res.stride) == (16, 8) == effective_window(scorer)
    assert res.perplexity == pytest.approx(trained, rel=1e-6)
    # quality.perplexity: token ids of each text, the separator, max_tokens and stride, summed per document
    ids = [scorer.encode(t) for t in dev]
    scores = score_token_texts(scorer, ids, scorer.prefix_id, max_length=16, stride=8, batch_size=3)
    assert [c for _, c in scores] == [len(i) for i in ids]
    op = math.exp(sum(s for s, _ in scores) / sum(c for _, c in scores))
    assert op == pytest.approx(trained, rel=1e-6)
    per_doc = [math.exp(s / c) for s, c in scores]
    assert per_doc == pytest.approx([d.perplexity for d in res.per_document], rel=1e-6)
    # without a stride only the first window is scored: the first max_length - 1 tokens
    (s1, c1), = score_token_texts(scorer, ids[:1], scorer.prefix_id, max_length=16)
    (first, _), = score_segments(scorer, [token_segment(scorer.prefix_id, ids[0][:15])], 16, 8)
    assert c1 == 15 and s1 == pytest.approx(first, rel=1e-6)


@pytest.mark.slow
def test_smollm2_perplexity_of_english_is_moderate() -> None:
    from tests.models._text import paragraphs

    from gristmill.models.locate import smollm2_gguf

    torch.set_num_threads(1)
    scorer = load_model(str(smollm2_gguf()))  # a .gguf file: the dequantized copy in the model cache
    assert isinstance(scorer, HFScorer)
    docs = [text_segments(scorer, p) for p in paragraphs(0, 3)]
    res = evaluate_perplexity(scorer, docs, max_length=128, stride=64)
    assert 3 < res.perplexity < 150
    shuffled = [text_segments(scorer, " ".join(sorted(p.split()))) for p in paragraphs(0, 3)]
    assert evaluate_perplexity(scorer, shuffled, max_length=128, stride=64).perplexity > 2 * res.perplexity
