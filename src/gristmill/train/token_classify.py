"""Fine-tune a BERT-style encoder for token classification (NER) with early stopping.

Words are split into subwords by the model's tokenizer (``is_split_into_words``); a word's
tag goes on its first subword and every other subword, and the special tokens, get -100
(ignored by the loss). At prediction a word takes the label of its first subword. A word
the tokenizer turns into nothing, or one cut off by ``max_length``, is predicted ``O``
(:attr:`Encoded.dropped_words` counts them); gold tags are never cut, so the scores count
those words as misses.

:func:`fit` trains both this and :mod:`gristmill.train.seq_classify` on
:class:`gristmill.train.loop.Loop` (AdamW with no decay on biases and norm gains, linear warmup
then linear decay, gradient clipping; the settings are a :class:`~gristmill.train.config.FitConfig`):
length-grouped batches, evaluation on dev after each epoch, early stopping after ``patience`` epochs without improvement, and the best epoch's
weights restored at the end; checkpoints every ``checkpoint_every`` steps, from which a killed
run resumes and ends as an uninterrupted one would.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gristmill.train.config import FitConfig
from gristmill.train.labels import TaggedSentence, entity_report, token_report

__all__ = ["FitConfig", "FitResult", "EpochRecord", "Encoded", "encode_tagged", "word_labels", "length_batches",
           "fit", "fit_steps", "predict_tags", "evaluate_tagged", "train_token_classifier", "load_token_model", "collate"]

IGNORE = -100


@dataclass
class EpochRecord:
    """One epoch: mean training loss, the dev figures and the score early stopping watches."""

    epoch: int
    train_loss: float
    score: float
    dev: dict[str, Any]
    seconds: float
    steps: int


@dataclass
class FitResult:
    """The epochs run, the best one (whose weights the model now holds), and why training ended."""

    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -math.inf
    stopped_early: bool = False
    seconds: float = 0.0
    step_losses: list[float] = field(default_factory=list)


@dataclass
class Encoded:
    """Subword ids of some sentences with their aligned labels and word indices."""

    input_ids: list[list[int]]
    labels: list[list[int]]
    word_ids: list[list[int | None]]
    dropped_words: int = 0


def word_labels(word_ids: Sequence[int | None], tags: Sequence[str] | None,
                label2id: dict[str, int]) -> list[int]:
    """Labels for one encoded sentence: the word's label on its first subword, -100 elsewhere.

    A tag missing from ``label2id`` (a type unseen in training) is labelled ``O``.
    """
    out: list[int] = []
    prev: int | None = None
    o = label2id.get("O", 0)
    for w in word_ids:
        if w is None or w == prev:
            out.append(IGNORE)
        else:
            out.append(label2id.get(tags[w], o) if tags is not None else o)
        prev = w if w is not None else prev
    return out


def encode_tagged(tokenizer: Any, sentences: Sequence[TaggedSentence], label2id: dict[str, int],
                  max_length: int) -> Encoded:
    """Tokenize ``sentences`` word by word (truncating at ``max_length`` subwords) and align the tags."""
    enc = tokenizer([s.tokens for s in sentences], is_split_into_words=True, truncation=True,
                    max_length=max_length)
    out = Encoded([], [], [])
    for i, s in enumerate(sentences):
        wids = enc.word_ids(i)
        out.input_ids.append(list(enc["input_ids"][i]))
        out.word_ids.append(list(wids))
        out.labels.append(word_labels(wids, s.tags, label2id))
        out.dropped_words += len(s.tokens) - len({w for w in wids if w is not None})
    return out


def length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random | None,
                   group: int = 50) -> list[list[int]]:
    """Batches of indices: shuffled (when ``rng``), sorted by length inside groups of ``group``
    batches so padding stays small, and the batch order shuffled again. Without ``rng`` the
    indices are sorted by length (for evaluation)."""
    idx = list(range(len(lengths)))
    if rng is None:
        idx.sort(key=lambda i: lengths[i])
        return [idx[k:k + batch_size] for k in range(0, len(idx), batch_size)]
    rng.shuffle(idx)
    batches: list[list[int]] = []
    span = batch_size * group
    for k in range(0, len(idx), span):
        chunk = sorted(idx[k:k + span], key=lambda i: lengths[i])
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(ids: Sequence[Sequence[int]], pad_id: int, labels: Sequence[Sequence[int]] | None = None,
            label_pad: int = IGNORE) -> dict[str, Any]:
    """Right-padded ``input_ids``/``attention_mask`` (and ``labels``) tensors."""
    import torch

    n = max(len(x) for x in ids)
    batch = {"input_ids": torch.tensor([list(x) + [pad_id] * (n - len(x)) for x in ids]),
             "attention_mask": torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x in ids])}
    if labels is not None:
        if labels and isinstance(labels[0], int):
            batch["labels"] = torch.tensor(list(labels))
        else:
            batch["labels"] = torch.tensor([list(y) + [label_pad] * (n - len(y)) for y in labels])
    return batch


def _autocast(enabled: bool) -> Any:
    import contextlib

    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def _identity(model: Any) -> dict[str, Any]:
    """What a checkpoint's weights were made for: the pretrained model and the label set."""
    cfg = getattr(model, "config", None)
    id2label = getattr(cfg, "id2label", None) or {}
    name = str(getattr(cfg, "name_or_path", "") or "")
    return {"model": str(Path(name).resolve()) if name and Path(name).exists() else name,
            "labels": [str(id2label[i]) for i in sorted(id2label)]}


def _epoch_order(lengths: Sequence[int], batch_size: int, seed: int) -> Callable[[int], list[list[int]]]:
    """``order(e)``: the batches of epoch ``e`` (0-based), the ``e+1``-th :func:`length_batches` draw of one
    ``random.Random(seed)``; a function of ``(seed, e)``, so a resumed run sees the same batches."""
    rng = random.Random(seed)
    drawn: list[list[list[int]]] = []

    def order(epoch: int) -> list[list[int]]:
        while len(drawn) <= epoch:
            drawn.append(length_batches(lengths, batch_size, rng))
            if len(drawn) > 1:
                drawn[-2] = []  # only the current epoch's batches are needed again
        return drawn[epoch]

    return order


def fit_steps(examples: int, config: FitConfig) -> tuple[int, int]:
    """``(steps per epoch, steps in all)`` of :func:`fit` on ``examples`` training examples."""
    per_epoch = math.ceil(math.ceil(examples / config.batch_size) / config.grad_accum)
    return per_epoch, max(1, math.ceil(per_epoch * config.epochs))


def fit(model: Any, train_ids: Sequence[Sequence[int]], train_labels: Sequence[Any], pad_id: int,
        evaluate: Callable[[], tuple[float, dict[str, Any]]], config: FitConfig,
        on_step: Callable[[int, float, int], None] | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        checkpoints: Path | None = None, resume: bool = False,
        on_resume: Callable[[int, int], None] | None = None,
        notify: Callable[[str], None] | None = None) -> FitResult:
    """Train ``model`` on encoded examples, evaluating with ``evaluate()`` -> ``(score, figures)``
    after each epoch (a fractional ``config.epochs`` ends with a part of an epoch, evaluated at its
    end); stop after ``config.patience`` epochs without a better score and load the
    best epoch's weights back into ``model``. ``on_step(step, loss, examples)`` follows each update.

    The steps run through :class:`gristmill.train.loop.Loop` (AdamW without decay on biases and
    norm gains, warmup over ``warmup_ratio`` of the steps then ``schedule`` decay, clipping at
    ``max_grad_norm``); a step is ``grad_accum`` batches, its loss the mean over their examples. With ``checkpoints`` (a directory), a checkpoint is written every
    ``config.checkpoint_every`` steps (after that step's epoch evaluation, when it ends an epoch):
    weights, optimizer, torch RNG state, the epochs so far and the best epoch's weights. With
    ``resume``, training goes on from the newest complete one at the same step with the same
    batches, so it ends as an uninterrupted run would; ``on_resume(step, epochs_done)`` is called
    first, and ``notify`` gets one line about each skipped checkpoint and where training resumes.
    A checkpoint of another model or label set raises
    :class:`~gristmill.train.checkpoint.ResumeMismatch`. Without ``resume``, old checkpoints in
    ``checkpoints`` are deleted.
    """
    import torch

    from gristmill.train.loop import Loop, LoopConfig

    torch.manual_seed(config.seed)
    lengths = [len(x) for x in train_ids]
    if not train_ids:
        raise ValueError("no training examples")
    steps_per_epoch, total = fit_steps(len(train_ids), config)
    loop = Loop(model, LoopConfig.of(config, total), checkpoints, _identity(model))
    result = FitResult()
    st: dict[str, Any] = {"epoch_losses": [], "since_best": 0, "best_state": None}
    saved = loop.begin(resume, notify)
    if saved is not None:
        st.update(epoch_losses=list(saved["epoch_losses"]), since_best=saved["since_best"],
                  best_state=saved["best_state"])
        result.history = [EpochRecord(**r) for r in saved["history"]]
        result.step_losses = list(saved["step_losses"])
        result.best_epoch, result.best_score = saved["best_epoch"], saved["best_score"]
        result.stopped_early = saved["stopped_early"]
        if on_resume is not None:
            on_resume(loop.step, len(result.history))
    order = _epoch_order(lengths, config.batch_size, config.seed)
    current: dict[str, Any] = {"size": 0, "t0": time.perf_counter()}

    def batches(step: int) -> list[tuple[dict[str, Any], float]]:
        """The step's micro-batches (up to ``grad_accum`` batches of its epoch), each with its share of the
        step's examples (its loss is weighted by it, so the step's loss is the mean over the examples)."""
        j = step % steps_per_epoch * config.grad_accum
        micro = order(step // steps_per_epoch)[j:j + config.grad_accum]
        current["size"] = size = sum(len(idx) for idx in micro)
        return [(collate([train_ids[i] for i in idx], pad_id, [train_labels[i] for i in idx]), len(idx) / size)
                for idx in micro]

    def loss_fn(micro: tuple[dict[str, Any], float]) -> Any:
        batch, share = micro
        loss = model(**batch).loss
        return loss if share == 1.0 else loss * share

    def after(step: int, value: float) -> bool:
        st["epoch_losses"].append(value)
        result.step_losses.append(value)
        if on_step is not None:
            on_step(step, value, current["size"])
        if step % steps_per_epoch and step != total:  # a fractional last epoch is evaluated at its end
            return False
        epoch = math.ceil(step / steps_per_epoch)
        score, dev = evaluate()
        losses = st["epoch_losses"]
        record = EpochRecord(epoch, sum(losses) / max(1, len(losses)), float(score), dev,
                             time.perf_counter() - current["t0"], step)
        st["epoch_losses"], current["t0"] = [], time.perf_counter()
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if score > result.best_score:
            result.best_score, result.best_epoch, st["since_best"] = float(score), epoch, 0
            st["best_state"] = copy.deepcopy(model.state_dict())
        else:
            st["since_best"] += 1
            if st["since_best"] >= config.patience and epoch < config.epochs:
                result.stopped_early = True
        return result.stopped_early

    def state() -> dict[str, Any]:
        return {**st, "step_losses": result.step_losses, "history": [asdict(r) for r in result.history],
                "best_epoch": result.best_epoch, "best_score": result.best_score,
                "stopped_early": result.stopped_early}

    start = time.perf_counter()
    if not result.stopped_early:
        loop.run(batches, loss_fn=loss_fn, on_step=after, state=state)
    if st["best_state"] is not None:
        model.load_state_dict(st["best_state"])
    result.seconds = time.perf_counter() - start
    return result


def predict_tags(model: Any, tokenizer: Any, sentences: Sequence[TaggedSentence], id2label: dict[int, str],
                 max_length: int = 128, batch_size: int = 64, bf16: bool = False) -> list[list[str]]:
    """One predicted tag per word (its first subword's label; ``O`` for words without subwords)."""
    import torch

    enc = encode_tagged(tokenizer, sentences, {}, max_length)
    preds: list[list[str]] = [[] for _ in sentences]
    model.eval()
    with torch.inference_mode(), _autocast(bf16):
        for idx in length_batches([len(x) for x in enc.input_ids], batch_size, None):
            batch = collate([enc.input_ids[i] for i in idx], tokenizer.pad_token_id)
            best = model(**batch).logits.argmax(-1).tolist()
            for row, i in enumerate(idx):
                first: dict[int, int] = {}
                for pos, w in enumerate(enc.word_ids[i]):
                    if w is not None and w not in first:
                        first[w] = best[row][pos]
                preds[i] = [id2label[first[w]] if w in first else "O" for w in range(len(sentences[i].tokens))]
    return preds


def evaluate_tagged(model: Any, tokenizer: Any, sentences: Sequence[TaggedSentence], id2label: dict[int, str],
                    max_length: int = 128, batch_size: int = 64, bf16: bool = False,
                    with_tables: bool = False) -> dict[str, Any]:
    """Entity-level scores of ``model`` on ``sentences`` (see :func:`gristmill.train.labels.entity_report`);
    with ``with_tables`` also seqeval's and scikit-learn's text reports and the predictions."""
    pred = predict_tags(model, tokenizer, sentences, id2label, max_length, batch_size, bf16)
    gold = [s.tags for s in sentences]
    scores, table = entity_report(gold, pred)
    if with_tables:
        labels = [id2label[i] for i in sorted(id2label)]
        scores["entity_table"] = table
        scores["token_table"] = token_report(gold, pred, labels)
        scores["predictions"] = pred
    return scores


def train_token_classifier(model: Any, tokenizer: Any, train: Sequence[TaggedSentence],
                           dev: Sequence[TaggedSentence], labels: Sequence[str], config: FitConfig,
                           on_step: Callable[[int, float, int], None] | None = None,
                           on_epoch: Callable[[EpochRecord], None] | None = None,
                           **checkpointing: Any) -> FitResult:
    """Fine-tune ``model`` (a ``...ForTokenClassification`` whose label ids follow ``labels``) on
    ``train``, keeping the weights of the epoch with the best dev entity micro F1.
    ``checkpointing``: :func:`fit`'s ``checkpoints``, ``resume``, ``on_resume`` and ``notify``."""
    label2id = {lab: i for i, lab in enumerate(labels)}
    id2label = dict(enumerate(labels))
    enc = encode_tagged(tokenizer, train, label2id, config.max_length)

    def evaluate() -> tuple[float, dict[str, Any]]:
        scores = evaluate_tagged(model, tokenizer, dev, id2label, config.max_length, config.eval_batch_size,
                                 config.uses_bf16())
        return scores["f1"], scores

    return fit(model, enc.input_ids, enc.labels, tokenizer.pad_token_id, evaluate, config, on_step, on_epoch,
               **checkpointing)


def load_token_model(model_dir: str, labels: Sequence[str]) -> tuple[Any, Any]:
    """A pretrained encoder with a new token-classification head for ``labels`` (a head of another
    size in ``model_dir`` is replaced), and its tokenizer."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from gristmill.models.locate import offline

    offline()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)}, ignore_mismatched_sizes=True)
    return model, tokenizer
