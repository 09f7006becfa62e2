from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from gristmill.audit import build_audit, failure_message
from gristmill.cli import app
from gristmill.ops.text.ngrams import words
from gristmill.runner import run_recipe
from tests.audit.conftest import REPO, fake_run

PASSAGE = ("It is a truth universally acknowledged that a single man in possession of a good fortune must be in "
           "want of a wife However little known the feelings or views of such a man may be on his first entering "
           "a neighbourhood this truth is so well fixed in the minds of the surrounding families")
CANARY = "GRISTMILL CANARY 0b1d the answer to the held out question is the ferry timetable"


def corpus(tmp_path: Path) -> Path:
    """Ten plain records (two carry their own license), one short, one duplicate, a canary and a copy."""
    topics = "river bread lamp garden violin harbor clock meadow kettle lantern".split()
    rows = [{"id": f"p{i}", "text": f"a short note about the {t} written on day {i} of the long quiet summer"}
            for i, t in enumerate(topics)]
    rows[0]["license"] = "CC-BY-4.0"
    rows[1]["license"] = "MIT"
    rows += [{"id": "tiny", "text": "too short"},
             {"id": "dup", "text": rows[2]["text"]},
             {"id": "leak", "text": f"notes pasted by mistake {CANARY} please remove before release"},
             {"id": "copy", "text": f"my favourite opening line goes like this {PASSAGE} and I love it"}]
    p = tmp_path / "docs.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return p


def recipe(path: Path, gates: list[str], copyright_drop: bool = False, output: str = "jsonl") -> dict:
    return {
        "name": "audit",
        "description": "Audit test corpus.",
        "input": {"path": str(path), "format": "jsonl", "license": "Apache-2.0", "shard_rows": 5},
        "steps": [
            {"op": "clean.normalize"},
            {"op": "filter.length", "params": {"min_words": 5}},
            {"op": "dedup.exact"},
            {"op": "decontam.ngram", "params": {"n": 8, "benchmarks": [{"name": "canary", "items": [CANARY]}]}},
            {"op": "copyright.overlap", "params": {"references": [{"name": "novel", "items": [PASSAGE]}],
                                                   "max_longest_span": 20, "drop": copyright_drop}},
        ],
        "gates": gates,
        "card": {"intended_use": "Testing the audit.", "limitations": ["Made-up records."]},
        "output": {"format": output},
        "executor": {"workers": 1},
    }


PASSING = ["rows.out >= 10", "contamination.remaining == 0", "contamination.count == 1",
           "license in ['Apache-2.0', 'MIT', 'CC-BY-4.0']", "dropped.min_words == 1", "dropped.dedup.exact == 1",
           "copyright.max_span >= 40"]


def test_a_run_writes_audit_json_with_metrics_gates_and_summaries(tmp_path: Path) -> None:
    s = run_recipe(recipe(corpus(tmp_path), PASSING), runs_dir=tmp_path / "runs", progress=False)
    audit = json.loads((s.run_dir / "audit.json").read_text(encoding="utf-8"))
    assert audit == s.audit
    assert audit["passed"] is True
    assert [g["expr"] for g in audit["gates"]] == PASSING and all(g["passed"] for g in audit["gates"])
    m = {k: v["value"] for k, v in audit["metrics"].items()}
    steps = s.stats["steps"]
    assert m["rows.in"] == s.stats["input"]["rows"] == 14
    assert m["rows.out"] == s.stats["output"]["rows"] == 11
    assert m["rows.dropped"] == 3 and m["dropped.min_words"] == 1 and m["dropped.duplicate"] == 1
    assert m["contamination.count"] == 1 and m["contamination.remaining"] == 0
    assert m["copyright.count"] == m["copyright.remaining"] == 1
    assert m["copyright.max_span"] == len(words(PASSAGE))
    assert m["license"] == ["Apache-2.0", "CC-BY-4.0", "MIT"]
    assert sum(st["dropped"].get("contamination", 0) for st in steps) == 1
    worst = audit["worst"]["copyright.remaining"][0]
    assert worst["id"] == "copy" and worst["copyright.source"] == "novel:0"
    assert worst["text"].startswith("my favourite opening line")
    leak = audit["worst"]["contamination.count"][0]
    assert (leak["id"], leak["where"], leak["decontam.benchmark"]) == ("leak", "03-decontam.ngram", "canary")
    assert leak["text"].startswith("notes pasted by mistake")
    assert audit["summaries"]["copyright"]["matched_rows_by_document"] == {"novel:0": 1}
    assert audit["summaries"]["contamination"]["matched_rows_by_benchmark"] == {"canary": 1}
    assert sum(x["rows"] for x in audit["sources"]) == 11
    assert (s.run_dir / "DATASET_CARD.md").is_file()
    html = (s.run_dir / "report.html").read_text(encoding="utf-8")
    assert '<section id="audit">' in html and "All 7 gates passed." in html


def test_a_failed_gate_still_writes_everything_and_names_gate_value_and_worst_records(tmp_path: Path) -> None:
    gates = ["rows.out >= 10", "copyright.remaining == 0", "license in ['Apache-2.0']", "rows.out >= 1000"]
    s = run_recipe(recipe(corpus(tmp_path), gates), runs_dir=tmp_path / "runs", progress=False)
    for name in ("data/data.jsonl", "stats.json", "report.html", "audit.json", "DATASET_CARD.md", "recipe.yaml"):
        assert (s.run_dir / name).is_file(), name
    assert s.audit["passed"] is False
    assert [g["passed"] for g in s.audit["gates"]] == [True, False, False, False]
    license_gate = s.audit["gates"][2]
    assert {w["id"]: w["value"] for w in license_gate["worst"]} == {"p0": "CC-BY-4.0", "p1": "MIT"}
    msg = failure_message(s.audit)
    assert msg.splitlines()[0] == "3 of 4 gate(s) failed:"
    assert "copyright.remaining == 0: measured 1" in msg
    assert f"copy ({len(words(PASSAGE))}, copyright.source=novel:0" in msg
    assert "license in ['Apache-2.0']: measured Apache-2.0, CC-BY-4.0, MIT" in msg
    assert "p0 (CC-BY-4.0)" in msg and "rows.out >= 1000: measured 11" in msg
    assert "FAIL" in (s.run_dir / "report.html").read_text(encoding="utf-8")
    assert "**FAIL**" in (s.run_dir / "DATASET_CARD.md").read_text(encoding="utf-8")


def test_cli_exits_3_on_a_failed_gate_and_card_rebuilds_the_card(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(corpus(tmp_path), ["copyright.remaining == 0"])), encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert res.exit_code == 3, res.output
    assert "done" in res.output and "1 of 1 gate(s) failed" in res.output
    assert "copyright.remaining == 0: measured 1" in res.output and "copy (" in res.output
    assert "audit.json" in res.output
    ok = runner.invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "runs"), "-q",
                             "--set", "steps.4.params.drop=true"])
    assert ok.exit_code == 0, ok.output
    card = tmp_path / "runs" / "audit" / "DATASET_CARD.md"
    before = card.read_text(encoding="utf-8")
    card.unlink()
    res = runner.invoke(app, ["card", str(tmp_path / "runs" / "audit")])
    assert res.exit_code == 0 and card.read_text(encoding="utf-8") == before
    assert runner.invoke(app, ["card", str(tmp_path)]).exit_code == 2


def test_an_invalid_gate_stops_the_run_before_any_work(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(corpus(tmp_path), ["pii.remaining == 0", "toxicity.fractoin < 1"])))
    res = CliRunner().invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert res.exit_code == 2
    assert "gates[0]: pii.remaining needs a pii.detect or pii.redact step, and the recipe has none" in res.output
    assert "gates[1]: unknown metric 'toxicity.fractoin'; did you mean toxicity.fraction" in res.output
    assert not (tmp_path / "runs").exists()


def test_source_and_license_survive_every_step_into_the_output(tmp_path: Path) -> None:
    path = corpus(tmp_path)
    for fmt in ("jsonl", "parquet"):
        s = run_recipe(recipe(path, [], output=fmt), runs_dir=tmp_path / "runs", name=fmt, progress=False)
        out = s.outputs[0]
        rows = (pq.read_table(out).to_pylist() if fmt == "parquet"
                else [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()])
        assert len(rows) == 11
        assert {r["source"] for r in rows} == {str(path)}
        licenses = {r["id"]: r["license"] for r in rows}
        assert licenses.pop("p0") == "CC-BY-4.0" and licenses.pop("p1") == "MIT"  # a record's own license wins
        assert set(licenses.values()) == {"Apache-2.0"}  # ReaderOptions.license for the others
        rejected = pq.read_table(s.run_dir / "rejected" / "01-filter.length.parquet").to_pylist()
        assert rejected[0]["source"] == str(path) and rejected[0]["license"] == "Apache-2.0"


def test_chat_output_formats_keep_source_and_license_in_metadata_and_the_audit_sees_them(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    rows = [{"id": f"c{i}", "instruction": f"name a colour number {i}", "output": "blue", "license": "MIT"}
            for i in range(3)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    s = run_recipe({"name": "chat", "input": {"path": str(path), "format": "alpaca"}, "steps": [{"op": "dedup.exact"}],
                    "gates": ["license == MIT"], "output": {"format": "openai"}, "executor": {"workers": 1}},
                   runs_dir=tmp_path / "runs", progress=False)
    (data,) = [p for p in s.outputs if p.suffix == ".jsonl"]
    written = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    assert set(written[0]) == {"id", "messages", "metadata"}  # the openai record's metadata object carries them
    assert written[0]["metadata"]["source"] == str(path) and written[0]["metadata"]["license"] == "MIT"
    assert written[0]["metadata"]["gristmill.ops"] == ["dedup.exact@1"]
    shutil.rmtree(s.run_dir / "cache")  # the audit then reads data/: the metadata gives source and license back
    rebuilt = build_audit(s.run_dir)
    assert rebuilt["output_read_from"] == "data-jsonl"
    assert rebuilt["sources"] == [{"source": str(path), "license": "MIT", "rows": 3}]
    assert s.audit["passed"] and s.audit["sources"] == [{"source": str(path), "license": "MIT", "rows": 3}]


def test_audit_reads_the_output_files_when_the_cache_is_gone(tmp_path: Path) -> None:
    s = run_recipe(recipe(corpus(tmp_path), PASSING), runs_dir=tmp_path / "runs", progress=False)
    shutil.rmtree(s.run_dir / "cache")
    audit = build_audit(s.run_dir)
    assert audit["output_read_from"] == "data-jsonl"
    assert audit["metrics"]["copyright.max_span"]["value"] == len(words(PASSAGE))
    assert audit["metrics"]["license"]["value"] == ["Apache-2.0", "CC-BY-4.0", "MIT"]
    assert audit["passed"] is True


# ---- metric definitions on hand-made run directories -----------------------------------------

def _spans(*types: str) -> list[dict]:
    return [{"type": t, "start": 10 * k, "end": 10 * k + 5} for k, t in enumerate(types)]


def test_pii_remaining_counts_detected_spans_when_nothing_redacts(tmp_path: Path) -> None:
    output = [{"id": "a", "text": "x", "pii.spans": _spans("EMAIL_ADDRESS", "PERSON"), "pii.count": 2},
              {"id": "b", "text": "y", "pii.spans": [], "pii.count": 0},
              {"id": "c", "text": "z", "pii.spans": _spans("PHONE_NUMBER"), "pii.count": 1}]
    run = fake_run(tmp_path / "r", [{"op": "pii.detect"}], output, gates=["pii.remaining == 0"])
    audit = build_audit(run)
    assert audit["metrics"]["pii.remaining"]["value"] == 3 and audit["metrics"]["pii.rows"]["value"] == 2
    gate = audit["gates"][0]
    assert gate["passed"] is False and gate["measured"] == 3
    assert [(w["id"], w["value"], w["types"]) for w in gate["worst"]] == [
        ("a", 2, {"EMAIL_ADDRESS": 1, "PERSON": 1}), ("c", 1, {"PHONE_NUMBER": 1})]
    assert gate["worst"][0]["text"] == "x"
    assert audit["summaries"]["pii"]["columns"]["pii.spans"]["top"] == {"EMAIL_ADDRESS": 1, "PERSON": 1,
                                                                         "PHONE_NUMBER": 1}


def test_pii_remaining_after_redaction_counts_only_the_types_the_recipe_redacts(tmp_path: Path) -> None:
    # pii.redact leaves in pii.spans what it still detects: here a date (kept on purpose) and a name it missed
    rows = [{"id": "a", "pii.spans": _spans("DATE_TIME", "PERSON"), "pii.count": 2, "pii.redacted": 3},
            {"id": "b", "pii.spans": _spans("DATE_TIME"), "pii.count": 1, "pii.redacted": 1}]
    steps = [{"op": "pii.detect", "params": {"types": None}},
             {"op": "pii.redact", "params": {"mode": "tag", "types": ["EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"]}}]
    audit = build_audit(fake_run(tmp_path / "a", steps, rows))
    assert audit["metrics"]["pii.remaining"]["value"] == 1 and audit["metrics"]["pii.rows"]["value"] == 1
    assert audit["worst"]["pii.remaining"][0]["types"] == {"PERSON": 1}
    pii = audit["summaries"]["pii"]
    assert pii["spans_redacted"] == 4 and pii["types_counted"] == ["EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"]
    steps[1]["params"]["types"] = None  # redact every type: the date counts too
    assert build_audit(fake_run(tmp_path / "b", steps, rows))["metrics"]["pii.remaining"]["value"] == 3


def test_pii_remaining_from_the_count_column_without_spans(tmp_path: Path) -> None:
    rows = [{"id": "a", "pii.redacted": 2, "pii.remaining": 1}, {"id": "b", "pii.redacted": 0, "pii.remaining": 0}]
    run = fake_run(tmp_path / "r", [{"op": "pii.redact", "params": {"mode": "hash"}}], rows,
                   gates=["pii.remaining == 0"])
    audit = build_audit(run)
    assert audit["gates"][0]["measured"] == 1 and audit["gates"][0]["worst"][0]["id"] == "a"


def test_toxicity_fraction_uses_the_steps_threshold(tmp_path: Path) -> None:
    rows = [{"id": f"t{i}", "text": str(i), "toxicity.score": s} for i, s in enumerate([0.1, 0.95, 0.5, None])]
    rule = [{"name": "toxicity", "column": "toxicity.score", "min": None, "max": 0.9}]
    audit = build_audit(fake_run(tmp_path / "a", [{"op": "toxicity.score"}], rows, rules={"toxicity.score": rule},
                                 gates=["toxicity.fraction <= 0.2"]))
    assert audit["metrics"]["toxicity.fraction"]["value"] == 0.25
    assert audit["metrics"]["toxicity.count"]["value"] == 1
    assert audit["gates"][0]["passed"] is False and audit["gates"][0]["worst"][0]["id"] == "t1"
    assert audit["summaries"]["toxicity"]["threshold"] == 0.9
    no_rule = build_audit(fake_run(tmp_path / "b", [{"op": "toxicity.score"}], rows))
    assert no_rule["metrics"]["toxicity.count"]["value"] == 1  # the operator's default max_score, 0.9
    assert no_rule["metrics"]["toxicity.fraction"]["note"] == "toxicity.score > 0.9"


def test_dropped_metrics_by_rule_and_by_operator_with_rejected_rows_as_worst(tmp_path: Path) -> None:
    rejected = {"00-filter.length": [{"id": "s1", "text": "a", "_reason": "min_words: 1 < 5"},
                                     {"id": "s2", "text": "b", "_reason": "max_chars: 9 > 8"}],
                "01-dedup.exact": [{"id": "d1", "text": "c", "_reason": "duplicate: of x"}]}
    run = fake_run(tmp_path / "r", [{"op": "filter.length"}, {"op": "dedup.exact"}], [{"id": "x", "text": "c"}],
                   rejected=rejected, gates=["dropped.min_words == 0", "dropped.filter.length <= 1",
                                             "dropped.no_such_rule == 0"])
    audit = build_audit(run)
    g = audit["gates"]
    assert (g[0]["measured"], g[0]["passed"]) == (1, False)
    assert g[0]["worst"] == [{"id": "s1", "value": "min_words: 1 < 5", "where": "00-filter.length", "source": None,
                              "text": "a"}]
    assert (g[1]["measured"], g[1]["passed"]) == (2, False) and [w["id"] for w in g[1]["worst"]] == ["s1", "s2"]
    assert g[2]["passed"] is True and "no step dropped rows under rule 'no_such_rule'" in g[2]["note"]
    assert audit["metrics"]["rows.dropped"]["value"] == 3


def test_a_hand_edited_unparsable_gate_fails_with_its_error(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "r", [{"op": "filter.length"}], [{"id": "x"}], gates=["rows.out >>= 1"])
    audit = build_audit(run)
    assert audit["passed"] is False and "rows.out >>= 1" in failure_message(audit)


@pytest.mark.slow
def test_shipped_recipe_with_a_violated_gate_exits_3_naming_gate_value_and_record(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(REPO / "recipes" / "audit_gate_fails.yaml"),
                                   "--runs-dir", str(tmp_path), "-q"])
    assert res.exit_code == 3, res.output
    assert "1 of 4 gate(s) failed" in res.output
    assert "copyright.remaining == 0: measured 1" in res.output
    assert "audit-quote (62, copyright.source=shakespeare:tinyshakespeare.txt" in res.output
    audit = json.loads((tmp_path / "audit_gate_fails" / "audit.json").read_text(encoding="utf-8"))
    assert audit["metrics"]["contamination.count"]["value"] == 1  # the canary, dropped
    assert audit["metrics"]["license"]["value"] == ["Apache-2.0", "CC-BY-4.0", "MIT"]
    card = (tmp_path / "audit_gate_fails" / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert "presidio-research" in card and "**FAIL**" in card


@pytest.mark.slow
def test_shipped_audit_example_passes_every_gate_and_audits_each_planted_risk(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(REPO / "recipes" / "audit_example.yaml"),
                                   "--runs-dir", str(tmp_path), "-q"])
    assert res.exit_code == 0, res.output
    run = tmp_path / "audit_example"
    audit = json.loads((run / "audit.json").read_text(encoding="utf-8"))
    assert audit["passed"] and len(audit["gates"]) == 6
    m = {k: v["value"] for k, v in audit["metrics"].items()}
    assert m["contamination.count"] == 1 and m["copyright.count"] == 1 and m["dropped.toxicity"] == 1
    assert m["pii.remaining"] == 0 and m["toxicity.fraction"] == 0
    rejected = {p.stem: pq.read_table(p).column("id").to_pylist() for p in (run / "rejected").glob("*.parquet")}
    assert rejected["03-decontam.ngram"] == ["audit-canary"] and rejected["04-copyright.overlap"] == ["audit-quote"]
    assert rejected["05-toxicity.score"] == ["audit-rude"]
    contact = next(json.loads(line) for line in (run / "data" / "data.jsonl").read_text(encoding="utf-8").splitlines()
                   if json.loads(line)["id"] == "audit-contact")
    assert "m.lopez@archive-volunteers.net" not in contact["text"] and "<EMAIL_ADDRESS>" in contact["text"]
    assert audit["summaries"]["pii"]["spans_redacted"] > 700
    card = (run / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert "Redaction mode: tag." in card and "summaries/08-bias.audit.json" in card and "All gates passed." in card
    assert "All 6 gates passed." in (run / "report.html").read_text(encoding="utf-8")
