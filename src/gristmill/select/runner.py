"""``gristmill select``: read candidate rows, pick a subset under a row budget, write it and a run directory.

Writes into the run directory (kind ``select``):

* ``subset.jsonl``: the chosen rows as read (ids kept; a repeated input id gets a ``~N``
  suffix), each with ``select.rank`` (order chosen) and ``select.score`` (the strategy's
  score, when it has one);
* ``scores.jsonl`` (score strategies): every candidate's id and score;
* ``pulls.jsonl`` (bandits): one line per round: arm, reward, arm counts and mean rewards,
  the EXP3 probabilities / UCB1 values that chose the arm, dev loss before and after;
* ``config.json``, ``results.json``, ``metrics.jsonl``, ``report.html`` (see :mod:`gristmill.rundir`).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.io.base import BadRecord, ReaderOptions
from gristmill.io.readers import open_reader
from gristmill.select.features import HEURISTIC_QUALITY, cluster_arms, embed, field_text, heuristic_quality, \
    kmeans_labels, pair_of

__all__ = ["STRATEGIES", "SelectConfig", "SelectionError", "read_rows", "run_selection"]

STRATEGIES = ("random", "quality", "ifd", "kcenter", "judge", "bandit-exp3", "bandit-ucb")


class SelectionError(ValueError):
    """The options do not fit the data (a missing column, too few rows); nothing was selected."""


@dataclass
class SelectConfig:
    """Every option of a selection run (saved as ``config.json``)."""

    data: str
    budget: int
    strategy: str
    out: str
    format: str | None = None
    seed: int = 0
    score_field: str | None = None
    instruction_fields: list[str] = field(default_factory=lambda: ["instruction", "input"])
    response_field: str = "output"
    lm: str | None = None
    lm_dtype: str = "float32"
    drop_ifd_over_1: bool = True
    embed_model: str | None = None
    arm_field: str | None = None
    clusters: int = 8
    batch_size: int = 8
    steps_per_pull: int = 1
    gamma: float = 0.1
    ucb_c: float = 1.0
    reward: str = "drop"
    learner_model: str | None = None
    learner_lr: float = 5e-5
    learner_dtype: str = "float32"
    dev: str | None = None
    dev_size: int = 32
    max_tokens: int = 256


def read_rows(path: str | Path, fmt: str | None = None) -> tuple[list[dict[str, Any]], list[BadRecord]]:
    """All good rows of ``path`` and its malformed records; a repeated id gets a ``~N`` suffix.

    Without ``fmt``, a JSONL/Parquet file whose rows have no ``text`` column (instruction
    data) is read again as ``alpaca``, ``self_instruct``, ``openai`` or ``sharegpt``, the first
    layout that yields rows. The reader's
    ``source`` column (the file a row came from) replaces any ``source`` column in the data.
    """
    rows, bad = _read(path, fmt)
    if fmt is None and not rows and bad and any("missing required field 'text'" in b.reason for b in bad):
        for layout in ("alpaca", "self_instruct", "openai", "sharegpt"):
            again, again_bad = _read(path, layout)
            if again:
                return again, again_bad
    return rows, bad


def _read(path: str | Path, fmt: str | None) -> tuple[list[dict[str, Any]], list[BadRecord]]:
    rows: list[dict[str, Any]] = []
    bad: list[BadRecord] = []
    seen: Counter[str] = Counter()
    for item in open_reader(path, ReaderOptions(format=fmt)):
        if isinstance(item, BadRecord):
            bad.append(item)
            continue
        rid = str(item["id"])
        seen[rid] += 1
        if seen[rid] > 1:
            item["id"] = f"{rid}~{seen[rid] - 1}"
        rows.append(item)
    return rows, bad


def _texts(rows: list[dict[str, Any]], cfg: SelectConfig) -> list[str]:
    out = []
    for r in rows:
        ins, res = pair_of(r, cfg.instruction_fields, cfg.response_field)
        out.append(f"{ins}\n\n{res}".strip())
    return out


def _column_scores(rows: list[dict[str, Any]], name: str) -> list[float | None]:
    scores: list[float | None] = []
    for r in rows:
        v = r.get(name)
        try:
            f = float(v) if v is not None and v != "" else None
        except (TypeError, ValueError):
            f = None
        scores.append(f if f is not None and math.isfinite(f) else None)
    return scores


def _check(rows: list[dict[str, Any]], cfg: SelectConfig) -> None:
    """Reject options the data cannot satisfy, before any model is loaded."""
    if not rows:
        raise SelectionError(f"--data {cfg.data}: no usable rows (give --format: jsonl, alpaca, self_instruct, "
                             "openai, sharegpt, parquet, csv)")
    if cfg.strategy == "judge":
        name = cfg.score_field or "judge.score"
        if not any(name in r for r in rows):
            raise SelectionError(f"--strategy judge: no row has a {name!r} column; score the data with the "
                                 "judge.score operator first (a recipe step), or name the column with --score-field")
    if cfg.strategy == "quality" and cfg.score_field and not any(cfg.score_field in r for r in rows):
        raise SelectionError(f"--score-field {cfg.score_field}: no row has this column")
    if cfg.strategy.startswith("bandit"):
        if cfg.arm_field and not any(cfg.arm_field in r for r in rows):
            raise SelectionError(f"--arm-field {cfg.arm_field}: no row has this column")
        if cfg.dev is None and len(rows) <= cfg.dev_size:
            raise SelectionError(f"--dev-size {cfg.dev_size}: the data has only {len(rows)} rows; "
                                 "give a --dev file or a smaller --dev-size")


def run_selection(cfg: SelectConfig, progress: bool = False,
                  log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run one selection; returns ``results.json``'s content. Raises :class:`SelectionError` / ``InputError``."""
    from gristmill.rundir import RunDir

    t0 = time.time()
    if cfg.strategy not in STRATEGIES:
        raise SelectionError(f"--strategy {cfg.strategy}: unknown; expected one of {', '.join(STRATEGIES)}")
    rows, bad = read_rows(cfg.data, cfg.format)
    _check(rows, cfg)
    dev_rows: list[dict[str, Any]] = []
    candidates = list(range(len(rows)))
    if cfg.strategy.startswith("bandit"):
        if cfg.dev is not None:
            dev_rows, dev_bad = read_rows(cfg.dev, cfg.format)
            if not dev_rows:
                raise SelectionError(f"--dev {cfg.dev}: no usable rows")
            bad += dev_bad
        else:  # hold out dev rows from the data; they are never selected
            held = set(np.random.default_rng(cfg.seed + 7919).permutation(len(rows))[:cfg.dev_size].tolist())
            dev_rows = [rows[i] for i in sorted(held)]
            candidates = [i for i in candidates if i not in held]

    run = RunDir.create(cfg.out, kind="select", config=asdict(cfg))
    for b in bad:
        log(f"skipped malformed record {b.source}:{b.line}: {b.reason}")
    scores: list[float | None] | None = None
    score_note = ""
    extra: dict[str, Any] = {}
    budget = min(cfg.budget, len(candidates))

    if cfg.strategy == "random":
        from gristmill.select.strategies import select_random

        chosen = [candidates[i] for i in select_random(len(candidates), budget, cfg.seed)]
    elif cfg.strategy in ("quality", "judge"):
        from gristmill.select.strategies import select_top

        if cfg.strategy == "judge" or cfg.score_field:
            name = cfg.score_field or "judge.score"
            scores = _column_scores(rows, name)
            score_note = f"column {name!r}"
        else:
            scores = [heuristic_quality(pair_of(r, cfg.instruction_fields, cfg.response_field)[1]) for r in rows]
            score_note = HEURISTIC_QUALITY
        chosen = select_top(scores, budget, cfg.seed)
        extra["unscored_rows"] = sum(s is None for s in scores)
    elif cfg.strategy == "ifd":
        from gristmill.models.causal_lm import load_causal_lm
        from gristmill.select.strategies import ifd_scores, select_top

        lm = load_causal_lm(cfg.lm, cfg.lm_dtype)
        pairs = [pair_of(r, cfg.instruction_fields, cfg.response_field) for r in rows]
        detail = ifd_scores(lm, [p[0] for p in pairs], [p[1] for p in pairs], max_tokens=cfg.max_tokens)
        scores = [d["ifd"] for d in detail]
        over = sum(1 for s in scores if s is not None and s > 1)
        usable = [s if s is not None and (s <= 1 or not cfg.drop_ifd_over_1) else None for s in scores]
        chosen = select_top(usable, budget, cfg.seed)
        score_note = (f"IFD = PPL(response | instruction) / PPL(response) under {cfg.lm or 'SmolLM2-135M-Instruct'}; "
                      f"highest first; {over} rows with IFD > 1 " + ("dropped" if cfg.drop_ifd_over_1 else "kept"))
        extra.update(ifd_over_1=over, ifd_drop_over_1=cfg.drop_ifd_over_1)
        run.histogram("IFD of all candidates", [s for s in scores if s is not None], "IFD",
                      note="IFD > 1: the instruction makes the response harder to predict (Li et al. drop these).")
    elif cfg.strategy == "kcenter":
        from gristmill.select.strategies import kcenter_greedy

        x = embed(_texts(rows, cfg), cfg.embed_model)
        chosen = kcenter_greedy(x, budget, cfg.seed)
        score_note = "k-center greedy on sentence embeddings (instruction + response), Euclidean"
    else:
        chosen, extra = _bandit(run, rows, dev_rows, candidates, budget, cfg, progress)
        score_note = extra.pop("note")

    _write_subset(run, rows, chosen, scores)
    if scores is not None:
        with open(run.path / "scores.jsonl", "w", encoding="utf-8") as f:
            for r, s in zip(rows, scores):
                f.write(json.dumps({"id": r["id"], "score": s}) + "\n")
    results = run.result(strategy=cfg.strategy, budget=cfg.budget, candidates=len(candidates),
                         selected=len(chosen), rows_read=len(rows), malformed_records=len(bad),
                         dev_rows=len(dev_rows), seconds=round(time.time() - t0, 2), scoring=score_note, **extra)
    _report(run, rows, chosen, scores, cfg, score_note, bad)
    run.finish(title=f"select {cfg.strategy}: {len(chosen)} of {len(candidates)} rows")
    return results


def _write_subset(run: Any, rows: list[dict[str, Any]], chosen: list[int], scores: list[float | None] | None) -> None:
    with open(run.path / "subset.jsonl", "w", encoding="utf-8") as f:
        for rank, i in enumerate(chosen):
            row = dict(rows[i])
            row["select.rank"] = rank
            if scores is not None:
                row["select.score"] = scores[i]
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def _bandit(run: Any, rows: list[dict[str, Any]], dev_rows: list[dict[str, Any]], candidates: list[int],
            budget: int, cfg: SelectConfig, progress: bool) -> tuple[list[int], dict[str, Any]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gristmill.models.causal_lm import hf_dir
    from gristmill.models.locate import offline
    from gristmill.progress import progress_bars
    from gristmill.select.bandit import make_policy, run_bandit
    from gristmill.select.learners import CausalLMLearner

    if cfg.arm_field:
        labels = [field_text(r, cfg.arm_field) or "(none)" for r in rows]
        arm_kind = f"column {cfg.arm_field!r}"
    else:
        x = embed(_texts([rows[i] for i in candidates], cfg), cfg.embed_model)
        lab = kmeans_labels(x, cfg.clusters, cfg.seed)
        labels = [""] * len(rows)
        for i, c in zip(candidates, lab):
            labels[i] = f"cluster {c}"
        arm_kind = f"k-means clusters (k={cfg.clusters}) of sentence embeddings"
    arms, names = cluster_arms(labels, candidates)
    offline()
    directory = cfg.learner_model or str(hf_dir())
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, cfg.learner_dtype))
    torch.manual_seed(cfg.seed)
    pool_pairs = [pair_of(r, cfg.instruction_fields, cfg.response_field) for r in rows]
    dev_pairs = [pair_of(r, cfg.instruction_fields, cfg.response_field) for r in dev_rows]
    learner = CausalLMLearner(model, tokenizer, pool_pairs, dev_pairs, lr=cfg.learner_lr, max_tokens=cfg.max_tokens)
    policy = make_policy(cfg.strategy, len(arms), seed=cfg.seed, gamma=cfg.gamma, c=cfg.ucb_c)
    pulls_file = open(run.path / "pulls.jsonl", "w", encoding="utf-8")
    with pulls_file, progress_bars(progress) as bars:
        task = bars.add_task("select", total=budget, unit="rows")

        def on_pull(p: Any) -> None:
            pulls_file.write(json.dumps(p.to_json()) + "\n")
            pulls_file.flush()
            run.log("pull", p.round, dev_loss=p.dev_loss_after, reward=p.reward, raw_reward=p.raw_reward,
                    train_loss=p.train_loss)
            bars.update(task, advance=len(p.rows), description=f"select dev {p.dev_loss_after:.3f}")

        chosen, pulls = run_bandit(arms, learner, budget, policy, batch_size=cfg.batch_size,
                                   steps_per_pull=cfg.steps_per_pull, seed=cfg.seed, arm_names=names,
                                   reward=cfg.reward, on_pull=on_pull)
    _bandit_report(run, pulls, arms, names, arm_kind)
    learner_name = cfg.learner_model or "SmolLM2-135M-Instruct"
    note = (f"{policy.name} over {len(arms)} arms ({arm_kind}); learner: {learner_name} fully fine-tuned "
            f"({cfg.learner_dtype}, AdamW lr {cfg.learner_lr}), reward = dev loss before - after a pull"
            + (" minus the recent average drop" if cfg.reward == "relative" else "")
            + ", mapped to [0, 1] by the largest change so far")
    return chosen, {"note": note, "rounds": len(pulls), "arms": len(arms),
                    "dev_loss_start": pulls[0].dev_loss_before if pulls else None,
                    "dev_loss_end": pulls[-1].dev_loss_after if pulls else None,
                    "pulls_per_arm": {n: sum(p.arm == a for p in pulls) for a, n in enumerate(names)}}


def _bandit_report(run: Any, pulls: list[Any], arms: list[list[int]], names: list[str], arm_kind: str) -> None:
    """Which arms were pulled and why: counts, mean rewards, reward and probability curves."""
    counts = [sum(p.arm == a for p in pulls) for a in range(len(arms))]
    mean_r = [float(np.mean([p.reward for p in pulls if p.arm == a])) if counts[a] else float("nan")
              for a in range(len(arms))]
    run.bars("Pulls per arm", names, counts, "pulls", note=f"arms: {arm_kind}")
    run.table("Arms", ["arm", "rows", "pulls", "mean reward (0-1)", "mean dev-loss drop"],
              [[n, len(arms[a]), counts[a], None if math.isnan(mean_r[a]) else round(mean_r[a], 4),
                round(float(np.mean([p.raw_reward for p in pulls if p.arm == a])), 5) if counts[a] else None]
               for a, n in enumerate(names)])
    xs = [p.round for p in pulls]
    run.curve("Dev loss of the learner", {"dev loss": (xs, [p.dev_loss_after for p in pulls])}, "round", "loss")
    series = {}
    for a, n in enumerate(names):
        pts = [(p.round, p.reward) for p in pulls if p.arm == a]
        if pts:
            series[n] = ([x for x, _ in pts], [y for _, y in pts])
    run.curve("Reward of each pull, by arm", series, "round", "reward (0-1)",
              note="0.5 = dev loss unchanged; 1 = the largest drop so far")
    cum = {n: (xs, list(np.cumsum([p.arm == a for p in pulls]))) for a, n in enumerate(names)}
    run.curve("Cumulative pulls by arm", cum, "round", "pulls")
    key = "probabilities" if pulls and "probabilities" in pulls[0].policy_state else "ucb"
    if pulls:
        curves = {}
        for a, n in enumerate(names):
            ys = [p.policy_state[key][a] for p in pulls]
            if any(y is not None for y in ys):
                curves[n] = (xs, [float("nan") if y is None else y for y in ys])
        run.curve("EXP3 pull probabilities" if key == "probabilities" else "UCB1 values (before each pull)",
                  curves, "round", key, note="the state that chose each round's arm")


def _report(run: Any, rows: list[dict[str, Any]], chosen: list[int], scores: list[float | None] | None,
            cfg: SelectConfig, score_note: str, bad: list[BadRecord]) -> None:
    run.table("Selection", ["", ""], [["strategy", cfg.strategy], ["scoring", score_note],
                                      ["budget (rows)", cfg.budget], ["selected", len(chosen)],
                                      ["rows read", len(rows)], ["malformed records skipped", len(bad)]])
    if bad:
        run.table("Malformed records (skipped)", ["file", "line", "reason"],
                  [[b.source, b.line, b.reason] for b in bad[:50]])
    if scores is not None:
        all_s = [s for s in scores if s is not None]
        sel = [scores[i] for i in chosen if scores[i] is not None]
        if all_s:
            run.histogram("Score of all candidates", all_s, "score")
            run.histogram("Score of the selected rows", sel, "score")
    lengths = [len(pair_of(rows[i], cfg.instruction_fields, cfg.response_field)[1]) for i in chosen]
    run.histogram("Response length of the selected rows (characters)", lengths, "characters")
    run.samples("First selected rows", [(f"#{k} {rows[i]['id']}", " | ".join(
        t for t in pair_of(rows[i], cfg.instruction_fields, cfg.response_field) if t)[:400])
        for k, i in enumerate(chosen[:8])])
