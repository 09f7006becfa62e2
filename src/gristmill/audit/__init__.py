"""The risk audit of a run: gates (``gates.py``), metrics (``metrics.py``) over the columns the audit
reads (``columns.py``), ``audit.json`` (``audit.py``), the dataset card ``DATASET_CARD.md``
(``card.py``), and writing both (``write.py``). Every file of the run is read through
:class:`gristmill.pipeline.run_reader.RunReader`."""

from gristmill.audit.audit import AUDIT_NAME, build_audit, failure_message
from gristmill.audit.card import CARD_NAME, build_card, write_card
from gristmill.audit.gates import Gate, GateError, parse_gate, validate_gates
from gristmill.audit.write import write_audit

__all__ = ["AUDIT_NAME", "CARD_NAME", "Gate", "GateError", "build_audit", "build_card", "failure_message",
           "parse_gate", "validate_gates", "write_audit", "write_card"]
