"""Sequence classification: label reading, scores, training on a toy task, and real MiniLM on PII sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.train.labels import LabelledText, classification_scores, read_labelled_text
from gristmill.train.seq_classify import (class_labels, encode_texts, evaluate_labelled, predict_labels,
                                          train_sequence_classifier)
from gristmill.train.token_classify import FitConfig
from tests.conftest import SHARED_DATA
from tests.train.test_token_classify import minilm_tokenizer, tiny_bert

import torch  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def toy(n: int, offset: int = 0) -> list[LabelledText]:
    good, bad = ["great", "lovely", "excellent", "superb"], ["awful", "terrible", "horrid", "dreadful"]
    rows = []
    for i in range(offset, offset + n):
        pos = i % 2 == 0
        w = (good if pos else bad)[(i // 2) % 4]
        rows.append(LabelledText(f"t{i}", f"the film was {w} , really {w}", "pos" if pos else "neg"))
    return rows


def test_read_labelled_text(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join([json.dumps({"t": "hello", "y": 1}), json.dumps({"t": "x", "y": True}),
                            json.dumps({"t": "", "y": 0}), json.dumps({"t": "no label"}),
                            json.dumps({"t": "x", "y": [1]}), "not json"]) + "\n", encoding="utf-8")
    d = read_labelled_text(p, "t", "y")
    assert [(r.text, r.label) for r in d.rows] == [("hello", "1"), ("x", "true")]
    assert d.untagged == 1 and len(d.bad) == 4
    assert class_labels(d.rows) == ["1", "true"]


def test_classification_scores_and_table() -> None:
    scores, table = classification_scores(["a", "a", "b", "c"], ["a", "b", "b", "a"], ["a", "b"])
    assert scores["accuracy"] == 0.5
    assert set(scores["per_class"]) == {"a", "b", "c"}  # a gold label missing from the label list is reported
    assert scores["per_class"]["b"]["precision"] == 0.5 and scores["per_class"]["c"]["recall"] == 0.0
    assert "macro avg" in table


def test_encode_texts_truncates() -> None:
    ids = encode_texts(minilm_tokenizer(), ["short", "word " * 50], 10)
    assert len(ids[0]) == 3 and len(ids[1]) == 10 and ids[1][-1] == minilm_tokenizer().sep_token_id


def test_training_learns_the_toy_task_and_keeps_the_best_epoch() -> None:
    tok = minilm_tokenizer()
    train, dev = toy(40), toy(10, 100)
    model = tiny_bert(2, "seq")
    result = train_sequence_classifier(model, tok, train, dev, ["neg", "pos"],
                                       FitConfig(epochs=8, lr=3e-3, batch_size=8, patience=8, warmup_ratio=0.0))
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.best_score == max(r.score for r in result.history) >= 0.9
    scores = evaluate_labelled(model, tok, dev, {0: "neg", 1: "pos"}, with_table=True)
    assert scores["macro_f1"] == pytest.approx(result.best_score)
    assert predict_labels(model, tok, ["the film was superb , really superb"], {0: "neg", 1: "pos"}) == ["pos"]


def pii_person_rows() -> list[LabelledText]:
    """presidio-research's synthetic PII sentences, labelled by whether they name a person."""
    data = json.loads((SHARED_DATA / "pii_synth_dev.json").read_text(encoding="utf-8"))
    return [LabelledText(str(i), d["full_text"],
                         "person" if any(s["entity_type"] == "PERSON" for s in d["spans"]) else "no_person")
            for i, d in enumerate(data)]


@pytest.mark.slow
def test_real_minilm_learns_whether_a_sentence_names_a_person() -> None:
    from gristmill.models.locate import minilm_dir
    from gristmill.train.seq_classify import load_sequence_model

    rows = pii_person_rows()
    train, dev, test = rows[:400], rows[400:500], rows[500:750]
    labels = class_labels(train)
    model, tok = load_sequence_model(str(minilm_dir()), labels)
    result = train_sequence_classifier(model, tok, train, dev, labels,
                                       FitConfig(epochs=1, lr=1e-4, batch_size=8, bf16=True, seed=0))
    scores = evaluate_labelled(model, tok, test, dict(enumerate(labels)), bf16=True)
    assert result.history[0].train_loss < 0.69
    assert scores["macro_f1"] > 0.7, scores
    # ~20 s on 2 idle cores; no time assertion, since a shared machine can be several times slower.
