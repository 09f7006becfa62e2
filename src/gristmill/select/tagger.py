"""A frozen-feature sequence tagger: a small MLP head over precomputed per-word encoder vectors.

This is *not* fine-tuning: the encoder (e.g. all-MiniLM-L6-v2) runs once per sentence and
its first-subword vector of every word is kept; only the head (``dim -> hidden -> tags``, ReLU,
softmax per word, no CRF) is trained. That makes a training run take about a second on
one CPU core, so data-selection experiments can afford hundreds of them.

:class:`HeadLearner` is the :class:`~gristmill.select.bandit.Learner` for bandit selection:
one AdamW step per batch of sentences, dev loss = mean per-word cross-entropy on the dev set.

Both step through :class:`gristmill.train.loop.Loop`: AdamW at a constant learning rate,
weight decay 0.01 on the weight matrices (not the biases), no gradient clipping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["HeadLearner", "WordFeatures", "predict", "train_head", "word_losses"]


class WordFeatures:
    """Per-word vectors of many sentences in one array: sentence ``i`` is rows ``offsets[i]:offsets[i+1]``."""

    def __init__(self, vectors: np.ndarray, offsets: np.ndarray, tags: Sequence[Sequence[int]] | None = None) -> None:
        import torch

        self.x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.y = None if tags is None else torch.tensor([t for s in tags for t in s], dtype=torch.long)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"{len(self.y)} tags for {len(self.x)} word vectors")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def rows(self, sentences: Sequence[int]) -> Any:
        """Word-row indices of ``sentences`` (a LongTensor)."""
        import torch

        if len(sentences) == 0:
            return torch.zeros(0, dtype=torch.long)
        return torch.from_numpy(np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in sentences]))


def _loop(head: Any, lr: float, steps: int = 0) -> Any:
    from gristmill.train.loop import Loop, LoopConfig

    return Loop(head, LoopConfig(lr=lr, total_steps=steps, schedule="constant", weight_decay=0.01, max_grad_norm=0.0))


def _word_loss(head: Any, data: WordFeatures, sentences: Sequence[int]) -> Any:
    """Mean cross-entropy of the gold tags of the words of ``sentences``."""
    import torch

    idx = data.rows(list(sentences))
    return torch.nn.functional.cross_entropy(head(data.x[idx]), data.y[idx])


def _head(dim: int, n_tags: int, hidden: int, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_tags))


def train_head(data: WordFeatures, sentences: Sequence[int], n_tags: int, seed: int = 0, hidden: int = 128,
               epochs: int = 15, min_steps: int = 250, batch_size: int = 32, lr: float = 1e-3) -> Any:
    """Train a fresh head on ``sentences`` of ``data``: ``max(epochs, min_steps)`` worth of AdamW steps.

    Small subsets get at least ``min_steps`` steps so they are not under-trained relative to
    large ones. Returns the head in eval mode.
    """
    head = _head(data.x.shape[1], n_tags, hidden, seed)
    rng = np.random.default_rng(seed)
    sents = np.asarray(sentences, dtype=np.int64)
    per_epoch = max(1, -(-len(sents) // batch_size))
    steps = max(epochs * per_epoch, min_steps)
    loop = _loop(head, lr, steps)
    pending = {"order": np.zeros(0, dtype=np.int64)}

    def batches(step: int) -> list[np.ndarray]:
        """The next ``batch_size`` sentences of a stream of shuffled passes (drawn in step order)."""
        order = pending["order"]
        if len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(sents)])
        pending["order"] = order[batch_size:]
        return [order[:batch_size]]

    loop.run(batches, lambda batch: _word_loss(head, data, batch))
    head.eval()
    return head


def predict(head: Any, data: WordFeatures) -> list[list[int]]:
    """The argmax tag id of every word, per sentence."""
    import torch

    with torch.inference_mode():
        best = head(data.x).argmax(-1).numpy()
    return [best[data.offsets[i]:data.offsets[i + 1]].tolist() for i in range(len(data))]


def word_losses(head: Any, data: WordFeatures) -> np.ndarray:
    """Cross-entropy (nats) of the gold tag of every word."""
    import torch

    with torch.inference_mode():
        return torch.nn.functional.cross_entropy(head(data.x), data.y, reduction="none").numpy()


class HeadLearner:
    """A fresh head trained one AdamW step per pulled batch; dev loss on ``dev`` (see module doc)."""

    def __init__(self, pool: WordFeatures, dev: WordFeatures, n_tags: int, seed: int = 0, hidden: int = 128,
                 lr: float = 1e-3) -> None:
        self.pool, self.dev = pool, dev
        self.head = _head(pool.x.shape[1], n_tags, hidden, seed)
        self.loop = _loop(self.head, lr)

    def train_step(self, batch: Sequence[int]) -> float:
        return self.loop.train_step([list(batch)], lambda b: _word_loss(self.head, self.pool, b))

    def dev_loss(self) -> float:
        self.head.eval()
        return float(word_losses(self.head, self.dev).mean())
