"""The bias gate metrics: values by hand from the output's bias.audit columns, gates that fail with the rows
to blame, and the figures before and after a bias.rebalance step in audit.json, the card and the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gristmill.audit import build_audit, build_card
from gristmill.audit.gates import METRICS, validate_gates
from gristmill.ops.bias.audit_metrics import AXES, FEMALE_SHARE, OCCUPATION_SKEW, ratio_metric
from gristmill.runner import run_recipe
from tests.audit.conftest import fake_run
from tests.ops.bias.test_rebalance import TEXTS

# Three output rows as bias.audit writes them: female terms 2 + 4 = 6, male 6 + 2 = 8; christian 3, jewish 1;
# segments with female terms 5, with male terms 6; nurse beside female terms 3 times, beside male terms once.
ROWS = [
    {"id": "a", "bias.groups": ["gender:female", "gender:male", "religion:christian"], "bias.group_mentions": [2, 6, 3],
     "bias.female_terms": 2, "bias.male_terms": 6, "bias.female_segments": 2, "bias.male_segments": 4,
     "bias.occupations_female": ["nurse"], "bias.occupations_male": ["doctor", "doctor", "nurse"]},
    {"id": "b", "bias.groups": ["gender:female", "religion:jewish"], "bias.group_mentions": [4, 1],
     "bias.female_terms": 4, "bias.male_terms": 0, "bias.female_segments": 3, "bias.male_segments": 0,
     "bias.occupations_female": ["nurse", "nurse"], "bias.occupations_male": []},
    {"id": "c", "bias.groups": ["gender:male"], "bias.group_mentions": [2], "bias.female_terms": 0,
     "bias.male_terms": 2, "bias.female_segments": 0, "bias.male_segments": 2, "bias.occupations_female": [],
     "bias.occupations_male": ["doctor"]},
]
GATES = ["bias.gender.female_share >= 0.45", "bias.gender.female_share <= 0.3", "bias.gender.female_share >= 0.4",
         "bias.religion.representation_ratio >= 0.5", "bias.age.representation_ratio >= 0.5",
         "bias.gender.occupation_skew <= 1.0", "bias.gender.representation_ratio >= 0.7"]


def test_the_metrics_are_in_the_catalogue_for_every_bias_step() -> None:
    names = [FEMALE_SHARE, OCCUPATION_SKEW, *(ratio_metric(a) for a in AXES)]
    assert all(n in METRICS for n in names) and len(AXES) == 7
    assert METRICS[FEMALE_SHARE].needs == ("bias.audit", "bias.counterfactual", "bias.rebalance")
    assert validate_gates(["bias.gender.female_share >= 0.4"], ["bias.rebalance"])[1] == []
    assert validate_gates(["bias.gender.female_share >= 0.4"], ["clean.normalize"])[1] == [
        "gates[0]: bias.gender.female_share needs a bias.audit or bias.counterfactual or bias.rebalance step, "
        "and the recipe has none"]


def test_values_by_hand_and_failing_gates_name_the_rows_to_blame(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "r", [{"op": "bias.audit", "params": {"min_count": 2}}], ROWS, gates=GATES)
    audit = build_audit(run)
    m = {k: v["value"] for k, v in audit["metrics"].items()}
    assert m[FEMALE_SHARE] == round(6 / 14, 4) and m[ratio_metric("gender")] == 0.75
    assert m[ratio_metric("religion")] == round(1 / 3, 4) and m[ratio_metric("age")] is None
    # nurse: f 3, m 1 (>= min_count 2); doctor: no female segment, so no skew
    assert m[OCCUPATION_SKEW] == round(math.log2((3 / 5) / (1 / 6)), 4)
    assert audit["metrics"][OCCUPATION_SKEW]["note"] == "nurse +1.85 (f 3, m 1)"
    gates = {g["expr"]: g for g in audit["gates"]}
    assert [g["passed"] for g in audit["gates"]] == [False, False, True, False, False, False, True]
    too_low, too_high = gates[GATES[0]], gates[GATES[1]]
    assert [(w["id"], w["value"], w["bias.male_terms"]) for w in too_low["worst"]] == [("a", 4, 6), ("c", 2, 2)]
    assert [(w["id"], w["value"]) for w in too_high["worst"]] == [("b", 4)]
    assert [(w["id"], w["group"]) for w in gates[GATES[3]]["worst"]] == [("a", "christian")]
    assert gates[GATES[4]]["measured"] is None and gates[GATES[4]]["note"] == "fewer than two groups mentioned"
    assert [(w["id"], w["value"], w["occupation"]) for w in gates[GATES[5]]["worst"]] == [("b", 2, "nurse"),
                                                                                          ("a", 1, "nurse")]
    card = build_card(run)
    assert "| `bias.gender.female_share` | 0.4286 |" in card and "| `bias.age.representation_ratio` |" not in card


def test_without_a_bias_audit_step_a_gate_fails_with_a_note(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "r", [{"op": "bias.counterfactual"}], [{"id": "a", "text": "x"}],
                   gates=["bias.gender.female_share >= 0.4"])
    gate = build_audit(run)["gates"][0]
    assert gate["passed"] is False and gate["measured"] is None and gate["note"] == "no bias.audit step ran"


def _write(tmp_path: Path) -> Path:
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i:02d}", "text": t}) + "\n" for i, t in enumerate(TEXTS) if t),
                    encoding="utf-8")
    return data


@pytest.mark.parametrize("rebalance", [False, True])
def test_a_real_run_fails_the_gate_and_passes_it_after_rebalancing(tmp_path: Path, rebalance: bool) -> None:
    steps: list[dict] = [{"op": "bias.audit"}]
    if rebalance:
        steps.append({"op": "bias.rebalance", "params": {"tolerance": 0.02}})
    recipe = {"name": "g", "input": {"path": str(_write(tmp_path)), "format": "jsonl", "shard_rows": 5},
              "steps": steps, "gates": ["bias.gender.female_share >= 0.48"], "output": {"format": "jsonl"},
              "executor": {"workers": 1}}
    s = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False)
    gate = s.audit["gates"][0]
    card = (s.run_dir / "DATASET_CARD.md").read_text(encoding="utf-8")
    html = (s.run_dir / "report.html").read_text(encoding="utf-8")
    if not rebalance:
        assert gate["passed"] is False and gate["measured"] == 0.3 and gate["note"] == "12 female / 28 male terms"
        # the 4 rows with 4 male terms each first, then one with 1 (five shown)
        assert [(w["id"], w["value"]) for w in gate["worst"]] == [("d00", 4), ("d01", 4), ("d02", 4), ("d03", 4),
                                                                  ("d04", 1)]
        assert all(w["text"].startswith("He told his brother") for w in gate["worst"][:4])
        assert "Before and after rebalancing" not in card and 'id="bias-rebalance"' not in html
        return
    assert gate["passed"] is True and 0.5 <= gate["measured"] <= 0.52
    figs = s.audit["summaries"]["bias"]["rebalance"]
    assert figs["step"] == "01-bias.rebalance" and figs["before"][FEMALE_SHARE] == 0.3
    assert figs["after"][FEMALE_SHARE] == gate["measured"] and figs["changed"]["reached"] is True
    dropped = figs["changed"]["dropped"]["rows"]
    assert dropped == s.stats["steps"][1]["dropped"]["rebalance"] > 0
    assert "### Before and after rebalancing (`bias.rebalance`, step 1, strategy downsample)" in card
    assert f"| `bias.gender.female_share` | 0.3 | {gate['measured']:.4g} |" in card
    assert f"Rows dropped {dropped}" in card and "Rebalancing moves term counts" in card
    assert 'id="bias-rebalance"' in html and "female share of gender terms: 30.0% →" in html
