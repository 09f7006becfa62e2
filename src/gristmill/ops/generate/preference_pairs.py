"""``generate.preference_pairs``: chosen / rejected pairs from several scored responses per prompt (DPO data).

A global operator, not a generator: the responses to one prompt can be anywhere in the input
(shards are cut by row count, so a per-shard generator would miss or split groups), and only
``fit`` sees every shard. ``summarize`` keeps each row's group key, id and score (the response
text goes to the step's scratch directory), ``fit`` decides every pair, and ``apply`` writes
each pair on the shard that holds its chosen response, reading a rejected response that lives in
another shard from that shard's scratch file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from pydantic import Field

from gristmill.ops.base import GlobalOp, Params, StepResult, split_by_mask
from gristmill.records import ID, LICENSE, Reason, column_list, from_rows

__all__ = ["PreferencePairs", "PAIR_COLUMNS", "score_value"]

PAIR_COLUMNS = ("prompt", "chosen", "rejected", "pref.chosen_id", "pref.rejected_id", "pref.chosen_score",
                "pref.rejected_score", "pref.margin", "pref.responses")
PASS = frozenset({"pass", "passed", "true", "yes", "correct", "ok"})
FAIL = frozenset({"fail", "failed", "false", "no", "incorrect", "wrong"})


def score_value(value: Any) -> tuple[float | None, str | None]:
    """A score as a number (a verifier's pass / fail as 1 / 0), or None and why it is not one."""
    if value is None:
        return None, "no score"
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, (int, float)):
        return (float(value), None) if math.isfinite(value) else (None, f"score {value!r} is not finite")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PASS:
            return 1.0, None
        if text in FAIL:
            return 0.0, None
        try:
            number = float(text)
        except ValueError:
            return None, f"score {value[:40]!r} is not a number or pass/fail"
        return (number, None) if math.isfinite(number) else (None, f"score {value[:40]!r} is not finite")
    return None, f"score of type {type(value).__name__} is not a number or pass/fail"


def _key(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


def _num(x: float) -> str:
    return f"{x:g}"


class PreferencePairs(GlobalOp):
    """Pair the responses to each prompt by score: chosen (higher) vs rejected (lower), for DPO / ORPO / KTO.

    Rows with equal ``group_column`` values (by default: equal prompt, i.e. ``prompt_column`` and,
    when the batch has it, ``input_column``) are the responses to one prompt; ``score_column``
    scores them (``judge.score``, or a verifier's pass/fail column: booleans and ``pass``/``fail``
    count 1/0). ``pairs: best_worst`` makes one pair per prompt, the highest score against the
    lowest (the first in input order among equals); ``all`` makes every pair of responses whose
    scores differ by at least ``min_margin``. A pair row is the chosen response's row plus
    ``prompt``, ``chosen``, ``rejected`` (what the ``preference`` output format writes) and
    ``pref.chosen_id`` / ``.rejected_id`` / ``.chosen_score`` / ``.rejected_score`` / ``.margin`` /
    ``.responses``; its id is the chosen row's (``best_worst``) or ``<chosen>~<rejected>`` (``all``),
    and its ``license`` joins both rows' licenses when they differ (``MIT AND CC-BY-4.0``).

    Every input row is either the chosen side of a pair or rejected with a reason: ``paired`` (the
    rejected side of pair ``<id>``; its text is in that pair), ``tie`` (equal scores), ``margin``
    (scores closer than ``min_margin``), ``identical`` (the same response text scored twice),
    ``unpaired`` (``best_worst``: neither the best nor the worst response), ``single`` (the only
    scored response to its prompt), ``unscored`` (no usable score), ``no_prompt``, ``no_response``.
    """

    name = "generate.preference_pairs"
    version = "1"
    example_params = {"prompt_column": "text", "response_column": "text", "score_column": "id"}

    class Params(Params):
        prompt_column: str = Field("instruction", description="Column with the prompt (text, or a list of "
                                                              "{role, content} messages).")
        input_column: str | None = Field("input", description="Column appended to a text prompt after a blank line "
                                                              "when the batch has it (Alpaca's input); null: none.")
        response_column: str = Field("output", description="Column with the response (text or messages).")
        score_column: str = Field("judge.score", description="Column with each response's score: a number, or a "
                                                             "verifier's pass/fail (booleans, 'pass'/'fail').")
        group_column: str | None = Field(None, description="Rows with equal values here answer one prompt (a prompt "
                                                           "id, gen.parent); null: group by the prompt itself.")
        min_margin: float = Field(1.0, ge=0, description="Smallest score difference of a pair (ties, difference 0, "
                                                         "are always dropped).")
        pairs: Literal["best_worst", "all"] = Field("best_worst", description="best_worst: one pair per prompt, the "
                                                                              "best against the worst response; all: "
                                                                              "every pair at least min_margin apart.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # Fit state: chosen id -> [(rejected id, its shard, chosen score, rejected score, group size, its license)];
        # every other row's reason; rejected responses that live in another shard than their chosen one.
        self.pairs: dict[Any, list[tuple[Any, int, float, float, int, Any]]] | None = None
        self.reasons: dict[Any, Reason] = {}
        self.remote: dict[Any, Any] = {}
        self.counts: dict[str, int] = {}

    def reads(self) -> list[str]:
        p = self.params
        cols = [ID, p.prompt_column, p.response_column, p.score_column]
        return list(dict.fromkeys(cols + ([p.group_column] if p.group_column else [])))

    def writes(self) -> list[str]:
        return list(PAIR_COLUMNS)

    # ---- per row ----------------------------------------------------------------------------
    def _prompts(self, batch: pa.Table) -> list[Any]:
        p = self.params
        prompts = column_list(batch, p.prompt_column)
        if not p.input_column or p.input_column not in batch.column_names or p.input_column == p.prompt_column:
            return prompts
        return [q + f"\n\n{i}" if isinstance(q, str) and isinstance(i, str) and i.strip() else q
                for q, i in zip(prompts, column_list(batch, p.input_column))]

    def _rows(self, batch: pa.Table) -> list[tuple[Any, str | None, float | None, str | None, str | None, Any]]:
        """Per row: (id, group key, score, response hash, why it cannot be paired, license)."""
        p = self.params
        prompts = self._prompts(batch)
        groups = column_list(batch, p.group_column) if p.group_column else prompts
        licenses = column_list(batch, LICENSE) if LICENSE in batch.column_names else [None] * batch.num_rows
        out = []
        for rid, prompt, group, response, raw, lic in zip(column_list(batch, ID), prompts, groups,
                                                          column_list(batch, p.response_column),
                                                          column_list(batch, p.score_column), licenses):
            score, why = score_value(raw)
            if prompt is None or group is None:
                why = "no_prompt: null " + (p.group_column if p.group_column and group is None else p.prompt_column)
            elif response is None:
                why = f"no_response: null {p.response_column}"
            elif why is not None:
                why = f"unscored: {why}"
            out.append((rid, None if group is None else _key(group), score,
                        None if response is None else _key(response), why, lic))
        return out

    def summarize(self, batch: pa.Table) -> dict[str, Any]:
        """Each row's key, id, score and response hash; the responses themselves in the scratch directory
        (in the summary outside a run)."""
        if batch.num_rows == 0:
            return {"rows": [], "responses": None}
        rows = self._rows(batch)
        ids = column_list(batch, ID)
        responses = batch.select([ID, self.params.response_column])
        if self.scratch is None:
            return {"rows": rows, "responses": dict(zip(ids, column_list(batch, self.params.response_column)))}
        key = xxhash.xxh3_64_hexdigest(json.dumps(ids, default=str).encode("utf-8", "surrogatepass"))
        path = Path(self.scratch) / f"responses-{key}.parquet"
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        pq.write_table(responses, tmp)  # written whole, then renamed: a killed worker leaves no half file
        tmp.replace(path)
        return {"rows": rows, "responses": str(path)}

    # ---- pairing ----------------------------------------------------------------------------------
    def _pair_group(self, members: list[tuple[int, Any, float, str, Any]], chosen: dict[Any, list],
                    found: set) -> None:
        """Pairs of one prompt's scored responses ``(shard, id, score, response hash, license)``, in input order."""
        p = self.params
        n = len(members)
        if n == 1:
            self.reasons[members[0][1]] = Reason("single", "the only scored response to its prompt")
            return
        scores = sorted((m[2] for m in members), reverse=True)
        listed = ", ".join(_num(s) for s in scores[:8]) + (", ..." if n > 8 else "")
        candidates = []
        if p.pairs == "best_worst":
            best = max(members, key=lambda m: m[2])  # the first of the highest
            worst = min(members, key=lambda m: m[2])
            candidates = [(best, worst)]
        else:
            candidates = [(a, b) if a[2] >= b[2] else (b, a) for i, a in enumerate(members) for b in members[i + 1:]]
        blocked: dict[Any, Reason] = {}
        for hi, lo in candidates:
            diff = hi[2] - lo[2]
            why = None
            if diff == 0:
                why = Reason("tie", f"all {n} responses score {_num(hi[2])}" if p.pairs == "best_worst" or
                             scores[0] == scores[-1] else f"scores {listed}: {_num(hi[2])} = {_num(lo[2])}")
                self.counts["pairs_tied"] = self.counts.get("pairs_tied", 0) + 1
            elif diff < p.min_margin:
                why = Reason("margin", f"{_num(hi[2])} - {_num(lo[2])} = {_num(diff)} < {_num(p.min_margin)} "
                                       f"(scores {listed})")
                self.counts["pairs_below_margin"] = self.counts.get("pairs_below_margin", 0) + 1
            elif hi[3] == lo[3]:
                why = Reason("identical", f"the same response scored {_num(hi[2])} and {_num(lo[2])}")
                self.counts["pairs_identical"] = self.counts.get("pairs_identical", 0) + 1
            if why is not None:
                for m in (hi, lo):
                    blocked.setdefault(m[1], why)
                continue
            chosen.setdefault(hi[1], []).append((lo[1], lo[0], hi[2], lo[2], n, lo[4]))
            found.update((hi[1], lo[1]))
        for m in members:
            if m[1] in found:
                continue
            if p.pairs == "best_worst" and not blocked:
                self.reasons[m[1]] = Reason("unpaired", f"neither the best ({_num(scores[0])}) nor the worst "
                                                        f"({_num(scores[-1])}) of {n} responses")
            else:
                self.reasons[m[1]] = blocked.get(m[1]) or next(iter(blocked.values()))

    def fit(self, summaries: list[Any]) -> None:
        groups: dict[str, list[tuple[int, Any, float, str, Any]]] = {}
        self.reasons, self.counts = {}, {}
        for shard, summary in enumerate(summaries):
            for rid, key, score, rhash, why, lic in (summary or {}).get("rows") or ():
                if why is not None:
                    rule, _, detail = why.partition(": ")
                    self.reasons[rid] = Reason(rule, detail)
                else:
                    groups.setdefault(key, []).append((shard, rid, score, rhash, lic))
        chosen: dict[Any, list[tuple[Any, int, float, float, int, Any]]] = {}
        found: set[Any] = set()
        for members in groups.values():
            self._pair_group(members, chosen, found)
        # rows used only as the rejected side of a pair
        shard_of = {m[1]: m[0] for members in groups.values() for m in members}
        for cid, partners in chosen.items():
            for rid, *_ in partners:
                if rid not in chosen and rid not in self.reasons:
                    self.reasons[rid] = Reason("paired", f"the rejected response of pair {self._pair_id(cid, rid)}")
        wanted: dict[int, set[Any]] = {}
        for cid, partners in chosen.items():
            for rid, rshard, *_ in partners:
                if rshard != shard_of[cid]:
                    wanted.setdefault(rshard, set()).add(rid)
        self.remote = self._load(summaries, wanted)
        self.pairs = chosen
        self.counts.update(groups=len(groups), pairs=sum(len(v) for v in chosen.values()))

    def _pair_id(self, chosen: Any, rejected: Any) -> str:
        return str(chosen) if self.params.pairs == "best_worst" else f"{chosen}~{rejected}"

    def _load(self, summaries: list[Any], wanted: dict[int, set[Any]]) -> dict[Any, Any]:
        """The responses of ``wanted`` (shard -> ids) from the summaries' scratch files (or dicts)."""
        out: dict[Any, Any] = {}
        col = self.params.response_column
        for shard, ids in wanted.items():
            responses = summaries[shard]["responses"]
            if isinstance(responses, dict):
                out.update({i: responses[i] for i in ids})
                continue
            table = pq.read_table(responses)
            for rid, value in zip(column_list(table, ID), column_list(table, col)):
                if rid in ids:
                    out[rid] = value
        return out

    def run_summary(self) -> dict[str, Any] | None:
        """Prompts, pairs made, candidate pairs dropped as ties / below the margin / identical, rows by reason."""
        if self.pairs is None:
            return None
        by_rule: dict[str, int] = {}
        for r in self.reasons.values():
            by_rule[r.rule] = by_rule.get(r.rule, 0) + 1
        return {**self.counts, "rows_by_reason": dict(sorted(by_rule.items()))}

    # ---- output -------------------------------------------------------------------------------------
    def _schema(self, batch: pa.Table) -> pa.Schema:
        p = self.params
        prompt_type = batch.schema.field(p.prompt_column).type
        if p.input_column and p.input_column in batch.column_names and p.input_column != p.prompt_column:
            prompt_type = pa.string() if pa.types.is_string(prompt_type) or pa.types.is_null(prompt_type) else prompt_type
        response_type = batch.schema.field(p.response_column).type
        id_type = batch.schema.field(ID).type
        extra = {"prompt": prompt_type, "chosen": response_type, "rejected": response_type, "pref.chosen_id": id_type,
                 "pref.rejected_id": id_type, "pref.chosen_score": pa.float64(), "pref.rejected_score": pa.float64(),
                 "pref.margin": pa.float64(), "pref.responses": pa.int64()}
        fields = [f for f in batch.schema if f.name not in extra]
        if self.params.pairs == "all" and pa.types.is_integer(id_type):
            fields = [pa.field(ID, pa.string()) if f.name == ID else f for f in fields]
        return pa.schema(fields + [pa.field(k, t) for k, t in extra.items()])

    def apply(self, batch: pa.Table) -> StepResult:
        if self.pairs is None:
            raise RuntimeError(f"{self.name}: fit() must run before apply()")
        if batch.num_rows == 0:
            return StepResult(batch)
        p = self.params
        rows = batch.to_pylist()
        prompts = self._prompts(batch)
        local = {r[ID]: r.get(p.response_column) for r in rows}
        made: list[dict[str, Any]] = []
        mask, reasons = [], []
        for row, prompt in zip(rows, prompts):
            rid = row[ID]
            partners = self.pairs.get(rid)
            mask.append(bool(partners))
            reasons.append(None if partners else self.reasons.get(rid, Reason("unpaired", "in no pair")))
            for other, _, cs, rs, n, rlicense in partners or ():
                rejected = local[other] if other in local else self.remote[other]
                pair = {**row, ID: self._pair_id(rid, other), "prompt": prompt, "chosen": row[p.response_column],
                        "rejected": rejected, "pref.chosen_id": rid, "pref.rejected_id": other,
                        "pref.chosen_score": cs, "pref.rejected_score": rs, "pref.margin": cs - rs,
                        "pref.responses": n}
                licenses = sorted({str(x) for x in (row.get(LICENSE), rlicense) if x})
                if len(licenses) > 1:  # both texts are in the pair: both licenses apply
                    pair[LICENSE] = " AND ".join(licenses)
                made.append(pair)
        result = split_by_mask(batch, mask, reasons)
        return StepResult(from_rows(made, schema=self._schema(batch)), result.rejected)
