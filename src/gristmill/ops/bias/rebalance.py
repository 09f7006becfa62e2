"""``bias.rebalance``: bring one group's share of an axis's term mentions to a target by dropping, repeating or
adding rows.

Shares are of group *term occurrences*, counted as ``bias.audit`` counts them (with its term lists):
``bias.gender.female_share`` is female terms / (female + male terms). With target ``t`` for group ``G``, a row
with ``F`` terms of ``G`` and ``O`` terms of the axis's other groups contributes ``c = (1 - t) F - t O``, and
the share is at least ``t`` exactly when the ``c`` of the rows add up to 0 or more. A row with ``c < 0``
pulls the share below the target ("male-heavy" when ``G`` is female), one with ``c > 0`` above it; rows
without terms of the axis do not move it and are never touched.

Strategies (the share is below the target here; above it, the signs swap):

* ``downsample``: drop rows with ``c < 0``. Always reaches the target if any row has ``c > 0``, and throws
  data away: taking the Gutenberg sample's female share from 0.33 to 0.50 drops 52% of its characters in
  random order, 31% in ``skewed`` order (``experiments/results/bias_rebalance.json``).
* ``upsample``: repeat rows with ``c > 0``, each at most ``max_copies`` times (passes over the rows in order,
  one copy per row per pass). A copy has id ``<id>~rb<k>`` and ``bias.rebalance_of`` = the repeated row's id,
  and follows it. Nothing is dropped; the data grows (+59% of the characters on the Gutenberg sample, random
  order) with text it already holds, which a model memorises more easily. Put it after deduplication, which
  would drop the copies again.
* ``counterfactual``: rows with ``bias.counterfactual_of`` (copies made by ``bias.counterfactual`` earlier in
  the recipe) are candidates, not data: the step keeps the candidates with ``c > 0`` it needs and drops the
  others (reason ``rebalance: counterfactual copy not selected ...``). Needs a ``bias.counterfactual`` step
  before it (and ``bias.audit`` after that one, for the gate metrics); adds +52% of the characters on the
  Gutenberg sample (random order), text that is new but machine-rewritten.

``order`` decides which qualifying rows go first: ``random`` (a hash of ``seed`` and the row id, so the same
rows whatever the shards or workers) or ``skewed`` (largest ``|c|`` first: the fewest rows changed, but the
most one-sided rows go, which changes the data more than a random choice would). Rows are taken in that order
until the share reaches the target; a row that would carry it more than ``tolerance`` past the target is
skipped. When even every qualifying row (or copy) cannot bring the share within ``tolerance``, nothing is
changed and the summary says so (``reached: false``): a gate on ``bias.gender.female_share`` then fails.

A global step: every shard is counted (``summarize``) before anything is decided (``fit``). Its run summary
(``summaries/<step>.json``) gives the share before and after, rows, characters and term mentions dropped and
added per group, and the cost as percentages of the input. ``dry_run: true`` changes nothing and writes
``bias.rebalance_action`` (``drop: ...``, ``copies: 2``) on the rows it would change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, model_validator

from gristmill.audit.metric import AuditSection
from gristmill.ops.base import Context, GlobalOp, Params, StepResult
from gristmill.ops.bias.audit import Lexicon, group_mentions, lexicon
from gristmill.ops.bias.audit_metrics import BIAS_AUDIT
from gristmill.ops.bias.columns import COUNTERFACTUAL_OF, REBALANCE_ACTION, REBALANCE_OF
from gristmill.ops.text.phrases import data_lines
from gristmill.records import ID, REASON, Reason, column_list, set_column

__all__ = ["BiasRebalance", "Unit", "Plan", "plan_rebalance", "REBALANCE_OF", "REBALANCE_ACTION", "COPY_SUFFIX"]

COPY_SUFFIX = "~rb"
STRATEGIES = ("downsample", "upsample", "counterfactual")


@cache
def _shipped_axes() -> dict[str, tuple[str, ...]]:
    axes: dict[str, list[str]] = {}
    for row in data_lines("groups_en.txt"):
        if not row[0].startswith("{") and len(row) == 3 and row[1] not in axes.setdefault(row[0], []):
            axes[row[0]].append(row[1])
    return {a: tuple(g) for a, g in axes.items()}


@dataclass
class Unit:
    """The rows of one id: their term counts on the axis (in the axis's group order), characters, row count,
    and whether they are counterfactual candidates."""

    id: str
    vec: list[int]
    chars: int = 0
    rows: int = 1
    candidate: bool = False


@dataclass
class ShardCounts:
    """What ``summarize`` returns for one shard: rows that cannot move the share in totals, the others as units."""

    rows: int = 0
    chars: int = 0
    units: list[Unit] = field(default_factory=list)


@dataclass
class Plan:
    """What to do: ids to drop (with the reason's detail), ids to repeat (copies) or select, and the shares."""

    drop: dict[str, str]
    copies: dict[str, int]
    share_before: float | None
    share_after: float | None
    reached: bool
    note: str | None = None


def _share(f: float, o: float) -> float | None:
    return f / (f + o) if f + o > 0 else None


def _rank(seed: int, uid: str) -> int:
    return xxhash.xxh64_intdigest(f"{seed}\x00{uid}".encode())


def plan_rebalance(units: list[Unit], base_f: int, base_o: int, gi: int, groups: tuple[str, ...], target: float,
                   strategy: str, order: str, seed: int, tolerance: float, max_copies: int) -> Plan:
    """Choose the rows to drop, repeat or select so that group ``groups[gi]``'s share of the axis's terms
    reaches ``target`` (see the module docstring). ``base_f`` / ``base_o``: the data's terms of the group and
    of the axis's other groups (counterfactual candidates not included)."""
    group = groups[gi]
    before = _share(base_f, base_o)
    if before is None:
        return Plan({}, {}, None, None, False, f"no terms of the axis's groups: there is no {group} share to move")
    if abs(before - target) <= tolerance:
        return Plan({}, {}, before, before, True, "already within tolerance of the target")
    up = before < target  # the group is under-represented: move the share up
    sign = 1 if up else -1

    def c(u: Unit) -> float:
        f = u.vec[gi]
        return (1 - target) * f - target * (sum(u.vec) - f)

    if strategy == "downsample":
        pool = [u for u in units if not u.candidate and sign * c(u) < 0]
        step, passes = -1, 1
    else:
        pool = [u for u in units if u.candidate == (strategy == "counterfactual") and sign * c(u) > 0]
        step, passes = 1, (max_copies if strategy == "upsample" else 1)
    if order == "skewed":
        pool.sort(key=lambda u: (-abs(c(u)), _rank(seed, u.id)))
    else:
        pool.sort(key=lambda u: _rank(seed, u.id))
    f_all = base_f + step * passes * sum(u.vec[gi] for u in pool)
    o_all = base_o + step * passes * sum(sum(u.vec) - u.vec[gi] for u in pool)
    best = _share(f_all, o_all)
    if best is None or (up and best < target - tolerance) or (not up and best > target + tolerance):
        return Plan({}, {}, before, before, False, f"unreachable: with every qualifying row the {group} share "
                    f"would be {'none' if best is None else f'{best:.4f}'}; nothing changed")
    f, o = float(base_f), float(base_o)
    chosen: Counter = Counter()
    share = before
    done = False
    for _ in range(passes):
        for u in pool:
            nf, no = f + step * u.vec[gi], o + step * (sum(u.vec) - u.vec[gi])
            ns = _share(nf, no)
            if ns is None or (up and ns > target + tolerance) or (not up and ns < target - tolerance):
                continue
            f, o, share = nf, no, ns
            chosen[u.id] += 1
            if (up and share >= target) or (not up and share <= target):
                done = True
                break
        if done:
            break
    reached = share is not None and abs(share - target) <= tolerance
    if strategy == "downsample":
        return Plan({uid: "" for uid in chosen}, {}, before, share, reached)
    return Plan({}, dict(chosen), before, share, reached)


class BiasRebalance(GlobalOp):
    """Reach a target share of one group's terms on an axis: down-sample, up-sample or pick counterfactual copies.

    Counts each row's group terms on ``axis`` as ``bias.audit`` does (the shipped lists, or ``groups_path``),
    then, over all shards: ``downsample`` drops rows that pull ``group``'s share away from ``target``,
    ``upsample`` repeats rows that push it toward the target (copies ``<id>~rb<k>`` with ``bias.rebalance_of``),
    ``counterfactual`` keeps only the ``bias.counterfactual`` copies it needs (the others are dropped), in a
    seeded random order or the most skewed rows first, until the share is within ``tolerance`` of the target;
    nothing is changed when the target cannot be reached. Dropped rows carry ``rebalance: male-heavy row dropped
    to reach female share 0.50``. Its summary gives the share before and after and the rows, characters and
    term mentions dropped and added per group. What it costs: taking the Gutenberg sample's female share of
    gendered terms from 0.33 to 0.50 drops 52% of the characters (downsample, random order; 31% most skewed
    first), or adds 59% repeated text (upsample) or 52% gender-swapped copies (counterfactual).
    """

    name = "bias.rebalance"
    version = "1"

    class Params(Params):
        axis: str = Field("gender", description="The axis of the group lists (gender, race_ethnicity, religion, age, "
                          "nationality, disability, sexual_orientation with the shipped lists).")
        group: str = Field("female", description="The group whose share of the axis's term mentions is set.")
        target: float = Field(0.5, gt=0, lt=1, description="The share of the group's terms to reach.")
        tolerance: float = Field(0.005, ge=0, lt=0.5, description="How far from the target counts as reached; a "
                                 "row that would carry the share further past the target is skipped.")
        strategy: Literal["downsample", "upsample", "counterfactual"] = Field(
            "downsample", description="downsample: drop rows on the wrong side; upsample: repeat rows on the right "
            "side; counterfactual: keep only the bias.counterfactual copies needed.")
        order: Literal["random", "skewed"] = Field("random", description="Which qualifying rows first: a seeded "
                                                   "random order, or the largest effect on the share first.")
        seed: int = Field(0, description="Seed of the random order (a hash of seed and row id).")
        max_copies: int = Field(3, ge=1, description="upsample: copies of one row at most.")
        column: str = Field("text", description="String column whose group terms are counted.")
        groups_path: str | None = Field(None, description="Group terms file as for bias.audit (None: the shipped "
                                        "list); use the bias.audit step's, so both count the same terms.")
        dry_run: bool = Field(False, description="Change nothing: write bias.rebalance_action on the rows it "
                              "would drop or repeat, and the summary of what it would do.")

        @model_validator(mode="after")
        def _known_axis(self) -> BiasRebalance.Params:
            if self.groups_path is None:
                axes = _shipped_axes()
                if self.axis not in axes:
                    raise ValueError(f"unknown axis {self.axis!r}; known: {', '.join(axes)}")
                if self.group not in axes[self.axis]:
                    raise ValueError(f"unknown {self.axis} group {self.group!r}; known: {', '.join(axes[self.axis])}")
            return self

    example_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.plan: Plan | None = None
        self.result: dict[str, Any] | None = None

    @classmethod
    def audit_section(cls) -> AuditSection:
        """The ``bias`` audit section: its metrics are measured on the rebalanced output, and the summary and
        the card show them before this step and after."""
        return BIAS_AUDIT

    def reads(self) -> list[str]:
        return [self.params.column] + ([COUNTERFACTUAL_OF] if self.params.strategy == "counterfactual" else [])

    def writes(self) -> list[str]:
        if self.params.dry_run:
            return [REBALANCE_ACTION]
        return [REBALANCE_OF] if self.params.strategy == "upsample" else []

    def input_files(self) -> list[Path]:
        return [self.resolve_path(self.params.groups_path)] if self.params.groups_path else []

    def lexicon(self) -> Lexicon:
        p = self.params
        return lexicon(str(self.resolve_path(p.groups_path)) if p.groups_path else None)

    def _groups(self) -> tuple[str, ...]:
        axes = self.lexicon().axes
        if self.params.axis not in axes or self.params.group not in axes[self.params.axis]:
            raise ValueError(f"{self.name}: no group {self.params.group!r} on axis {self.params.axis!r} in the "
                             f"group list (axes: {', '.join(axes)})")
        return tuple(axes[self.params.axis])

    def setup(self, ctx: Context) -> None:
        self._groups()

    # ---- summarize, fit ------------------------------------------------------------------
    def summarize(self, batch: pa.Table) -> ShardCounts:
        lex, groups, p = self.lexicon(), self._groups(), self.params
        keys = [f"{p.axis}:{g}" for g in groups]
        candidates = (pc.is_valid(batch.column(COUNTERFACTUAL_OF)).to_pylist()
                      if p.strategy == "counterfactual" and COUNTERFACTUAL_OF in batch.column_names
                      else [False] * batch.num_rows)
        out = ShardCounts()
        for uid, text, cand in zip(column_list(batch, ID), column_list(batch, p.column), candidates):
            found = group_mentions(text, lex)
            vec = [found[k] for k in keys]
            chars = len(text) if isinstance(text, str) else 0
            if any(vec) or cand:
                out.units.append(Unit(str(uid), vec, chars, 1, bool(cand)))
            else:
                out.rows += 1
                out.chars += chars
        return out

    def fit(self, summaries: list[Any]) -> None:
        p, groups = self.params, self._groups()
        gi = groups.index(p.group)
        units: dict[str, Unit] = {}
        rows = chars = 0
        for s in summaries:
            if s is None:
                continue
            rows, chars = rows + s.rows, chars + s.chars
            for u in s.units:
                if u.id in units:  # rows sharing an id are decided together
                    known = units[u.id]
                    known.vec = [a + b for a, b in zip(known.vec, u.vec)]
                    known.chars, known.rows = known.chars + u.chars, known.rows + u.rows
                else:
                    units[u.id] = Unit(u.id, list(u.vec), u.chars, u.rows, u.candidate)
        data = [u for u in units.values() if not u.candidate]
        base_f = sum(u.vec[gi] for u in data)
        base_o = sum(sum(u.vec) for u in data) - base_f
        plan = plan_rebalance(list(units.values()), base_f, base_o, gi, groups, p.target, p.strategy, p.order,
                              p.seed, p.tolerance, p.max_copies)
        up = plan.share_before is not None and plan.share_before < p.target
        for uid in plan.drop:
            plan.drop[uid] = self._drop_detail(units[uid], groups, gi, up)
        if p.strategy == "counterfactual":
            for u in units.values():
                if u.candidate and u.id not in plan.copies:
                    plan.drop[u.id] = self._unselected_detail(u, groups, gi, up, plan)
        self.plan = plan
        self.result = self._summary(units, rows, chars, groups)

    def _drop_detail(self, u: Unit, groups: tuple[str, ...], gi: int, up: bool) -> str:
        heavy = max((g for i, g in enumerate(groups) if i != gi), key=lambda g: u.vec[groups.index(g)]) if up \
            else groups[gi]
        return f"{heavy}-heavy row dropped to reach {self.params.group} share {self.params.target:.2f}"

    def _unselected_detail(self, u: Unit, groups: tuple[str, ...], gi: int, up: bool, plan: Plan) -> str:
        t = self.params.target
        f, o = u.vec[gi], sum(u.vec) - u.vec[gi]
        helps = ((1 - t) * f - t * o) * (1 if up else -1) > 0
        if not f + o:
            why = f"no {self.params.axis} terms"
        elif helps:
            why = "not needed" if plan.reached else "target unreachable"
        else:
            why = f"it would move the {self.params.group} share away from {t:.2f}"
        return f"counterfactual copy not selected: {why}"

    def _summary(self, units: dict[str, Unit], rows: int, chars: int, groups: tuple[str, ...]) -> dict[str, Any]:
        """The JSON-ready run summary: shares, rows, characters and mentions before, after, dropped and added."""
        p, plan = self.params, self.plan
        assert plan is not None

        def tally(items: list[tuple[Unit, int]]) -> dict[str, Any]:
            mentions: Counter = Counter()
            by_group: Counter = Counter()
            for u, k in items:
                mentions.update({g: n * k for g, n in zip(groups, u.vec) if n})
                top = max(u.vec) if u.vec else 0
                leaders = [g for g, n in zip(groups, u.vec) if n == top and top > 0]
                by_group[leaders[0] if len(leaders) == 1 else "mixed" if leaders else "none"] += u.rows * k
            return {"rows": sum(u.rows * k for u, k in items), "chars": sum(u.chars * k for u, k in items),
                    "mentions": {g: mentions[g] for g in groups if mentions[g]},
                    "rows_by_majority_group": dict(sorted(by_group.items()))}

        data = [(u, 1) for u in units.values() if not u.candidate]
        cands = [(u, 1) for u in units.values() if u.candidate]
        before = tally(data)
        before["rows"] += rows
        before["chars"] += chars
        dropped = tally([(units[i], 1) for i in plan.drop if not units[i].candidate])
        added = tally([(units[i], k) for i, k in plan.copies.items()])
        after = {"rows": before["rows"] - dropped["rows"] + added["rows"],
                 "chars": before["chars"] - dropped["chars"] + added["chars"],
                 "mentions": {g: n for g in groups if (n := before["mentions"].get(g, 0) - dropped["mentions"]
                                                       .get(g, 0) + added["mentions"].get(g, 0))}}

        def pct(x: int, of: int) -> float | None:
            return round(100 * x / of, 2) if of else None

        out: dict[str, Any] = {
            "axis": p.axis, "group": p.group, "target": p.target, "tolerance": p.tolerance, "strategy": p.strategy,
            "order": p.order, "seed": p.seed, "dry_run": p.dry_run, "reached": plan.reached, "note": plan.note,
            "share_before": None if plan.share_before is None else round(plan.share_before, 4),
            "share_after": None if plan.share_after is None else round(plan.share_after, 4),
            "before": before, "after": after, "dropped": dropped, "added": added,
            "cost": {"rows_dropped_pct": pct(dropped["rows"], before["rows"]),
                     "chars_dropped_pct": pct(dropped["chars"], before["chars"]),
                     "rows_added_pct": pct(added["rows"], before["rows"]),
                     "chars_added_pct": pct(added["chars"], before["chars"])}}
        if p.strategy == "counterfactual":
            out["candidates"] = {"rows": sum(u.rows for u, _ in cands), "chars": sum(u.chars for u, _ in cands),
                                 "selected": added["rows"]}
        return out

    def run_summary(self) -> dict[str, Any] | None:
        """Shares before and after, and what was dropped and added (``summaries/<step>.json``)."""
        return self.result

    # ---- apply ---------------------------------------------------------------------------
    def apply(self, batch: pa.Table) -> StepResult:
        plan = self.plan or Plan({}, {}, None, None, False)
        ids = [str(i) for i in column_list(batch, ID)]
        if self.params.dry_run:
            actions = [f"drop: {plan.drop[i]}" if i in plan.drop else
                       (f"copies: {plan.copies[i]}" if self.params.strategy == "upsample" else "select")
                       if i in plan.copies else None for i in ids]
            return StepResult(set_column(batch, REBALANCE_ACTION, pa.array(actions, pa.string())))
        dropped = [i for i, uid in enumerate(ids) if uid in plan.drop]
        rejected = None
        if dropped:
            rejected = batch.take(dropped)
            rejected = set_column(rejected, REASON, pa.array([str(Reason("rebalance", plan.drop[ids[i]]))
                                                              for i in dropped], pa.string()))
        if self.params.strategy != "upsample":
            keep = [i for i, uid in enumerate(ids) if uid not in plan.drop]
            return StepResult(batch.take(keep) if dropped else batch, rejected)
        order, new_ids, of = [], [], []
        for i, uid in enumerate(ids):
            order.append(i)
            new_ids.append(uid)
            of.append(None)
            for k in range(1, plan.copies.get(uid, 0) + 1):
                order.append(i)
                new_ids.append(f"{uid}{COPY_SUFFIX}{k}")
                of.append(uid)
        kept = batch.take(order)
        kept = set_column(kept, ID, pa.array(new_ids, pa.string()))
        return StepResult(set_column(kept, REBALANCE_OF, pa.array(of, pa.string())), rejected)
