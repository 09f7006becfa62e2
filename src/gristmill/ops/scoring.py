"""Score-then-decide: operators that write score columns once and drop by thresholds.

A :class:`ScoreFilter` computes its scores as namespaced columns (``quality.gopher.words``)
on every row, kept or dropped, then applies :class:`Rule` thresholds. The first rule a
row fails gives its reason, ``<rule>: <value> < <bound>``. With ``drop: false`` the
operator only annotates, so a later run can try other thresholds on the same scores.
The rules are recorded in the run's stats, so the report can show each score's
distribution and what a different threshold would keep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
from pydantic import Field

from gristmill.ops.base import Operator, Params, StepResult, split_by_mask
from gristmill.records import set_column


@dataclass(frozen=True)
class Rule:
    """A threshold on one score column; ``None`` bounds are not checked."""

    name: str
    column: str
    min: float | None = None
    max: float | None = None

    def check(self, value: Any) -> str | None:
        """The drop reason for ``value``, or ``None`` if it passes."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.min is not None and value < self.min:
            return f"{self.name}: {_fmt(value)} < {_fmt(self.min)}"
        if self.max is not None and value > self.max:
            return f"{self.name}: {_fmt(value)} > {_fmt(self.max)}"
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


class ScoreParams(Params):
    """Parameters every score filter has."""

    drop: bool = Field(True, description="Drop rows that fail a rule; false only writes the score columns.")


class ScoreFilter(Operator):
    """Writes score columns, then drops rows failing a rule (a filter with its scores kept)."""

    kind = "filter"
    Params = ScoreParams

    def scores(self, batch: pa.Table) -> dict[str, Sequence[Any] | pa.Array]:  # pragma: no cover - abstract
        """One sequence per score column, aligned with the batch's rows."""
        raise NotImplementedError

    def rules(self) -> list[Rule]:  # pragma: no cover - abstract
        """The thresholds, in the order they are checked."""
        raise NotImplementedError

    def score_columns(self) -> list[str]:
        """The columns :meth:`scores` writes (the report plots these)."""
        return self.writes()

    def process(self, batch: pa.Table) -> StepResult:
        if batch.num_rows == 0:
            for col in self.score_columns():
                if col not in batch.column_names:
                    batch = set_column(batch, col, pa.array([], pa.float64()))
            return StepResult(batch)
        for col, values in self.scores(batch).items():
            batch = set_column(batch, col, values)
        if not self.params.drop:
            return StepResult(batch)
        rules = self.rules()
        columns = {r.column: batch.column(r.column).to_pylist() for r in rules}
        reasons: list[str | None] = []
        for i in range(batch.num_rows):
            reason = None
            for r in rules:
                reason = r.check(columns[r.column][i])
                if reason:
                    break
            reasons.append(reason)
        return split_by_mask(batch, [r is None for r in reasons], reasons)
