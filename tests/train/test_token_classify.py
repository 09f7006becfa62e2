"""Token classification: subword label alignment, BIO helpers, training, early stopping, reports."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from gristmill.train.labels import (TaggedSentence, bio_labels, entity_report, read_tagged, repair_bio,
                                    token_report)
from gristmill.train.token_classify import (IGNORE, EpochRecord, FitConfig, encode_tagged, fit, length_batches,
                                            predict_tags, train_token_classifier, word_labels)
from tests.conftest import SHARED_DATA

import torch  # noqa: E402
import transformers  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest (and fairest on a shared machine) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@cache
def minilm_tokenizer():
    from gristmill.models.locate import minilm_dir

    return transformers.AutoTokenizer.from_pretrained(str(minilm_dir()))


def tiny_bert(num_labels: int, kind: str = "token", seed: int = 0):
    """A 2-layer, 32-wide BERT with MiniLM's vocabulary, randomly initialised."""
    tok = minilm_tokenizer()
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                                  num_labels=num_labels)
    torch.manual_seed(seed)
    cls = transformers.BertForTokenClassification if kind == "token" else transformers.BertForSequenceClassification
    return cls(cfg)


def tiny_model_dir(path: Path, kind: str = "token") -> Path:
    """A saved tiny BERT (with MiniLM's tokenizer) that ``--model`` can load."""
    model = tiny_bert(2, kind)
    model.save_pretrained(path)
    minilm_tokenizer().save_pretrained(path)
    return path


PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank"]
PLACES = ["paris", "london", "berlin", "madrid", "rome", "oslo"]


def toy_sentences(n: int, offset: int = 0) -> list[TaggedSentence]:
    """Sentences where names follow 'met' and cities follow 'in': learnable from context and words."""
    out = []
    for i in range(offset, offset + n):
        p, c = PEOPLE[i % len(PEOPLE)], PLACES[(i * 5) % len(PLACES)]
        if i % 3 == 0:
            tokens, tags = ["we", "met", p, "in", c], ["O", "O", "B-person", "O", "B-location"]
        elif i % 3 == 1:
            tokens, tags = ["i", "saw", p, "smith", "today"], ["O", "O", "B-person", "I-person", "O"]
        else:
            tokens, tags = ["flights", "to", "new", c, "are", "cheap"], ["O", "O", "B-location", "I-location", "O",
                                                                         "O"]
        out.append(TaggedSentence(f"s{i}", tokens, tags))
    return out


def test_first_subword_gets_the_label_and_the_rest_are_ignored() -> None:
    tok = minilm_tokenizer()
    sent = TaggedSentence("x", ["unbelievably", "Paris", "ok"], ["O", "B-location", "O"])
    labels = ["O", "B-location", "I-location"]
    enc = encode_tagged(tok, [sent], {lab: i for i, lab in enumerate(labels)}, 32)
    wids = enc.word_ids[0]
    assert wids[0] is None and wids[-1] is None  # [CLS], [SEP]
    assert wids.count(0) > 1  # "unbelievably" is split into several subwords
    assert enc.labels[0] == [IGNORE, 0] + [IGNORE] * (wids.count(0) - 1) + [1, 0, IGNORE]
    assert len(enc.labels[0]) == len(enc.input_ids[0])


def test_word_labels_unknown_tag_is_o_and_specials_ignored() -> None:
    assert word_labels([None, 0, 0, 1, None], ["B-x", "B-unseen"], {"O": 0, "B-x": 1}) == [IGNORE, 1, IGNORE, 0,
                                                                                           IGNORE]


def test_truncated_and_empty_words_are_counted_and_predicted_o() -> None:
    tok = minilm_tokenizer()
    sent = TaggedSentence("x", ["hello", "\u200b", "world"] + ["word"] * 20, ["O"] * 23)
    enc = encode_tagged(tok, [sent], {"O": 0}, 8)
    assert enc.dropped_words == 1 + 16  # the zero-width word, and the 16 words past 8 subwords
    model = tiny_bert(3)
    pred = predict_tags(model, tok, [sent], {0: "O", 1: "B-x", 2: "I-x"}, max_length=8)
    assert len(pred[0]) == 23
    assert pred[0][1] == "O" and set(pred[0][7:]) == {"O"}


def test_bio_labels_and_repair() -> None:
    assert bio_labels([["O", "I-person"], ["B-location"]]) == ["O", "B-location", "I-location", "B-person",
                                                                "I-person"]
    assert repair_bio(["O", "I-person", "I-person", "I-location", "B-x", "I-x"]) == \
        ["O", "B-person", "I-person", "B-location", "B-x", "I-x"]


def test_entity_report_counts_entities_like_seqeval() -> None:
    gold = [["B-person", "I-person", "O", "B-location"], ["O", "B-person"]]
    pred = [["I-person", "I-person", "O", "O"], ["O", "B-location"]]  # I- without B- still starts an entity
    scores, table = entity_report(gold, pred)
    assert scores["precision"] == pytest.approx(1 / 2)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["per_type"]["person"]["support"] == 2
    assert scores["per_type"]["person"]["f1"] == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert "person" in table and "location" in table and "micro avg" in table
    tokens = token_report(gold, pred, ["O", "B-location", "I-location", "B-person", "I-person"])
    assert "B-person" in tokens and "accuracy" in tokens


def test_length_batches_cover_every_index_once() -> None:
    import random

    lengths = [5, 1, 9, 3, 7, 2, 8]
    for rng in (None, random.Random(1)):
        batches = length_batches(lengths, 3, rng, group=2)
        assert sorted(i for b in batches for i in b) == list(range(7))
        assert all(len(b) <= 3 for b in batches)
    assert length_batches(lengths, 3, None)[0] == [1, 5, 3]


def test_training_reduces_loss_and_learns_the_toy_task() -> None:
    tok = minilm_tokenizer()
    train, dev = toy_sentences(36), toy_sentences(12, offset=100)
    labels = bio_labels(s.tags for s in train)
    model = tiny_bert(len(labels))
    cfg = FitConfig(epochs=6, lr=3e-3, batch_size=6, patience=6, seed=0, warmup_ratio=0.0)
    result = train_token_classifier(model, tok, train, dev, labels, cfg)
    first, last = result.history[0].train_loss, result.history[-1].train_loss
    assert last < first * 0.5
    assert result.best_score > 0.5
    assert result.history[result.best_epoch - 1].score == result.best_score


def test_early_stopping_stops_and_restores_the_best_weights() -> None:
    model = torch.nn.Linear(2, 2)

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids, attention_mask, labels):  # noqa: ANN001 - a loss of any kind
            from types import SimpleNamespace

            return SimpleNamespace(loss=self.inner(input_ids.float()[:, :2]).pow(2).mean())

    wrapped = Wrapped()
    scores = iter([0.2, 0.5, 0.4, 0.3, 0.9, 0.9])
    snapshots: list[torch.Tensor] = []

    def evaluate():
        snapshots.append(model.weight.detach().clone())
        return next(scores), {}

    seen: list[EpochRecord] = []
    result = fit(wrapped, [[1, 2], [3, 4]], [[0, 0], [0, 0]], 0, evaluate, FitConfig(epochs=6, lr=0.1, patience=2,
                                                                                     batch_size=1),
                 on_epoch=seen.append)
    assert result.stopped_early and [r.epoch for r in seen] == [1, 2, 3, 4]
    assert result.best_epoch == 2 and result.best_score == 0.5
    assert torch.equal(model.weight, snapshots[1])
    assert not torch.equal(model.weight, snapshots[-1])



def _toy_fit(config: FitConfig, n: int = 5) -> tuple[object, list[int], list[EpochRecord], torch.nn.Linear]:
    """fit() of a linear model on ``n`` one-number examples; the steps (and examples in each) and epochs seen."""
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids, attention_mask, labels):  # noqa: ANN001
            from types import SimpleNamespace

            return SimpleNamespace(loss=(self.inner(input_ids.float()) - 1).pow(2).mean())

    sizes: list[int] = []
    seen: list[EpochRecord] = []
    result = fit(Wrapped(), [[i + 1] for i in range(n)], [0] * n, 0, lambda: (0.0, {}), config,
                 on_step=lambda step, loss, k: sizes.append(k), on_epoch=seen.append)
    return result, sizes, seen, model


def test_fractional_epochs_end_with_part_of_an_epoch_evaluated_at_its_end() -> None:
    result, sizes, seen, _ = _toy_fit(FitConfig(epochs=1.5, batch_size=2, patience=5, lr=0.01))
    assert sizes == [2, 2, 1, 2, 2]  # 3 steps an epoch, ceil(1.5 * 3) = 5 steps
    assert [r.epoch for r in seen] == [1, 2] and [r.steps for r in seen] == [3, 5]
    assert not result.stopped_early


def test_grad_accum_steps_once_per_group_of_batches_with_the_mean_loss() -> None:
    settings = dict(epochs=1, lr=0.1, max_grad_norm=0.0, warmup_ratio=0.0, schedule="constant")
    _, sizes, seen, _ = _toy_fit(FitConfig(batch_size=1, grad_accum=4, **settings))
    assert sizes == [4, 1] and [r.steps for r in seen] == [2]  # 5 batches of 1: steps of 4 and of 1
    # one step over 4 examples: 4 accumulated batches of 1 give the update of one batch of 4
    _, sizes, _, accumulated = _toy_fit(FitConfig(batch_size=1, grad_accum=4, **settings), n=4)
    _, whole_sizes, _, whole = _toy_fit(FitConfig(batch_size=4, **settings), n=4)
    assert sizes == whole_sizes == [4]
    assert torch.allclose(accumulated.weight, whole.weight, atol=1e-6)
    assert torch.allclose(accumulated.bias, whole.bias, atol=1e-6)

def test_read_tagged_quarantines_bad_records(tmp_path: Path) -> None:
    conll = tmp_path / "a.conll"
    conll.write_text("hi\tO\nBob\tB-person\n\nbad line with\tthree\tcols\nx\tO\n\nok\tO\nthere\tBOGUS\n\n",
                     encoding="utf-8")
    d = read_tagged(conll)
    assert [s.tokens for s in d.rows] == [["hi", "Bob"]]
    assert len(d.bad) == 2 and "columns" in d.bad[0].reason and "BOGUS" in d.bad[1].reason
    jl = tmp_path / "a.jsonl"
    jl.write_text("\n".join([json.dumps({"tokens": ["a", "b"], "tags": ["O", "B-x"]}),
                             json.dumps({"tokens": ["a"], "tags": ["O", "O"]}),
                             json.dumps({"tokens": ["a"]}), "{broken"]) + "\n", encoding="utf-8")
    d = read_tagged(jl)
    assert len(d.rows) == 1 and d.rows[0].id == "a.jsonl:1"
    assert d.untagged == 1 and len(d.bad) == 3


def test_read_tagged_reads_wnut() -> None:
    d = read_tagged(SHARED_DATA / "wnut17" / "emerging.dev.conll")
    assert len(d.rows) == 1009 and not d.bad
    assert {t[2:] for s in d.rows for t in s.tags if t != "O"} == {"person", "location", "corporation", "product",
                                                                    "creative-work", "group"}


def _stop_at(step: int):
    def on_step(s: int, loss: float, n: int) -> None:
        if s == step:
            raise KeyboardInterrupt  # as Ctrl-C right after this update
    return on_step


@pytest.mark.parametrize("every, stop, resumed_at", [
    (2, 7, (6, 1)),   # mid-epoch: epoch 2 resumes at its second batch
    (5, 6, (5, 1)),   # the last step of epoch 1: the checkpoint follows its evaluation (train.loop's order)
])
def test_fit_interrupted_then_resumed_ends_like_an_uninterrupted_fit(tmp_path: Path, every: int, stop: int,
                                                                     resumed_at: tuple[int, int]) -> None:
    from dataclasses import asdict

    tok = minilm_tokenizer()
    train, dev = toy_sentences(25), toy_sentences(6, offset=100)
    labels = bio_labels(s.tags for s in train)
    cfg = FitConfig(epochs=3, lr=3e-3, batch_size=5, patience=3, seed=1, checkpoint_every=every)

    def run(path: Path, **kw):
        model = tiny_bert(len(labels))
        return model, train_token_classifier(model, tok, train, dev, labels, cfg, checkpoints=path, **kw)

    whole_model, whole = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", on_step=_stop_at(stop))
    calls, steps, notes = [], [], []
    model, resumed = run(tmp_path / "b", resume=True, on_resume=lambda s, e: calls.append((s, e)),
                         on_step=lambda s, loss, n: steps.append(s), notify=notes.append)
    assert calls == [resumed_at] and notes[-1].startswith(f"resuming from step {resumed_at[0]} ")
    assert steps == list(range(resumed_at[0] + 1, 16))
    assert resumed.step_losses == whole.step_losses  # bitwise: same batches, weights, RNG states
    strip = [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in whole.history]
    assert [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in resumed.history] == strip
    assert (resumed.best_epoch, resumed.best_score, resumed.stopped_early) == \
        (whole.best_epoch, whole.best_score, whole.stopped_early)
    a, b = whole_model.state_dict(), model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fit_refuses_a_checkpoint_of_another_label_set(tmp_path: Path) -> None:
    from gristmill.train.checkpoint import ResumeMismatch

    tok = minilm_tokenizer()
    train, dev = toy_sentences(10), toy_sentences(3, offset=100)
    labels = bio_labels(s.tags for s in train)
    cfg = FitConfig(epochs=1, batch_size=5, checkpoint_every=1)
    train_token_classifier(tiny_bert(len(labels)), tok, train, dev, labels, cfg, checkpoints=tmp_path / "c")
    fewer = labels[:3]
    with pytest.raises(ResumeMismatch, match=r"the model's shape changed \(labels LABEL_0,.*LABEL_4 -> LABEL_0,"):
        train_token_classifier(tiny_bert(len(fewer)), tok, train, dev, fewer, cfg, checkpoints=tmp_path / "c",
                               resume=True)
