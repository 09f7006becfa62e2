"""Multi-armed bandits that choose training data online: EXP3 and UCB1 over data arms.

An *arm* is a pool of candidate rows (a data source, or a k-means cluster of their
embeddings). Each round the policy pulls an arm, a batch is drawn from that arm without
replacement, the :class:`Learner` trains on it, and the reward is how much the learner's
dev loss fell (online data mixing, Albalak et al. 2023, "Efficient Online Data Mixing For
Language Model Pre-Training"). Rows drawn are the selected subset; selection stops when
the budget is spent or every arm is empty. An emptied arm is retired (never pulled again).

Raw rewards (dev-loss improvements, in nats) are not bounded, and both policies assume
rewards in [0, 1], so they are mapped with ``0.5 + 0.5 * delta / scale`` and clipped, where
``scale`` is the largest ``|delta|`` seen so far: no change is 0.5, the best improvement so
far is 1, a loss increase as large as the largest change so far is 0. With
``reward="relative"`` the improvement is first taken relative to the recent average
improvement (see :class:`RewardScale`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["EXP3", "UCB1", "Learner", "Pull", "RewardScale", "make_policy", "run_bandit"]


@runtime_checkable
class Learner(Protocol):
    """The model being trained while data is chosen: one training step on a batch, and a dev loss."""

    def train_step(self, batch: Sequence[int]) -> float:
        """Train on the rows ``batch`` (indices into the candidate pool); return the training loss."""

    def dev_loss(self) -> float:
        """Mean loss on the held-out dev set (lower is better)."""


class EXP3:
    """EXP3 (Auer et al. 2002): exponential weights mixed with ``gamma`` uniform exploration.

    ``p_i = (1 - gamma) * w_i / sum(w) + gamma / K`` over the active arms; after pulling arm
    ``i`` with reward ``r`` in [0, 1], ``w_i *= exp(gamma * r / (p_i * K))``. Weights are
    kept as log-weights so they never overflow.
    """

    name = "exp3"

    def __init__(self, n_arms: int, gamma: float = 0.1, seed: int = 0) -> None:
        if n_arms < 1:
            raise ValueError("a bandit needs at least one arm")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.n_arms = n_arms
        self.gamma = gamma
        self.log_w = np.zeros(n_arms)
        self.active = np.ones(n_arms, dtype=bool)
        self.counts = np.zeros(n_arms, dtype=int)
        self.sums = np.zeros(n_arms)
        self.rng = np.random.default_rng(seed)

    def probabilities(self) -> np.ndarray:
        """Pull probabilities of every arm (0 for retired arms); they sum to 1."""
        k = int(self.active.sum())
        p = np.zeros(self.n_arms)
        lw = np.where(self.active, self.log_w, -np.inf)
        w = np.exp(lw - lw[self.active].max())
        p[self.active] = (1 - self.gamma) * w[self.active] / w[self.active].sum() + self.gamma / k
        return p / p.sum()

    def select(self) -> int:
        return int(self.rng.choice(self.n_arms, p=self.probabilities()))

    def update(self, arm: int, reward: float) -> None:
        p = self.probabilities()[arm]
        k = int(self.active.sum())
        self.log_w[arm] += self.gamma * reward / (p * k)
        self.counts[arm] += 1
        self.sums[arm] += reward

    def retire(self, arm: int) -> None:
        self.active[arm] = False

    def state(self) -> dict[str, Any]:
        return {"probabilities": [round(float(x), 6) for x in self.probabilities()]}


class UCB1:
    """UCB1 (Auer et al. 2002): pull each arm once, then the arm maximising ``mean + c*sqrt(2 ln t / n)``.

    Ties go to the lowest arm index. Rewards are assumed in [0, 1].
    """

    name = "ucb1"

    def __init__(self, n_arms: int, c: float = 1.0, seed: int = 0) -> None:
        if n_arms < 1:
            raise ValueError("a bandit needs at least one arm")
        self.n_arms = n_arms
        self.c = c
        self.active = np.ones(n_arms, dtype=bool)
        self.counts = np.zeros(n_arms, dtype=int)
        self.sums = np.zeros(n_arms)

    def ucb_values(self) -> np.ndarray:
        """Upper confidence bound of every arm (+inf for unpulled active arms, -inf for retired)."""
        t = max(int(self.counts.sum()), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = self.sums / self.counts
            bonus = self.c * np.sqrt(2 * math.log(t) / self.counts)
            ucb = np.where(self.counts > 0, means + bonus, np.inf)
        return np.where(self.active, ucb, -np.inf)

    def select(self) -> int:
        return int(np.argmax(self.ucb_values()))

    def update(self, arm: int, reward: float) -> None:
        self.counts[arm] += 1
        self.sums[arm] += reward

    def retire(self, arm: int) -> None:
        self.active[arm] = False

    def state(self) -> dict[str, Any]:
        return {"ucb": [None if not math.isfinite(v) else round(float(v), 6) for v in self.ucb_values()]}


def make_policy(name: str, n_arms: int, seed: int = 0, gamma: float = 0.1, c: float = 1.0) -> EXP3 | UCB1:
    """``exp3`` or ``ucb1`` (also accepted: ``bandit-exp3``, ``bandit-ucb``)."""
    key = name.removeprefix("bandit-")
    if key == "exp3":
        return EXP3(n_arms, gamma=gamma, seed=seed)
    if key in ("ucb", "ucb1"):
        return UCB1(n_arms, c=c, seed=seed)
    raise ValueError(f"unknown bandit policy {name!r}; expected exp3 or ucb1")


@dataclass
class RewardScale:
    """Maps a dev-loss improvement to [0, 1] by the largest ``|improvement|`` seen so far (see module doc).

    ``relative=True`` first subtracts the mean improvement of recent pulls (an exponential
    moving average, weight ``ema`` on the newest; 0 before the first pull): while a model
    trains, every batch lowers dev loss and the drops shrink over time, so a raw drop mostly
    says *when* an arm was pulled. The relative reward says whether the batch did better
    than what pulls at that point have been doing.
    """

    scale: float = 0.0
    relative: bool = False
    ema: float = 0.2
    baseline: float | None = None

    def __call__(self, delta: float) -> float:
        if not math.isfinite(delta):
            return 0.0
        if self.relative:
            base = 0.0 if self.baseline is None else self.baseline
            self.baseline = delta if self.baseline is None else (1 - self.ema) * self.baseline + self.ema * delta
            delta = delta - base
        self.scale = max(self.scale, abs(delta))
        if self.scale <= 0:
            return 0.5
        return float(min(1.0, max(0.0, 0.5 + 0.5 * delta / self.scale)))


@dataclass
class Pull:
    """One round: which arm, what it gave, and the policy's state that chose it."""

    round: int
    arm: int
    arm_name: str
    rows: list[int]
    dev_loss_before: float
    dev_loss_after: float
    train_loss: float
    raw_reward: float
    reward: float
    counts: list[int]
    mean_rewards: list[float | None]
    policy_state: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round, "arm": self.arm, "arm_name": self.arm_name, "n_rows": len(self.rows),
                "dev_loss_before": self.dev_loss_before, "dev_loss_after": self.dev_loss_after,
                "train_loss": self.train_loss, "raw_reward": self.raw_reward, "reward": self.reward,
                "counts": self.counts, "mean_rewards": self.mean_rewards, **self.policy_state}


def run_bandit(arms: Sequence[Sequence[int]], learner: Learner, budget: int, policy: EXP3 | UCB1,
               batch_size: int = 16, steps_per_pull: int = 1, seed: int = 0,
               arm_names: Sequence[str] | None = None, reward: str = "drop",
               on_pull: Callable[[Pull], None] | None = None) -> tuple[list[int], list[Pull]]:
    """Choose up to ``budget`` rows by pulling ``arms`` (lists of row indices) with ``policy``.

    Returns the selected rows in the order drawn (unique, at most ``budget``) and every pull.
    Each pull trains ``learner`` for ``steps_per_pull`` steps on its batch. Empty arms are
    retired before the first round. ``reward`` is ``drop`` (dev loss before - after) or
    ``relative`` (that drop minus the recent average drop).
    """
    if budget < 1 or batch_size < 1:
        raise ValueError("budget and batch_size must be at least 1")
    if reward not in ("drop", "relative"):
        raise ValueError(f"unknown reward {reward!r}; expected drop or relative")
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.asarray(a, dtype=int))) for a in arms]
    names = list(arm_names) if arm_names is not None else [str(i) for i in range(len(arms))]
    for i, pool in enumerate(pools):
        if not pool:
            policy.retire(i)
    scale = RewardScale(relative=reward == "relative")
    chosen: list[int] = []
    pulls: list[Pull] = []
    loss = learner.dev_loss()
    rnd = 0
    while len(chosen) < budget and policy.active.any():
        state = policy.state()
        arm = policy.select()
        take = min(batch_size, budget - len(chosen), len(pools[arm]))
        batch, pools[arm] = [int(x) for x in pools[arm][:take]], pools[arm][take:]
        train_loss = float("nan")
        for _ in range(steps_per_pull):
            train_loss = float(learner.train_step(batch))
        after = learner.dev_loss()
        delta = loss - after
        mapped = scale(delta)
        policy.update(arm, mapped)
        if not pools[arm]:
            policy.retire(arm)
        chosen.extend(batch)
        means = [None if c == 0 else round(float(s / c), 6) for s, c in zip(policy.sums, policy.counts)]
        pull = Pull(rnd, arm, names[arm], batch, loss, after, train_loss, delta, mapped,
                    [int(c) for c in policy.counts], means, state)
        pulls.append(pull)
        if on_pull is not None:
            on_pull(pull)
        loss = after
        rnd += 1
    return chosen, pulls
