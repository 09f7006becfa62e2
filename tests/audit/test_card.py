from __future__ import annotations

import json
import re
from pathlib import Path

from gristmill.audit import build_audit, build_card, write_audit, write_card
from gristmill.audit.card import KNOWN_SOURCES, known_source
from gristmill.report import build_report
from tests.audit.conftest import SHARED, fake_run

WNUT = "/data/shared/wnut17/emerging.test.annotated"
CROWS = "/data/shared/crows_pairs_anonymized.csv"


def _section(card: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", card, re.S | re.M)
    assert m, f"section {title} missing"
    return m.group(1)


def test_known_sources_match_the_shared_data_readme() -> None:
    readme = (SHARED / "README.md").read_text(encoding="utf-8")
    for name, known in KNOWN_SOURCES.items():
        assert name in readme, name
        assert known.license.split(" (")[0].replace(" ", "").lower()[:5] in readme.replace(" ", "").lower()
    assert known_source("/x/y/wnut17train.conll").license == "CC BY 4.0"
    assert known_source("crows_pairs_anonymized.csv").share_alike
    assert known_source("notes.txt") is None and known_source(None) is None


def test_card_lists_sources_with_licenses_and_the_attribution_cc_by_data_needs(tmp_path: Path) -> None:
    output = ([{"id": f"w{i}", "source": WNUT, "license": None} for i in range(3)]
              + [{"id": f"c{i}", "source": CROWS, "license": "CC BY-SA 4.0"} for i in range(2)]
              + [{"id": "own", "source": "/home/me/notes.jsonl", "license": None}])
    run = fake_run(tmp_path / "r", [{"op": "filter.length"}], output)
    card = build_card(run, build_audit(run))
    sources = _section(card, "Sources and licenses")
    assert "| emerging.test.annotated | CC BY 4.0 (known source; not set on the records) | 3 |" in sources
    assert "| crows_pairs_anonymized.csv | CC BY-SA 4.0 | 2 |" in sources
    assert "Derczynski, L." in sources and "Nangia, N." in sources
    assert "same license" in sources
    limits = _section(card, "Known limitations")
    assert "1 output rows carry no license and come from no known source" in limits


def test_card_sections_from_steps_pii_toxicity_bias_gates_and_recipe(tmp_path: Path) -> None:
    output = [{"id": "a", "source": "/x/in.jsonl", "license": "MIT", "pii.spans": [{"type": "DATE_TIME"}],
               "pii.count": 1, "pii.redacted": 2, "toxicity.score": 0.2, "bias.gender": ["female", "male"],
               "bias.terms": 2},
              {"id": "b", "source": "/x/in.jsonl", "license": "MIT", "pii.spans": [], "pii.count": 0,
               "pii.redacted": 0, "toxicity.score": 0.95, "bias.gender": ["female"], "bias.terms": 1}]
    redact = {"mode": "pseudonym", "salt": "s3cr3t", "types": ["EMAIL_ADDRESS", "PERSON"]}
    steps = [{"op": "pii.detect"}, {"op": "pii.redact", "params": redact},
             {"op": "toxicity.score", "params": {"max_score": 0.9}}, {"op": "bias.audit"}]
    rules = {"toxicity.score": [{"name": "toxicity", "column": "toxicity.score", "min": None, "max": 0.9}]}
    rejected = {"02-toxicity.score": [{"id": "z", "text": "bad", "_reason": "toxicity: 0.99 > 0.9"}]}
    run = fake_run(tmp_path / "r", steps, output, rejected=rejected, rules=rules,
                   gates=["pii.remaining == 0", "toxicity.fraction <= 0.1"],
                   card={"intended_use": "Teaching examples.", "out_of_scope_use": "Anything else.",
                         "limitations": ["Small."]})
    (run / "bias").mkdir()
    (run / "bias" / "cooccurrence.csv").write_text("a,b\n", encoding="utf-8")
    write_audit(run)
    card = (run / "DATASET_CARD.md").read_text(encoding="utf-8")
    steps_md = _section(card, "Processing steps")
    assert "| 02-toxicity.score | filter |" in steps_md and "toxicity 1" in steps_md and "max_score=0.9" in steps_md
    pii = _section(card, "Personal information")
    assert "`pii.redact` (step 1): mode=\"pseudonym\", salt=\"***\"" in pii and "Redaction mode: pseudonym." in pii
    assert "s3cr3t" not in card and "s3cr3t" not in (run / "audit.json").read_text(encoding="utf-8")
    assert "remaining in the output: **0** in 0 rows" in pii and "types counted: EMAIL_ADDRESS, PERSON" in pii
    assert "Spans redacted: 2." in pii and "by type: DATE_TIME 1" in pii
    tox = _section(card, "Toxicity")
    assert "above 0.9: **0.5** (1 rows)" in tox and "toxicity 1" in tox
    bias = _section(card, "Bias")
    assert "`bias.gender`" in bias and "female 2, male 1" in bias and "`bias/cooccurrence.csv`" in bias
    gates = _section(card, "Audit gates")
    assert "| `pii.remaining == 0` | 0 | pass |" in gates and "| `toxicity.fraction <= 0.1` | 0.5 | **FAIL** |" in gates
    assert "- Small." in _section(card, "Known limitations")
    use = _section(card, "Intended use")
    assert "Teaching examples." in use and "Out of scope: Anything else." in use


def test_card_without_checks_says_what_was_not_checked(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "r", [{"op": "filter.length"}], [{"id": "a", "source": "s", "license": "MIT"}])
    card = build_card(run)  # no audit.json yet: built on the fly
    assert "No PII step ran" in card and "No toxicity step ran." in card and "No bias step ran." in card
    limits = _section(card, "Known limitations")
    for text in ("personal information", "toxic", "demographic", "benchmarks", "verbatim copying"):
        assert text in limits
    assert "research and development" in _section(card, "Intended use")
    assert "The recipe sets no gates." in card


def test_card_is_a_pure_function_of_the_run_directory(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "r", [{"op": "filter.length"}], [{"id": "a", "source": WNUT}])
    write_audit(run)
    first = (run / "DATASET_CARD.md").read_text(encoding="utf-8")
    write_card(run)
    assert (run / "DATASET_CARD.md").read_text(encoding="utf-8") == first


def test_card_opens_with_hub_yaml_metadata_the_recipe_can_override(tmp_path: Path) -> None:
    from huggingface_hub import DatasetCard

    output = ([{"id": f"w{i}", "source": WNUT, "license": "CC BY 4.0", "lang.code": "en"} for i in range(3)]
              + [{"id": "g", "source": "/home/me/seed.jsonl", "license": "Apache-2.0", "lang.code": "en"}])
    run = fake_run(tmp_path / "r", [{"op": "generate.self_instruct"}, {"op": "lang.identify"}], output,
                   card={"intended_use": "Tests.", "task_categories": ["question-answering"], "license": None})
    card = build_card(run, build_audit(run))
    assert card.startswith("---\n") and "\n---\n\n# Dataset card: r\n" in card  # YAML, then the datasheet
    meta = DatasetCard(card).data.to_dict()
    assert meta["license"] == ["apache-2.0", "cc-by-4.0"] and meta["language"] == ["en"]
    assert meta["task_categories"] == ["question-answering"]  # from the recipe's card: section
    assert meta["tags"] == ["gristmill", "synthetic"] and meta["language_creators"] == ["machine-generated"]
    assert meta["source_datasets"] == ["original", "https://github.com/leondz/emerging_entities_17"]  # + known
    assert meta["gristmill"]["ops"] == ["generate.self_instruct@1", "lang.identify@1"]
    assert "Tests." in _section(card, "Intended use")


def test_report_audit_section_shows_gates_metrics_and_worst_records(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    output = [{"id": "a", "text": evil, "pii.spans": [{"type": "PERSON"}], "pii.count": 1}]
    run = fake_run(tmp_path / "r", [{"op": "pii.detect"}], output, gates=["pii.remaining == 0", "rows.out >= 1"])
    html = build_report(run)
    assert "audit.json is missing" in html
    write_audit(run)
    html = build_report(run)
    section = re.search(r'<section id="audit">(.*?)</section>', html, re.S).group(1)
    assert "<strong>1 of 2 gates failed</strong>" in section
    assert "<td>pii.remaining == 0</td><td>1</td><td>FAIL</td>" in section
    assert "<td>rows.out &gt;= 1</td><td>1</td><td>pass</td>" in section
    assert "Worst records for pii.remaining == 0" in section
    assert evil not in html and "&lt;script&gt;" in section
    assert "<td>pii.rows</td><td>1</td>" in section
    assert 'href="DATASET_CARD.md"' in section


def test_bias_run_summaries_are_rendered_generically(tmp_path: Path) -> None:
    summary = {"rows": 10, "axes": {"gender": {"mentions": 9, "groups": [{"group": "male", "share": 0.75},
                                                                         {"group": "female", "share": 0.25}]},
                                    "age": {"mentions": 1, "groups": [{"group": "old", "share": 1.0}]}},
               "gender": {"female_share": 0.25},
               "occupations": [{"occupation": f"job{i}", "segments": 20 - i} for i in range(12)],
               "top_words": {"gender:male": [["brave", 1.5, 7]]}}
    run = fake_run(tmp_path / "r", [{"op": "bias.audit"}], [{"id": "a", "bias.groups": ["gender:male"]}])
    (run / "summaries").mkdir()
    (run / "summaries" / "00-bias.audit.json").write_text(json.dumps(summary), encoding="utf-8")
    bias = _section(build_card(run), "Bias")
    assert "`summaries/00-bias.audit.json`" in bias and "- totals: rows 10" in bias
    assert "| gender | 9 | male 0.75; female 0.25 |" in bias and "| age | 1 | old 1 |" in bias
    assert "- gender: female_share 0.25" in bias
    assert "occupations (first 8 of 12)" in bias and "| job7 | 13 |" in bias and "job8" not in bias
    assert "`bias.groups` | gender:male 1" in bias


def _with_output_stats(run: Path, **output) -> None:
    stats = json.loads((run / "stats.json").read_text(encoding="utf-8"))
    stats["output"].update(output)
    stats["input"].update(quarantined=2, quarantined_by_reason={"field type": 2})
    (run / "stats.json").write_text(json.dumps(stats), encoding="utf-8")


def test_card_names_columns_stored_as_json_text_with_their_reasons(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "r", [{"op": "filter.length"}], [{"id": "a", "source": "/x/in.jsonl", "license": "MIT"}])
    assert "JSON text" not in build_card(run, build_audit(run))
    _with_output_stats(run, json_columns={"meta": "int vs string in different shards", "vals": "[]: int vs string"})
    card = build_card(run, build_audit(run))
    summary = _section(card, "Summary")
    assert ("Columns stored as JSON text, their values fitting no one column type: "
            "`meta` (int vs string in different shards); `vals` ([]: int vs string); "
            "this output holds their values as they were in the input.") in summary
    limits = _section(card, "Known limitations")
    assert "JSON text" not in limits
    assert "2 input records could not be read or had a field of another type than its column" in limits
    assert "quarantined as unreadable or of the wrong field type" in _section(card, "Processing steps")
    _with_output_stats(run, format="parquet")
    card = build_card(run, build_audit(run))
    assert ("each value in this parquet output is its JSON text (`json.loads` gives it back; the Parquet field "
            "metadata `gristmill.json` marks such columns).") in _section(card, "Summary")
    assert "2 column(s) are stored as JSON text in this parquet output" in _section(card, "Known limitations")
