from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.audit.gates import METRICS, Gate, GateError, check_gate, compare, parse_gate, validate_gates
from gristmill.recipe import RecipeError, load_recipe
from tests.conftest import recipe_dict


@pytest.mark.parametrize("expr, metric, op, value", [
    ("pii.remaining == 0", "pii.remaining", "==", 0),
    ("toxicity.fraction <= 0.01", "toxicity.fraction", "<=", 0.01),
    ("rows.out>=100", "rows.out", ">=", 100),
    ("rows.out > 1e3", "rows.out", ">", 1000.0),
    ("dropped.min_words < -2", "dropped.min_words", "<", -2),
    ("license in ['public-domain-us', \"CC-BY-4.0\"]", "license", "in", ["public-domain-us", "CC-BY-4.0"]),
    ("license not in [CC-BY-SA-4.0, null,]", "license", "not in", ["CC-BY-SA-4.0", None]),
    ("license == 'it''s'", None, None, None),
    ("license != 'a \\' b'", "license", "!=", "a ' b"),
    ("rows.in in []", "rows.in", "in", []),
    ("copyright.max_span != 3.5", "copyright.max_span", "!=", 3.5),
])
def test_parse(expr: str, metric: str | None, op: str | None, value: object) -> None:
    if metric is None:
        with pytest.raises(GateError):
            parse_gate(expr)
        return
    gate = parse_gate(expr)
    assert (gate.metric, gate.op, gate.value) == (metric, op, value)
    assert type(gate.value) is type(value)


@pytest.mark.parametrize("expr, message", [
    ("", "a gate is a string"),
    ("pii.remaining = 0", "use '==' to compare"),
    ("pii.remaining 0", "expected an operator"),
    ("pii.remaining ==", "expected a value after '=='"),
    ("0 == pii.remaining", "expected a metric name first"),
    ("license in [a b]", "expected ',' between list items"),
    ("license in [a, b", "a list must end with ']'"),
    ("rows.out >= 1 2", "unexpected '2' after the value"),
    ("rows.out >= __import__('os')", "unexpected"),
    ("license in [a,, b]", "expected a value, got ','"),
])
def test_parse_errors_say_what_is_wrong(expr: str, message: str) -> None:
    with pytest.raises(GateError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_gate(expr)


def test_parse_is_not_eval() -> None:
    # anything that is not metric op literal is refused, and a bare word is only ever a string
    gate = parse_gate("license == os.system")
    assert gate.value == "os.system"
    with pytest.raises(GateError, match="cannot read"):
        parse_gate("rows.out >= (1)")


def test_number_comparisons() -> None:
    g = parse_gate
    assert compare(g("rows.out >= 100"), 100) and not compare(g("rows.out > 100"), 100)
    assert compare(g("toxicity.fraction <= 0.01"), 0.01) and not compare(g("toxicity.fraction < 0.01"), 0.01)
    assert compare(g("pii.remaining == 0"), 0) and compare(g("pii.remaining != 0"), 3)
    assert compare(g("rows.out in [1, 2]"), 2) and compare(g("rows.out not in [1, 2]"), 3)
    assert not compare(g("pii.remaining == 0"), None)  # not measured: fails


def test_license_is_a_set() -> None:
    g = parse_gate
    have = ["CC-BY-4.0", "MIT"]
    assert compare(g("license in [MIT, CC-BY-4.0, Apache-2.0]"), have)
    assert not compare(g("license in [MIT]"), have)
    assert compare(g("license not in [CC-BY-SA-4.0, null]"), have)
    assert not compare(g("license not in [MIT]"), have)
    assert compare(g("license == MIT"), ["MIT"]) and not compare(g("license == MIT"), have)
    assert compare(g("license != CC-BY-SA-4.0"), have) and not compare(g("license != MIT"), have)
    assert not compare(g("license in [MIT]"), [None, "MIT"])  # a row without a license is null
    assert compare(g("license in [MIT, null]"), [None, "MIT"])
    assert compare(g("license in [MIT]"), [])  # no rows, no license outside the list


def test_check_gate_against_the_recipe_steps() -> None:
    ops = ["clean.normalize", "decontam.ngram"]
    registered = ["clean.normalize", "decontam.ngram", "dedup.exact", "toxicity.score"]
    check_gate(parse_gate("contamination.count == 0"), ops, registered)
    check_gate(parse_gate("dropped.min_words < 10"), ops, registered)  # a rule: not known in advance
    check_gate(parse_gate("dropped.clean.normalize == 0"), ops, registered)
    bad = {
        "pii.remainin == 0": "unknown metric 'pii.remainin'; did you mean pii.remaining",
        "toxicity.fraction <= 0.1": "toxicity.fraction needs a toxicity.score step",
        "dropped.dedup.exact == 0": "no step runs operator 'dedup.exact'",
        "license < 3": "license is a set of values; use in, not in, == or !=",
        "license != [a, b]": "use 'not in' for a list",
        "rows.out >= many": "rows.out is a number; compare it with a number, got 'many'",
        "rows.out in [1, x]": "its list must hold numbers",
        "rows.out in 3": "'in' needs a list",
        "dropped. == 0": "unknown metric",
    }
    for expr, message in bad.items():
        with pytest.raises(GateError) as exc:
            check_gate(parse_gate(expr), ops, registered)
        assert message in str(exc.value), expr


def test_unknown_metric_lists_every_known_name() -> None:
    with pytest.raises(GateError) as exc:
        check_gate(parse_gate("nonsense.metric == 1"), [])
    for name in METRICS:
        assert name in str(exc.value)
    assert "dropped.<rule or operator>" in str(exc.value)


def test_validate_gates_locates_each_error() -> None:
    gates, errors = validate_gates(["rows.out >= 1", "pii.remainin == 0", 3, "license in [MIT]"], [])
    assert [g.metric for g in gates] == ["rows.out", "license"]
    assert errors[0].startswith("gates[1]: unknown metric 'pii.remainin'")
    assert errors[1].startswith("gates[2]: a gate is a string")
    assert isinstance(gates[0], Gate) and gates[0].describe() == "rows.out >= 1"


def test_recipe_validation_reports_gate_errors_with_the_others(docs_file: Path) -> None:
    data = recipe_dict(docs_file, gates=["rows.out >= 10", "pii.remainin == 0", "contamination.count == 0"])
    data["steps"][1]["params"]["min_words"] = -1
    with pytest.raises(RecipeError) as exc:
        load_recipe(data)
    errors = exc.value.errors
    assert "steps[1].params.min_words: must be >= 0" in errors
    assert any(e.startswith("gates[1]: unknown metric 'pii.remainin'; did you mean pii.remaining") for e in errors)
    assert "gates[2]: contamination.count needs a decontam.ngram step, and the recipe has none" in errors


def test_resolved_recipe_keeps_gates_and_card(docs_file: Path) -> None:
    r = load_recipe(recipe_dict(docs_file, gates=["rows.out >= 10"], card={"intended_use": "tests"}))
    resolved = r.resolved()
    assert resolved["gates"] == ["rows.out >= 10"]
    assert resolved["card"] == {"intended_use": "tests", "out_of_scope_use": None, "limitations": []}
    with pytest.raises(RecipeError, match=r"card\.intended_us: unknown key"):
        load_recipe(recipe_dict(docs_file, card={"intended_us": "x"}))
