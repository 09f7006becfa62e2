"""Baseline ways to pick ``budget`` rows: random, top score, k-center diversity, IFD.

Each function returns row indices (unique, at most ``budget``, in the order chosen).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ifd_scores", "kcenter_greedy", "select_random", "select_top"]


def select_random(n: int, budget: int, seed: int = 0) -> list[int]:
    """``min(budget, n)`` rows uniformly at random without replacement (seeded)."""
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.permutation(n)[:min(budget, n)]]


def select_top(scores: Sequence[float | None], budget: int, seed: int = 0) -> list[int]:
    """The ``budget`` rows with the highest score; rows without a (finite) score are never chosen.

    Ties are broken at random (seeded), so equal scores do not favour file order.
    """
    rng = np.random.default_rng(seed)
    s = np.array([np.nan if v is None else float(v) for v in scores], dtype=float)
    valid = np.flatnonzero(np.isfinite(s))
    tiebreak = rng.random(len(valid))
    order = valid[np.lexsort((tiebreak, -s[valid]))]
    return [int(i) for i in order[:budget]]


def kcenter_greedy(x: np.ndarray, budget: int, seed: int = 0, first: int | None = None) -> list[int]:
    """Greedy k-center (Sener & Savarese 2018, core-set): repeatedly add the point farthest from the chosen ones.

    Euclidean distance on the rows of ``x``. The first center is ``first`` or a seeded random
    row. A 2-approximation of the minimax-radius cover; O(budget * n * dim).
    """
    n = len(x)
    if n == 0 or budget < 1:
        return []
    x = np.asarray(x, dtype=np.float32)
    sq = np.einsum("ij,ij->i", x, x)
    start = int(np.random.default_rng(seed).integers(n)) if first is None else int(first)
    chosen = [start]
    min_d = np.full(n, np.inf, dtype=np.float64)
    c = start
    for _ in range(min(budget, n) - 1):
        d = sq + sq[c] - 2.0 * (x @ x[c])
        np.minimum(min_d, np.maximum(d, 0.0), out=min_d)
        min_d[chosen[-1]] = -1.0  # chosen points are never farthest
        c = int(np.argmax(min_d))
        if min_d[c] <= 0:  # every remaining point duplicates a center
            rest = [i for i in range(n) if min_d[i] == 0.0]
            if not rest:
                break
            c = rest[0]
        chosen.append(c)
        min_d[c] = -1.0
    return chosen


def ifd_scores(lm: Any, instructions: Sequence[str], responses: Sequence[str],
               batch_size: int = 8, max_tokens: int = 512) -> list[dict[str, float | None]]:
    """Instruction-following difficulty (Li et al. 2024, "From Quantity to Quality") of each pair.

    ``IFD = PPL(response | instruction) / PPL(response)``: the conditioned answer score over
    the direct answer score, both the mean NLL over the response tokens only. ``lm`` is a
    :class:`gristmill.models.causal_lm.CausalLM`. The conditioned window is the
    document prefix token, the instruction and a blank line, then the response (without
    the separator a one-word answer fuses with the instruction's last word, e.g.
    ``greater)false``, and IFD explodes); the unconditioned one is the
    document prefix token then the response's. Windows longer than ``max_tokens`` keep the
    response's tail and the instruction's end. A pair with an empty response gets ``None``.
    Returns ``{"ifd", "ppl_conditioned", "ppl_response"}`` per pair.
    """
    ins_ids = lm.encode([f"{t}\n\n" if t else "" for t in instructions])
    res_ids = lm.encode(list(responses))
    cond, cond_first, plain, plain_first = [], [], [], []
    for ins, res in zip(ins_ids, res_ids):
        res = res[-(max_tokens - 1):]
        room = max(0, max_tokens - len(res))
        ins = [lm.prefix_id, *ins][-room:] if room else []
        cond.append([*ins, *res])
        cond_first.append(max(len(ins), 1))
        plain.append([lm.prefix_id, *res])
        plain_first.append(1)
    c_sum, c_n = lm.window_losses(cond, cond_first, batch_size)
    p_sum, p_n = lm.window_losses(plain, plain_first, batch_size)
    out: list[dict[str, float | None]] = []
    for cs, cn, ps, pn in zip(c_sum, c_n, p_sum, p_n):
        if cn == 0 or pn == 0:
            out.append({"ifd": None, "ppl_conditioned": None, "ppl_response": None})
            continue
        ppl_c, ppl_p = math.exp(cs / cn), math.exp(ps / pn)
        out.append({"ifd": ppl_c / ppl_p, "ppl_conditioned": ppl_c, "ppl_response": ppl_p})
    return out
