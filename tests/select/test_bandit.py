from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from gristmill.select.bandit import EXP3, UCB1, Learner, RewardScale, make_policy, run_bandit


def _play(policy: EXP3 | UCB1, means: Sequence[float], rounds: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        arm = policy.select()
        policy.update(arm, float(rng.random() < means[arm]))
    return policy.counts


@pytest.mark.parametrize("make", [lambda: EXP3(4, gamma=0.1, seed=3), lambda: UCB1(4, c=1.0)])
def test_best_arm_is_pulled_most(make) -> None:
    counts = _play(make(), [0.2, 0.25, 0.9, 0.3], rounds=600, seed=1)
    assert counts.argmax() == 2
    assert counts[2] > 0.5 * counts.sum()


def test_exp3_probabilities_sum_to_one_and_skip_retired_arms() -> None:
    p = EXP3(5, gamma=0.2, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        arm = p.select()
        p.update(arm, float(rng.random()))
        assert p.probabilities().sum() == pytest.approx(1.0)
        assert (p.probabilities() >= 0.2 / 5 - 1e-12).all()
    p.retire(1)
    probs = p.probabilities()
    assert probs[1] == 0 and probs.sum() == pytest.approx(1.0)
    assert all(p.select() != 1 for _ in range(100))


def test_ucb1_pulls_every_arm_once_first() -> None:
    u = UCB1(3)
    firsts = []
    for _ in range(3):
        a = u.select()
        firsts.append(a)
        u.update(a, 0.0)
    assert sorted(firsts) == [0, 1, 2]


def test_reward_scale_maps_to_unit_interval() -> None:
    s = RewardScale()
    assert s(0.0) == 0.5
    assert s(2.0) == 1.0
    assert s(-2.0) == 0.0
    assert s(1.0) == pytest.approx(0.75)
    assert s(float("nan")) == 0.0


def test_relative_reward_removes_the_trend() -> None:
    s = RewardScale(relative=True)
    # every drop is positive, as while training; relative to the recent average some are bad
    assert s(1.0) == 1.0  # no baseline yet
    assert s(0.5) == 0.25  # 0.5 below the baseline 1.0, half the largest change so far
    assert s(1.5) > 0.5   # above the recent average
    with pytest.raises(ValueError, match="unknown reward"):
        run_bandit([[0]], _Toy(), 1, UCB1(1), reward="loss")


def test_make_policy_rejects_unknown_names() -> None:
    assert isinstance(make_policy("bandit-ucb", 2), UCB1)
    assert isinstance(make_policy("bandit-exp3", 2), EXP3)
    with pytest.raises(ValueError, match="unknown bandit policy"):
        make_policy("thompson", 2)


class _Toy:
    """Dev loss falls by 0.1 per good row (ids < 500) trained on, rises by 0.01 per other row."""

    def __init__(self) -> None:
        self.loss = 10.0
        self.seen: list[int] = []

    def train_step(self, batch: Sequence[int]) -> float:
        self.seen.extend(batch)
        self.loss += sum(-0.1 if i < 500 else 0.01 for i in batch)
        return self.loss

    def dev_loss(self) -> float:
        return self.loss


@pytest.mark.parametrize("name", ["exp3", "ucb1"])
@pytest.mark.parametrize("reward", ["drop", "relative"])
def test_run_bandit_prefers_the_arm_that_lowers_dev_loss(name: str, reward: str) -> None:
    arms = [list(range(500, 1000)), list(range(0, 500)), list(range(1000, 1500)), []]
    learner = _Toy()
    assert isinstance(learner, Learner)
    pulls_seen = []
    chosen, pulls = run_bandit(arms, learner, budget=301, policy=make_policy(name, 4, seed=0, gamma=0.2),
                               batch_size=2, seed=0, reward=reward, on_pull=pulls_seen.append)
    assert len(chosen) == 301 and len(set(chosen)) == 301
    assert learner.seen == chosen
    assert pulls_seen == pulls and len(pulls) == 151  # 150 batches of 2, then 1
    counts = np.bincount([p.arm for p in pulls], minlength=4)
    assert counts[3] == 0  # the empty arm is never pulled
    assert counts.argmax() == 1 and counts[1] > 0.5 * counts.sum()
    assert all(0.0 <= p.reward <= 1.0 for p in pulls)
    assert pulls[0].dev_loss_before == 10.0
    assert all(a.dev_loss_after == b.dev_loss_before for a, b in zip(pulls, pulls[1:]))


def test_run_bandit_stops_when_arms_run_dry() -> None:
    chosen, pulls = run_bandit([[0, 1, 2], [3]], _Toy(), budget=50, policy=UCB1(2), batch_size=2)
    assert sorted(chosen) == [0, 1, 2, 3]
    assert pulls[-1].counts == [2, 1]
