from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gristmill.select.strategies import ifd_scores, kcenter_greedy, select_random, select_top


def test_kcenter_picks_the_farthest_points() -> None:
    x = np.array([[0.0, 0], [1, 0], [2, 0], [10, 0], [10, 1], [5, 0]])
    assert kcenter_greedy(x, 3, first=0) == [0, 4, 5]  # (10,1) is farthest from 0; then 5 (dist 5)
    assert kcenter_greedy(x, 4, first=0)[3] in (2, 3)  # both are at distance 1 / 3 -> 2 is at 3 from 5
    assert kcenter_greedy(x, 4, first=0)[3] == 2


def test_kcenter_budget_larger_than_data_and_duplicates() -> None:
    x = np.array([[0.0], [0.0], [1.0]])
    got = kcenter_greedy(x, 10, seed=0)
    assert sorted(got) == [0, 1, 2]
    assert kcenter_greedy(np.zeros((0, 2)), 3) == []


def test_select_random_is_seeded_and_unique() -> None:
    a, b = select_random(50, 20, seed=4), select_random(50, 20, seed=4)
    assert a == b and len(set(a)) == 20 and select_random(50, 20, seed=5) != a
    assert sorted(select_random(5, 20)) == [0, 1, 2, 3, 4]


def test_select_top_skips_missing_scores() -> None:
    got = select_top([0.1, None, 3.0, float("nan"), 2.0, 0.5], 3)
    assert got == [2, 4, 5]
    assert select_top([None, None], 2) == []


def test_ifd_equals_the_hand_computed_ratio(tiny_lm_dir: Path) -> None:
    import torch

    from gristmill.models.causal_lm import load_causal_lm

    lm = load_causal_lm(str(tiny_lm_dir))
    ins, res = ["Name a colour.", "Add two and three."], ["Blue is a colour.", "Five."]
    got = ifd_scores(lm, ins, res, batch_size=2)

    def mean_nll(prefix: list[int], target: list[int]) -> float:
        ids = torch.tensor([prefix + target])
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(input_ids=ids).logits[0].double(), -1)
        return -sum(float(logp[len(prefix) - 1 + j, t]) for j, t in enumerate(target)) / len(target)

    for i, r, g in zip(ins, res, got):
        ii, rr = lm.encode([i + "\n\n"])[0], lm.encode([r])[0]
        cond = mean_nll([lm.prefix_id, *ii], rr)
        plain = mean_nll([lm.prefix_id], rr)
        assert g["ppl_conditioned"] == pytest.approx(math.exp(cond), rel=1e-4)
        assert g["ppl_response"] == pytest.approx(math.exp(plain), rel=1e-4)
        assert g["ifd"] == pytest.approx(math.exp(cond) / math.exp(plain), rel=1e-4)
    assert ifd_scores(lm, ["x"], [""])[0]["ifd"] is None
