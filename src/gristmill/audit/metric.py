"""What an operator adds to the audit: its metrics, its summary section and its dataset card text.

An operator returns an :class:`AuditSection` from its ``audit_section()`` hook (declared on
:class:`gristmill.ops.base.Operator`, default none); operators of one family may return the
same section (``pii.detect`` and ``pii.redact``). The audit's catalogue
(:mod:`gristmill.audit.catalogue`) gathers the sections of every registered operator, so
gates can name their metrics and ``audit.json``, the report and ``DATASET_CARD.md`` show them.

This module is light on purpose: operators import it (and :mod:`gristmill.audit.columns`),
never the audit itself. Measure functions read the run through
:class:`gristmill.pipeline.run_reader.RunReader`; thresholds come from the step's recorded
parameters and, when absent there, from the operator's own ``Params`` defaults
(:func:`recorded_param`), never from a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gristmill import registry

if TYPE_CHECKING:
    from gristmill.audit.gates import Gate
    from gristmill.pipeline.run_reader import RunReader

__all__ = ["AuditMetric", "AuditSection", "CardText", "Measure", "recorded_param"]


@dataclass
class Measure:
    """A metric's value, the rows that push it the wrong way (worst first), and a note."""

    value: Any
    worst: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    rows: Callable[[Gate], list[dict[str, Any]]] | None = None  # gate-specific worst rows (set metrics)


@dataclass(frozen=True)
class AuditMetric:
    """A metric gates can name (``toxicity.fraction``): what it measures, and the function that measures it.

    ``measure(run, name)`` returns the :class:`Measure` of metric ``name`` for the run; it is
    called only for runs whose recipe has a step of an operator contributing the metric, or
    for a gate naming it, so it says so in the note when no such step ran."""

    name: str
    doc: str
    measure: Callable[[RunReader, str], Measure]
    kind: Literal["number", "set"] = "number"


# A card section's text (None: nothing to say for this run) and the limitations it adds to the card.
CardText = tuple[str | None, list[str]]


@dataclass(frozen=True)
class AuditSection:
    """An operator family's part of the audit.

    * ``name``: its key under ``summaries`` in ``audit.json`` (``pii``, ``contamination``); the
      summary lists the steps, drops and columns of the contributing operators' families
      (``pii.*``, ``decontam.*``), the values of ``metrics``, and whatever ``figures(run)`` adds.
    * ``metrics``: the metrics gates can name, each ``<name>.<what>`` (``pii.remaining``); a name
      must not be the audit's own (``rows.*``, ``license``, ``dropped.*``) nor another section's.
    * ``order``: where the section goes among the others (summaries and card).
    * ``card_title``: the dataset card heading it writes under (sections may share one: their
      texts are joined); ``card(summary, run)`` writes its text from its summary (None when the
      run has none) and ``card_empty`` is the heading's text when no section under it has any.
    """

    name: str
    metrics: tuple[AuditMetric, ...] = ()
    figures: Callable[[RunReader], dict[str, Any]] | None = None
    order: int = 100
    card_title: str | None = None
    card: Callable[[dict[str, Any] | None, RunReader], CardText] | None = None
    card_empty: str = ""


def recorded_param(run: RunReader, op: str, key: str) -> Any:
    """Parameter ``key`` of the last step running operator ``op``, as the run recorded it (``recipe.yaml``);
    when the step or the key is absent, the default of the operator's ``Params`` (None when it has none)."""
    step = run.last_step(op)
    if step is not None and key in step[1]:
        return step[1][key]
    f = registry.get(op).Params.model_fields.get(key)
    return None if f is None or f.is_required() else f.get_default(call_default_factory=True)
