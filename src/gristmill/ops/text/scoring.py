"""Thresholds on score columns: a :class:`Rule` checks one value against bounds and words the drop
reason (:class:`~gristmill.records.Reason` ``<rule>: <value> < <bound>``). The filter base
(:class:`~gristmill.ops.base.Filter`) applies them; the report reads them back from the run's stats."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from gristmill.records import Reason


@dataclass(frozen=True)
class Rule:
    """A threshold on one score column; ``None`` bounds are not checked."""

    name: str
    column: str
    min: float | None = None
    max: float | None = None

    def check(self, value: Any) -> Reason | None:
        """The drop reason for ``value``, or ``None`` if it passes (a null or NaN value passes)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.min is not None and value < self.min:
            return Reason(self.name, f"{_fmt(value)} < {_fmt(self.min)}")
        if self.max is not None and value > self.max:
            return Reason(self.name, f"{_fmt(value)} > {_fmt(self.max)}")
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)
