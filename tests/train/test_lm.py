from __future__ import annotations

import math
import random
import shutil
from pathlib import Path

import pytest
import torch

from gristmill.rundir import RunDir
from gristmill.train.lm import (LMConfig, TrainedLM, TransformerLM, _loop_config, _text_nll, perplexity,
                                split_documents, token_log_likelihoods, train_lm)
from gristmill.train.loop import Loop

NAMES = ["Anna", "Bram", "Cleo", "Dirk", "Eva", "Finn"]
VERBS = ["sees", "likes", "feeds", "follows", "calls"]
THINGS = ["the red fox", "a small dog", "the old cat", "a grey horse", "the blue bird"]


def corpus(n_docs: int = 40, seed: int = 0) -> list[str]:
    """Documents of simple sentences from a tiny grammar (about 6 KB for 40)."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        sentences = [f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(THINGS)}." for _ in range(rng.randint(3, 7))]
        docs.append(" ".join(sentences))
    return docs


def tiny_config(**over) -> LMConfig:
    base = dict(vocab_size=300, context=32, n_layer=2, n_head=2, d_model=32, dropout=0.0, steps=60, batch_size=8,
                lr=3e-3, warmup=6, eval_every=20, eval_batches=2, checkpoint_every=20, threads=1)
    return LMConfig(**{**base, **over})


def test_training_lowers_train_loss_and_dev_perplexity(tmp_path: Path) -> None:
    docs = corpus()
    run = RunDir.create(tmp_path / "run", kind="train-lm", config={})
    lm = train_lm(docs[:34], docs[34:], tiny_config(), run=run, progress=False)
    train, dev = run.metrics("train"), run.metrics("dev")
    assert [p["step"] for p in train] == [10, 20, 30, 40, 50, 60]
    assert [p["step"] for p in dev] == [20, 40, 60]
    assert train[-1]["loss"] < train[0]["loss"] - 1.0
    assert dev[-1]["perplexity"] < dev[0]["perplexity"]
    assert all(p["tokens_per_s"] > 0 and p["lr"] > 0 for p in train)
    # a uniform guess over the vocabulary would be perplexity ~ vocab size
    assert perplexity(lm, docs[34:]) < 0.25 * lm.config.vocab_size
    assert not lm.model.training


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path: Path) -> None:
    docs = corpus()
    cfg = tiny_config(dropout=0.1)  # dropout: the RNG state must be restored too
    run = RunDir.create(tmp_path / "run", kind="train-lm", config={})
    full = train_lm(docs[:34], docs[34:], cfg, run=run, progress=False)
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step-*"))
    assert ckpts == ["step-000040", "step-000060"]  # the last two are kept
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step-000060")  # as if killed between steps 40 and 60
    at40 = torch.load(tmp_path / "run" / "checkpoints" / "step-000040" / "state.pt", weights_only=False)["model"]
    torch.manual_seed(12345)  # the caller's RNG state must not matter, and is left alone
    before = torch.get_rng_state()
    rerun = RunDir.create(tmp_path / "run", kind="train-lm", config={}, resume=True)
    resumed = train_lm(docs[:34], docs[34:], cfg, run=rerun, resume=True, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    final = full.model.state_dict()
    assert any(not torch.equal(at40[k], final[k]) for k in final)
    for k, v in resumed.model.state_dict().items():
        assert torch.equal(v, final[k]), k
    # the points after the checkpoint were redone, not repeated
    assert [p["step"] for p in rerun.metrics("dev")] == [20, 40, 60]
    assert [p["step"] for p in rerun.metrics("train")] == [10, 20, 30, 40, 50, 60]


def test_resume_with_another_model_shape_is_refused(tmp_path: Path) -> None:
    from gristmill.train.checkpoint import ResumeMismatch

    docs = corpus(12)
    run = RunDir.create(tmp_path / "run", kind="train-lm", config={})
    train_lm(docs, None, tiny_config(steps=4, checkpoint_every=2), run=run, progress=False)
    with pytest.raises(ResumeMismatch, match=r"cannot resume from .*step-000004: the model's shape changed "
                                             r"\(n_layer 2 -> 3; d_model 32 -> 48\)"):
        train_lm(docs, None, tiny_config(steps=8, n_layer=3, d_model=48), run=run, resume=True, progress=False)
    train_lm(docs, None, tiny_config(steps=6, checkpoint_every=2), run=run, resume=True, progress=False)
    assert [p["step"] for p in run.metrics("train")] == [4, 6]  # resumed at step 4: logged at 4, then at the end


def test_save_load_roundtrip_keeps_perplexity_and_scores_every_token(tmp_path: Path) -> None:
    docs = corpus()
    lm = train_lm(docs, None, tiny_config(steps=20), progress=False)
    lm.save(tmp_path / "m")
    assert TrainedLM.is_model_dir(tmp_path / "m") and not TrainedLM.is_model_dir(tmp_path)
    again = TrainedLM.load(tmp_path / "m")
    texts = [docs[0], docs[1] * 3, "x"]  # docs[1]*3 is longer than the 32-token context
    assert len(again.encode(texts[1])) > 2 * again.config.context
    assert perplexity(again, texts) == pytest.approx(perplexity(lm, texts), rel=1e-6)
    nll = token_log_likelihoods(lm, texts)
    counts = [len(lm.encode(t)) for t in texts]  # every token of the text (the opening separator is context)
    pooled = math.exp(sum(n * c for n, c in zip(nll, counts)) / sum(counts))
    assert perplexity(lm, texts, batch_size=2) == pytest.approx(pooled, rel=1e-5)
    _, scored = _text_nll(lm, texts, 4)
    assert scored == counts


def test_given_tokenizer_is_used_and_vocab_follows_it() -> None:
    from gristmill.train.tokenizer import train_tokenizer

    docs = corpus()
    tok = train_tokenizer(docs, 270)
    lm = train_lm(docs, None, tiny_config(steps=2, vocab_size=2048), tokenizer=tok, progress=False)
    assert lm.tokenizer is tok and lm.config.vocab_size == tok.get_vocab_size() <= 270


def test_schedule_warmup_cosine_to_the_floor_and_no_decay_on_norms_biases() -> None:
    cfg = tiny_config(steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    model = TransformerLM(cfg)
    loop = Loop(model, _loop_config(cfg))
    assert loop.lr_at(0) == pytest.approx(1e-4) and loop.lr_at(9) == pytest.approx(1e-3)
    assert loop.lr_at(99) == pytest.approx(1e-4, rel=1e-2) and loop.lr_at(100) == pytest.approx(1e-4)
    lrs = [loop.lr_at(s) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    decay, no_decay = loop.optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert loop.optimizer.defaults["betas"] == (0.9, 0.95)
    ids = {id(p) for p in no_decay["params"]}
    assert id(model.ln_f.weight) in ids and id(model.blocks[0].ln1.bias) in ids
    assert id(model.blocks[0].qkv.bias) in ids and id(model.blocks[0].qkv.weight) not in ids
    assert id(model.tok_emb.weight) not in ids  # embeddings are matrices: decayed (one rule, see train.loop)
    assert model.head.weight is model.tok_emb.weight


def test_config_validation_and_document_split() -> None:
    with pytest.raises(ValueError, match="n_head"):
        LMConfig(d_model=30, n_head=4)
    with pytest.raises(ValueError, match="steps"):
        LMConfig(steps=0)
    text = "\n\n".join(f"para {i} " + "w" * 300 for i in range(20))
    docs = split_documents(text, 1000, 2000)
    assert "".join(docs).replace("\n\n", "") == text.replace("\n\n", "")
    assert all(1000 <= len(d) <= 2000 for d in docs[:-1])
