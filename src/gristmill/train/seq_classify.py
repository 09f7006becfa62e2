"""Fine-tune a BERT-style encoder for sequence (sentence) classification with early stopping.

Same training as token classification (:func:`gristmill.train.token_classify.fit`, on the
shared :class:`gristmill.train.loop.Loop`): AdamW, warmup then linear decay, dev evaluation each
epoch, early stopping on dev macro-F1 and the best weights kept. Texts longer than ``max_length`` subwords are cut (the tail is dropped).
A dev/test label unseen in training can never be predicted; it still counts in the scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gristmill.train.labels import LabelledText, classification_scores
from gristmill.train.token_classify import EpochRecord, FitConfig, FitResult, _autocast, collate, fit, length_batches

__all__ = ["class_labels", "encode_texts", "predict_labels", "evaluate_labelled", "train_sequence_classifier",
           "load_sequence_model"]


def class_labels(rows: Sequence[LabelledText]) -> list[str]:
    """The sorted label set of ``rows``."""
    return sorted({r.label for r in rows})


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Subword ids of each text, with the special tokens, cut at ``max_length``."""
    return [list(x) for x in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]


def predict_labels(model: Any, tokenizer: Any, texts: Sequence[str], id2label: dict[int, str],
                   max_length: int = 128, batch_size: int = 64, bf16: bool = False) -> list[str]:
    """The most likely label of each text."""
    import torch

    ids = encode_texts(tokenizer, texts, max_length)
    out: list[str] = [""] * len(texts)
    model.eval()
    with torch.inference_mode(), _autocast(bf16):
        for idx in length_batches([len(x) for x in ids], batch_size, None):
            best = model(**collate([ids[i] for i in idx], tokenizer.pad_token_id)).logits.argmax(-1).tolist()
            for i, b in zip(idx, best):
                out[i] = id2label[b]
    return out


def evaluate_labelled(model: Any, tokenizer: Any, rows: Sequence[LabelledText], id2label: dict[int, str],
                      max_length: int = 128, batch_size: int = 64, bf16: bool = False,
                      with_table: bool = False) -> dict[str, Any]:
    """Accuracy, macro/micro F1 and per-class scores on ``rows`` (and scikit-learn's table)."""
    pred = predict_labels(model, tokenizer, [r.text for r in rows], id2label, max_length, batch_size, bf16)
    scores, table = classification_scores([r.label for r in rows], pred, [id2label[i] for i in sorted(id2label)])
    if with_table:
        scores["table"] = table
        scores["predictions"] = pred
    return scores


def train_sequence_classifier(model: Any, tokenizer: Any, train: Sequence[LabelledText],
                              dev: Sequence[LabelledText], labels: Sequence[str], config: FitConfig,
                              on_step: Callable[[int, float, int], None] | None = None,
                              on_epoch: Callable[[EpochRecord], None] | None = None,
                              **checkpointing: Any) -> FitResult:
    """Fine-tune ``model`` (a ``...ForSequenceClassification`` with label ids following ``labels``),
    keeping the weights of the epoch with the best dev macro-F1. ``checkpointing``: :func:`fit`'s
    ``checkpoints``, ``resume``, ``on_resume`` and ``notify``."""
    label2id = {lab: i for i, lab in enumerate(labels)}
    id2label = dict(enumerate(labels))
    ids = encode_texts(tokenizer, [r.text for r in train], config.max_length)
    targets = [label2id[r.label] for r in train]

    def evaluate() -> tuple[float, dict[str, Any]]:
        scores = evaluate_labelled(model, tokenizer, dev, id2label, config.max_length, config.eval_batch_size,
                                   config.uses_bf16())
        return scores["macro_f1"], scores

    return fit(model, ids, targets, tokenizer.pad_token_id, evaluate, config, on_step, on_epoch, **checkpointing)


def load_sequence_model(model_dir: str, labels: Sequence[str]) -> tuple[Any, Any]:
    """A pretrained encoder with a new classification head for ``labels``, and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from gristmill.models.locate import offline

    offline()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)}, ignore_mismatched_sizes=True)
    return model, tokenizer
