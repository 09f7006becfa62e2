"""The audit's catalogue is built from the operators: core metrics plus every registered operator's audit section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from gristmill import registry
from gristmill.audit.catalogue import CatalogueError, audit_prefixes, contributions, operator_metrics
from gristmill.audit.columns import OUTPUT, audit_output, floats, worst_rows
from gristmill.audit.gates import CORE_METRICS, METRICS, catalogue, check_gate, parse_gate, validate_gates
from gristmill.audit.metric import AuditMetric, AuditSection, CardText, Measure
from gristmill.ops.base import Annotator, Operator, Params
from gristmill.pipeline.run_reader import RunReader
from gristmill.records import column_list
from gristmill.runner import run_recipe

FLAG = "canary.flag"


def _measure(run: RunReader, name: str) -> Measure:
    if run.last_step(CanaryFlag.name) is None:
        return Measure(None, note="no canary.flag step ran")
    out = audit_output(run)
    flagged = floats(out, FLAG) > 0
    return Measure(int(flagged.sum()), worst_rows(out, flagged, np.ones(out.num_rows), [OUTPUT] * out.num_rows))


def _card(summary: dict[str, Any] | None, run: RunReader) -> CardText:
    if not summary:
        return None, ["Not checked for canaries."]
    return f"Canary rows in the output: {summary.get('canary.rows')}.", []


CANARY_AUDIT = AuditSection(
    "canary", metrics=(AuditMetric("canary.rows", "output rows whose text mentions a canary", _measure),),
    figures=lambda run: {"flag_column": FLAG}, order=90, card_title="Canaries", card=_card,
    card_empty="No canary check ran.")


class CanaryFlag(Annotator):
    """Flags rows whose text mentions a canary (a test operator contributing an audit metric)."""

    name = "canary.flag"

    class Params(Params):
        column: str = "text"

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [FLAG]

    def annotate(self, batch: pa.Table) -> dict[str, pa.Array]:
        return {FLAG: pa.array([("canary" in (t or "")) for t in column_list(batch, self.params.column)])}

    @classmethod
    def audit_section(cls) -> AuditSection:
        return CANARY_AUDIT


@pytest.fixture
def canary_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN, CanaryFlag.name, f"{__name__}:CanaryFlag")


# What the audit measured before operators contributed their metrics (issue 17): the same names, the same order.
BEFORE = ["rows.in", "rows.out", "rows.dropped", "quarantine.count", "contamination.count", "contamination.remaining",
          "pii.remaining", "pii.rows", "toxicity.fraction", "toxicity.count", "copyright.count", "copyright.remaining",
          "copyright.max_span", "license"]
# The bias gate metrics (issue 16) come after toxicity's, in registration order.
BIAS = ["bias.gender.female_share", "bias.gender.occupation_skew",
        *(f"bias.{axis}.representation_ratio" for axis in ("gender", "race_ethnicity", "religion", "age", "nationality",
                                                           "disability", "sexual_orientation"))]


def in_order(part: list[str], whole: list[str]) -> bool:
    """Whether ``part`` appears in ``whole`` in the same order (other names may come between)."""
    rest = iter(whole)
    return all(name in rest for name in part)


def test_the_catalogue_is_the_core_metrics_and_the_registered_operators() -> None:
    names = list(catalogue())
    assert names == list(METRICS)
    # what the audit measured before keeps its order; later operators' metrics (bias, review) slot in by registration
    assert in_order(BEFORE, names) and in_order(BIAS, names) and names.index(BIAS[0]) > names.index("toxicity.count")
    ops = operator_metrics()
    assert list(catalogue()) == [*list(CORE_METRICS)[:-1], *ops, "license"]
    for name, (metric, owners) in ops.items():
        assert METRICS[name].needs == owners and METRICS[name].doc == metric.doc
        assert all(registry.get(op).audit_section() is not None for op in owners)
    assert METRICS["pii.remaining"].needs == ("pii.detect", "pii.redact")
    assert METRICS["contamination.count"].needs == ("decontam.ngram",)
    assert {"pii.", "toxicity.", "bias.", "decontam.", "copyright."} <= set(audit_prefixes())


def test_every_registered_operators_metrics_are_unique_named_after_its_section_and_documented() -> None:
    seen: dict[str, AuditSection] = {}
    for name in registry.registered():
        cls = registry.get(name)
        section = cls.audit_section()
        if section is None:
            continue
        assert section.card_title and section.card is not None and section.card_empty, name
        for m in section.metrics:
            assert m.name not in CORE_METRICS and not m.name.startswith("dropped."), m.name
            assert seen.setdefault(m.name, section) is section, f"{m.name} contributed twice"
            assert m.name.startswith(section.name + "."), m.name
            assert len(m.doc) > 20 and m.kind in ("number", "set"), m.name
    assert list(seen) == list(operator_metrics())
    assert Operator.audit_section() is None


def test_two_operators_contributing_one_metric_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    clash = AuditSection("toxicity2", metrics=(AuditMetric("toxicity.count", "a second toxicity.count", _measure),))

    class Clash(CanaryFlag):
        @classmethod
        def audit_section(cls) -> AuditSection:
            return clash

    monkeypatch.setitem(registry.BUILTIN, CanaryFlag.name, f"{__name__}:CanaryFlag")
    monkeypatch.setattr(CanaryFlag, "audit_section", Clash.audit_section)
    with pytest.raises(CatalogueError, match="'toxicity.count' is contributed twice"):
        contributions()


def test_a_registered_operators_metric_is_in_the_catalogue_and_gates_are_checked_against_it(
        canary_registered: None) -> None:
    assert METRICS["canary.rows"].needs == (CanaryFlag.name,)
    assert list(catalogue())[-2:] == ["canary.rows", "license"]
    check_gate(parse_gate("canary.rows == 0"), [CanaryFlag.name])
    errors = validate_gates(["canary.rows == 0", "canary.rowz == 0"], ["clean.normalize"])[1]
    assert errors[0] == "gates[0]: canary.rows needs a canary.flag step, and the recipe has none"
    assert errors[1].startswith("gates[1]: unknown metric 'canary.rowz'; did you mean canary.rows")
    assert validate_gates(["canary.rows == many"], [CanaryFlag.name])[1] == [
        "gates[0]: canary.rows is a number; compare it with a number, got 'many'"]
    assert "canary." in audit_prefixes()


def test_a_gate_on_a_registered_operators_metric_works_end_to_end(canary_registered: None, tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "plain words here"}, {"id": "b", "text": "a canary sings"}, {"id": "c", "text": "more"}]
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    recipe = {"name": "canaries", "input": {"path": str(data), "format": "jsonl"}, "steps": [{"op": CanaryFlag.name}],
              "gates": ["canary.rows == 0", "rows.out == 3"], "output": {"format": "jsonl"},
              "executor": {"workers": 1}}
    s = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False)
    audit = json.loads((s.run_dir / "audit.json").read_text(encoding="utf-8"))
    gate = audit["gates"][0]
    assert (gate["measured"], gate["passed"]) == (1, False) and audit["gates"][1]["passed"] is True
    assert [w["id"] for w in gate["worst"]] == ["b"] and gate["worst"][0]["text"] == "a canary sings"
    assert audit["metrics"]["canary.rows"] == {"value": 1}
    summary = audit["summaries"]["canary"]
    assert summary["canary.rows"] == 1 and summary["flag_column"] == FLAG
    assert summary["columns"][FLAG]["true"] == 1 and summary["steps"][0]["op"] == CanaryFlag.name
    card = (s.run_dir / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert "## Canaries\n\nCanary rows in the output: 1." in card
    assert "| `canary.rows == 0` | 1 | **FAIL** |" in card
    html = (s.run_dir / "report.html").read_text(encoding="utf-8")
    assert "<td>canary.rows == 0</td><td>1</td><td>FAIL</td>" in html
