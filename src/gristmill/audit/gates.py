"""Gates: ``metric op value`` checks a run must pass, parsed by a tiny grammar (no ``eval``).

A recipe's ``gates:`` list holds expressions such as ``pii.remaining == 0``,
``toxicity.fraction <= 0.01`` or ``license in ['public-domain-us', 'CC-BY-4.0']``::

    gate   := metric op value
    metric := a name of letters, digits, '_', '.', '-' (see METRICS)
    op     := == | != | <= | >= | < | > | in | not in
    value  := number | 'string' | "string" | bare-word | null | true | false | [value, ...]

A bare word (``CC-BY-4.0``: letters, digits and ``_.:/@+-``) is a string. Number metrics
compare as numbers (``in`` is list membership). The ``license`` metric is the *set* of
license values in the output: ``in [...]`` passes when every value is listed, ``not in
[...]`` when none is, ``== v`` when all rows have ``v``, ``!= v`` when no row has ``v``; a
row without a license is ``null``.
The metrics are the audit's core metrics (:data:`CORE_METRICS`: rows, quarantine, license, and
``dropped.<rule or operator>``) and the metrics registered operators contribute through their
``audit_section()`` hook (:mod:`gristmill.audit.catalogue`); :func:`catalogue` lists them all.
The metrics are measured by :mod:`gristmill.audit.metrics`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gristmill.audit.catalogue import operator_metrics

__all__ = ["Gate", "GateError", "MetricInfo", "METRICS", "CORE_METRICS", "DROPPED", "OPS", "parse_gate",
           "check_gate", "validate_gates", "compare", "catalogue", "known_metric_names", "metric_info"]

OPS = ("==", "!=", "<=", ">=", "<", ">", "in", "not in")
DROPPED = "dropped."


class GateError(ValueError):
    """A gate that cannot be parsed or does not fit its metric; the message says why."""


@dataclass(frozen=True)
class MetricInfo:
    """A metric gates can name: its kind, the operator it needs in the recipe, and what it measures."""

    name: str
    kind: Literal["number", "set"]
    doc: str
    needs: tuple[str, ...] = ()  # the recipe must run one of these operators


# The audit's own metrics: the run's counts (listed before the operators' metrics) and the output's licenses (after).
_COUNTS = [
    MetricInfo("rows.in", "number", "rows read from the input (quarantined records not included)"),
    MetricInfo("rows.out", "number", "rows in the output"),
    MetricInfo("rows.dropped", "number", "rows dropped by all steps together"),
    MetricInfo("quarantine.count", "number", "input records quarantined (unreadable, damaged file, field type conflict)"),
]
_SETS = [
    MetricInfo("license", "set", "the set of license values in the output (null for rows without one)"),
]
CORE_METRICS: dict[str, MetricInfo] = {m.name: m for m in [*_COUNTS, *_SETS]}


def catalogue() -> dict[str, MetricInfo]:
    """Every metric gates can name, in the order the audit lists them: the run's counts, the metrics of the
    registered operators (registration order; ``needs`` names the operators contributing each), ``license``."""
    ops = {}
    for name, (m, owners) in operator_metrics().items():
        if name in CORE_METRICS or name.startswith(DROPPED):
            raise GateError(f"{', '.join(owners)}: audit metric {name!r} is one of the audit's own names")
        ops[name] = MetricInfo(name, m.kind, m.doc, owners)
    return {**{m.name: m for m in _COUNTS}, **ops, **{m.name: m for m in _SETS}}


class _Catalogue(Mapping[str, MetricInfo]):
    """:func:`catalogue` as a mapping, read when used (so importing this module imports no operator)."""

    def __getitem__(self, name: str) -> MetricInfo:
        return catalogue()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(catalogue())

    def __len__(self) -> int:
        return len(catalogue())


METRICS: Mapping[str, MetricInfo] = _Catalogue()


def known_metric_names() -> list[str]:
    """Every metric name, with the ``dropped.<rule>`` pattern last."""
    return [*catalogue(), f"{DROPPED}<rule or operator>"]


def metric_info(name: str) -> MetricInfo:
    """The metric ``name`` (``dropped.*`` included); raises :class:`GateError` for an unknown one."""
    if name in CORE_METRICS:
        return CORE_METRICS[name]
    if name.startswith(DROPPED) and len(name) > len(DROPPED):
        return MetricInfo(name, "number", f"rows dropped under rule or by operator {name[len(DROPPED):]!r}")
    known = catalogue()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise GateError(f"unknown metric {name!r}; {hint}known: {', '.join(known_metric_names())}")


@dataclass(frozen=True)
class Gate:
    """One parsed gate."""

    expr: str
    metric: str
    op: str
    value: Any

    def describe(self) -> str:
        return f"{self.metric} {self.op} {_show(self.value)}"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


# ---- parsing -------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<op>==|!=|<=|>=|<|>|=)
    | (?P<punct>[\[\],])
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<word>[^\s\[\],'"<>=!]+)
    )""", re.VERBOSE)
_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z0-9_.:/@+\-]+")
_BARE = {"null": None, "none": None, "true": True, "false": False}


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise GateError(f"cannot read {expr[pos:].strip()[:20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _scalar(kind: str, text: str) -> Any:
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind != "word":
        raise GateError(f"expected a value, got {text!r}")
    if not _WORD.fullmatch(text):
        raise GateError(f"cannot read {text!r}: quote a string value")
    if _NUMBER.fullmatch(text):
        number = float(text)
        return int(number) if number.is_integer() and re.fullmatch(r"[-+]?\d+", text) else number
    return _BARE.get(text.lower(), text)


def parse_gate(expr: str) -> Gate:
    """Parse ``metric op value``; raise :class:`GateError` naming what is wrong."""
    if not isinstance(expr, str) or not expr.strip():
        raise GateError("a gate is a string 'metric op value', e.g. 'pii.remaining == 0'")
    toks = _tokens(expr)
    if not toks or toks[0][0] != "word" or not _METRIC.fullmatch(toks[0][1]):
        raise GateError(f"{expr!r}: expected a metric name first, e.g. 'rows.out >= 100'")
    metric, rest = toks[0][1], toks[1:]
    if rest[:2] == [("word", "not"), ("word", "in")]:
        op, rest = "not in", rest[2:]
    elif rest and (rest[0][0] == "op" or rest[0] == ("word", "in")):
        op, rest = rest[0][1], rest[1:]
    else:
        raise GateError(f"{expr!r}: expected an operator after {metric!r} ({', '.join(OPS)})")
    if op == "=":
        raise GateError(f"{expr!r}: use '==' to compare")
    if not rest:
        raise GateError(f"{expr!r}: expected a value after {op!r}")
    if rest[0] == ("punct", "["):
        if rest[-1] != ("punct", "]"):
            raise GateError(f"{expr!r}: a list must end with ']'")
        items, expect_value = [], True
        for kind, text in rest[1:-1]:
            if expect_value:
                items.append(_scalar(kind, text))
            elif (kind, text) != ("punct", ","):
                raise GateError(f"{expr!r}: expected ',' between list items, got {text!r}")
            expect_value = not expect_value
        value: Any = items
    elif len(rest) == 1:
        value = _scalar(*rest[0])
    else:
        raise GateError(f"{expr!r}: unexpected {' '.join(t for _, t in rest[1:])!r} after the value")
    return Gate(expr.strip(), metric, op, value)


# ---- checking ------------------------------------------------------------------------

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_gate(gate: Gate, ops: list[str], registered: list[str] | None = None) -> None:
    """Raise :class:`GateError` when the metric is unknown, needs an operator the recipe lacks
    (``ops``: the recipe's operator names), or cannot be compared with the value."""
    info = metric_info(gate.metric)
    if info.needs and not set(info.needs) & set(ops):
        raise GateError(f"{gate.metric} needs a {' or '.join(info.needs)} step, and the recipe has none")
    if gate.metric.startswith(DROPPED):
        target = gate.metric[len(DROPPED):]
        if target in (registered or []) and target not in ops:
            raise GateError(f"{gate.metric}: no step runs operator {target!r}")
    v = gate.value
    if gate.op in ("in", "not in"):
        if not isinstance(v, list):
            raise GateError(f"{gate.op!r} needs a list, e.g. {gate.metric} {gate.op} [a, b]")
        if info.kind == "number" and not all(_is_number(x) for x in v):
            raise GateError(f"{gate.metric} is a number; its list must hold numbers")
        return
    if info.kind == "set":
        if gate.op not in ("==", "!="):
            raise GateError(f"{gate.metric} is a set of values; use in, not in, == or !=")
        if isinstance(v, list) and gate.op == "!=":
            raise GateError(f"{gate.metric} != takes one value; use 'not in' for a list")
        return
    if not _is_number(v):
        raise GateError(f"{gate.metric} is a number; compare it with a number, got {_show(v)}")


def validate_gates(exprs: list[Any], ops: list[str],
                   registered: list[str] | None = None) -> tuple[list[Gate], list[str]]:
    """Parse and check every gate; return the gates and located errors (``gates[1]: ...``)."""
    gates, errors = [], []
    for i, expr in enumerate(exprs):
        try:
            gate = parse_gate(expr)
            check_gate(gate, ops, registered)
            gates.append(gate)
        except GateError as exc:
            errors.append(f"gates[{i}]: {exc}")
    return gates, errors


def compare(gate: Gate, measured: Any) -> bool:
    """Whether ``measured`` (a number, or a list of values for a set metric) passes ``gate``."""
    v, op = gate.value, gate.op
    if metric_info(gate.metric).kind == "set":
        have = set(measured)
        want = set(v) if isinstance(v, list) else {v}
        if op == "in":
            return have <= want
        if op == "not in":
            return not (have & want)
        if op == "==":
            return have == want
        return v not in have  # "!="
    if measured is None:
        return False
    if op == "in":
        return measured in v
    if op == "not in":
        return measured not in v
    return {"==": measured == v, "!=": measured != v, "<=": measured <= v, ">=": measured >= v,
            "<": measured < v, ">": measured > v}[op]
