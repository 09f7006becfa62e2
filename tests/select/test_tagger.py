from __future__ import annotations

import numpy as np

from gristmill.select.bandit import Learner
from gristmill.select.tagger import HeadLearner, WordFeatures, predict, train_head


def _synthetic(n: int, seed: int) -> WordFeatures:
    """Sentences of 3-6 words whose tag is the argmax of the word vector's first three dimensions."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 7, n)
    x = rng.normal(size=(int(lengths.sum()), 8)).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    y = x[:, :3].argmax(1)
    return WordFeatures(x, offsets, [y[offsets[i]:offsets[i + 1]].tolist() for i in range(n)])


def test_head_learns_a_separable_tagging() -> None:
    train, test = _synthetic(200, 0), _synthetic(50, 1)
    head = train_head(train, list(range(200)), n_tags=3, seed=0, hidden=16, epochs=1, min_steps=60, lr=3e-2)
    pred = predict(head, test)
    assert [len(p) for p in pred] == [int(test.offsets[i + 1] - test.offsets[i]) for i in range(len(test))]
    acc = np.mean(np.concatenate(pred) == test.y.numpy())
    assert acc > 0.9


def test_head_learner_dev_loss_falls() -> None:
    learner = HeadLearner(_synthetic(100, 0), _synthetic(30, 1), n_tags=3, seed=0, hidden=16, lr=1e-2)
    assert isinstance(learner, Learner)
    before = learner.dev_loss()
    for s in range(0, 100, 10):
        learner.train_step(list(range(s, s + 10)))
    assert learner.dev_loss() < before - 0.2
