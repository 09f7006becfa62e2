"""The risk audit of a run: gates (``gates.py``), metrics (``metrics.py``) over the columns the audit
reads (``columns.py``), ``audit.json`` (``audit.py``), the dataset card ``DATASET_CARD.md``
(``card.py``), and writing both (``write.py``). Every file of the run is read through
:class:`gristmill.pipeline.run_reader.RunReader`.

Operators add their own metrics, summaries and card text (``metric.py``, gathered by
``catalogue.py``); they import ``metric.py`` and ``columns.py`` only, so this package loads
its other parts on first use of a name below, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gristmill.audit.audit import AUDIT_NAME, build_audit, failure_message
    from gristmill.audit.card import CARD_NAME, build_card, write_card
    from gristmill.audit.gates import Gate, GateError, parse_gate, validate_gates
    from gristmill.audit.write import write_audit

__all__ = ["AUDIT_NAME", "CARD_NAME", "Gate", "GateError", "build_audit", "build_card", "failure_message",
           "parse_gate", "validate_gates", "write_audit", "write_card"]


def __getattr__(name: str) -> Any:
    """The names of ``__all__``, imported from their modules when first asked for."""
    if name in ("AUDIT_NAME", "build_audit", "failure_message"):
        from gristmill.audit import audit as part
    elif name in ("CARD_NAME", "build_card", "write_card"):
        from gristmill.audit import card as part
    elif name in ("Gate", "GateError", "parse_gate", "validate_gates"):
        from gristmill.audit import gates as part
    elif name == "write_audit":
        from gristmill.audit import write as part
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(part, name)
