"""The risk audit of a run: gates (``gates.py``), metrics and ``audit.json`` (``audit.py``),
and the dataset card ``DATASET_CARD.md`` (``card.py``)."""

from gristmill.audit.audit import AUDIT_NAME, build_audit, failure_message, write_audit
from gristmill.audit.card import CARD_NAME, build_card, write_card
from gristmill.audit.gates import Gate, GateError, parse_gate, validate_gates

__all__ = ["AUDIT_NAME", "CARD_NAME", "Gate", "GateError", "build_audit", "build_card", "failure_message",
           "parse_gate", "validate_gates", "write_audit", "write_card"]
