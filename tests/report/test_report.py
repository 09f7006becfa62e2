"""The HTML report of a (fake) run directory: sections, numbers, escaping, self-containment."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gristmill.report import SECTIONS, build_report, write_report
from gristmill.pipeline.run_reader import scan_quarantine


@pytest.fixture
def report(run_dir: Path) -> str:
    return build_report(run_dir)


def _section(html: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert m, f"section {anchor} missing"
    return m.group(1)


def test_every_section_has_an_anchor_a_heading_and_a_link(report: str) -> None:
    ids = [s.id for s in SECTIONS]
    assert len(ids) == len(set(ids))
    core = ["summary", "funnel", "drops", "samples", "quarantine", "recipe"]
    assert [i for i in ids if i in core] == core  # sections added by later features sit in between
    for s in SECTIONS:
        assert f'<a href="#{s.id}">{s.title}</a>' in report
        assert f"<h2>{s.title}</h2>" in _section(report, s.id)


def test_header_and_summary_show_the_run(report: str) -> None:
    assert "<title>gristmill · tiny</title>" in report
    assert "gristmill run: tiny" in report
    summary = _section(report, "summary")
    for expected in ("recipes/tiny.yaml", "2026-11-26T04:00:00+00:00", "2026-11-26T04:00:12+00:00", "12.30",
                     "recipes/data/sample.jsonl", "<dd>120</dd>", "<dd>3</dd>", "<dd>95</dd>", "train: 86, test: 9"):
        assert expected in summary
    assert '<a href="data/train.jsonl">data/train.jsonl</a>' in summary
    assert '<a href="data/test.jsonl">data/test.jsonl</a>' in summary


def test_funnel_has_a_chart_and_one_row_per_step(report: str) -> None:
    funnel = _section(report, "funnel")
    assert funnel.count("<svg") == 1
    rows = re.findall(r"<tr>(.*?)</tr>", funnel)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    assert [c[0] for c in cells] == ["00-clean.normalize", "01-filter.language", "02-filter.length", "03-dedup.exact"]
    assert cells[2] == ["02-filter.length", "filter", "118", "100", "18", "0.01", "11,800.00", "yes"]
    assert cells[0][-1] == "no"
    # The chart labels the input bar and each step with its rows.
    for text in (">input<", ">120<", ">100<", ">95<"):
        assert text in funnel


def test_drop_reasons_chart_and_table(report: str) -> None:
    drops = _section(report, "drops")
    assert drops.count("<svg") == 1
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td class=\"num\">(.*?)</td><td>(.*?)</td></tr>", drops)
    assert ("02-filter.length", "min_words", "15", "12.7%") in rows
    assert ("02-filter.length", "max_chars", "3", "2.5%") in rows
    assert ("03-dedup.exact", "duplicate", "5", "5.0%") in rows
    assert ("01-filter.language", "language", "2", "1.7%") in rows
    assert not any(r[0] == "00-clean.normalize" for r in rows)


def test_samples_show_up_to_five_rows_per_rule_with_full_reasons(report: str) -> None:
    samples = _section(report, "samples")
    for step in ("01-filter.language", "02-filter.length", "03-dedup.exact"):
        assert f'<h3 id="samples-{step}">{step}</h3>' in samples
    assert all(f"min_words: {i} &lt; 50" in samples for i in range(5))
    assert "min_words: 5 &lt; 50" not in samples
    assert samples.count("max_chars: 1000 &gt; 800") == 3
    assert "x" * 300 + "…" in samples and "x" * 301 not in samples
    assert "<th>_duplicate_of</th>" in samples and ">k0<" in samples
    assert "language: fr" in samples and "language: es" in samples


def test_quarantine_counts_by_rule_and_lists_entries(report: str) -> None:
    q = _section(report, "quarantine")
    assert "3 input records could not be read" in q
    assert '<td>invalid JSON</td><td class="num">2</td>' in q
    assert '<td>empty text</td><td class="num">1</td>' in q
    assert "invalid JSON: Unterminated string" in q
    assert "y" * 200 + "…" in q and "y" * 201 not in q


def test_recipe_is_shown_verbatim_and_escaped(report: str) -> None:
    recipe = _section(report, "recipe")
    assert "<pre>name: tiny\n" in recipe
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in recipe


def test_user_text_is_escaped_everywhere(report: str) -> None:
    assert "<script" not in report
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; friends" in report
    assert "<img" not in report and "&lt;img src=x onerror=alert(1)&gt;" in report
    assert "<b>" not in report


def test_report_is_self_contained(report: str) -> None:
    assert "<script" not in report and "<link" not in report and "@import" not in report
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", report, re.I)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", report, re.I)
    assert report.count("<svg") == 2 and "<?xml" not in report and "<!DOCTYPE svg" not in report


def test_report_is_a_pure_function_of_the_run_dir(run_dir: Path) -> None:
    assert build_report(run_dir) == build_report(run_dir)


def test_write_report_writes_report_html(run_dir: Path) -> None:
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    assert path.read_text(encoding="utf-8") == build_report(run_dir)
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []
    assert write_report(run_dir) == path  # re-running replaces it


def test_missing_optional_files_say_none(tmp_path: Path, make_run) -> None:
    run_dir = make_run(tmp_path / "run", rejected=False, quarantine=False, recipe=False)
    stats = json.loads((run_dir / "stats.json").read_text())
    stats["input"].update(quarantined=0, quarantined_by_reason={})
    (run_dir / "stats.json").write_text(json.dumps(stats))
    html = build_report(run_dir)
    assert "none: no rejected rows were written" in _section(html, "samples")
    assert "none: no input record was quarantined" in _section(html, "quarantine")
    assert "none: recipe.yaml is missing" in _section(html, "recipe")
    assert "min_words" in _section(html, "drops")  # stats alone still give the reasons


def test_missing_files_that_stats_say_exist_are_pointed_out(tmp_path: Path, make_run) -> None:
    run_dir = make_run(tmp_path / "run", quarantine=False)
    (run_dir / "rejected" / "03-dedup.exact.parquet").unlink()
    html = build_report(run_dir)
    assert "no rejected file for: 03-dedup.exact" in _section(html, "samples")
    q = _section(html, "quarantine")
    assert "quarantine.jsonl is missing, but stats.json counts 3 quarantined records" in q
    assert '<td>invalid JSON</td><td class="num">2</td>' in q


def test_quarantine_count_differing_from_stats_is_noted(tmp_path: Path, make_run) -> None:
    run_dir = make_run(tmp_path / "run")
    with (run_dir / "quarantine.jsonl").open("a") as fh:
        fh.write(json.dumps({"source": "s", "line": 1, "reason": "empty text", "raw": ""}) + "\n")
    q = _section(build_report(run_dir), "quarantine")
    assert "4 input records could not be read" in q and "Note: stats.json counts 3." in q


def test_a_run_without_stats_still_reports(tmp_path: Path) -> None:
    (tmp_path / "recipe.yaml").write_text("name: killed\n", encoding="utf-8")
    html = build_report(tmp_path)
    assert "stats.json is missing or unreadable" in _section(html, "summary")
    assert "no steps recorded" in _section(html, "funnel")
    assert "name: killed" in _section(html, "recipe")


def test_missing_run_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope")


def test_large_quarantine_is_streamed_and_counted(tmp_path: Path, make_run) -> None:
    run_dir = make_run(tmp_path / "run", quarantine=False)
    n = 100_000
    with (run_dir / "quarantine.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n):
            reason = "invalid JSON: bad" if i % 4 else "empty text"
            fh.write(json.dumps({"source": "big.jsonl", "line": i + 1, "reason": reason, "raw": f"raw {i}"}) + "\n")
        fh.write("not json at all\n")
    q = scan_quarantine(run_dir / "quarantine.jsonl")
    assert q.total == n + 1
    assert q.by_rule == {"invalid JSON": 75_000, "empty text": 25_000, "unreadable entry": 1}
    assert [e["line"] for e in q.first] == list(range(1, 21))
    html = _section(build_report(run_dir), "quarantine")
    assert "100,001 input records" in html and '<td class="num">75,000</td>' in html
    assert "raw 19" in html and "raw 20" not in html


def test_columns_stored_as_json_text_are_shown_with_their_reasons(tmp_path: Path, make_run) -> None:
    run_dir = make_run(tmp_path / "run")
    assert "JSON text" not in _section(build_report(run_dir), "summary")  # none: no line
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    stats["output"]["json_columns"] = {"meta": "int vs string in different shards", "<v>": "[]: int vs string"}
    (run_dir / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    summary = _section(build_report(run_dir), "summary")
    assert "<dt>columns stored as JSON text</dt>" in summary
    assert "<code>meta</code>: int vs string in different shards" in summary
    assert "<code>&lt;v&gt;</code>: []: int vs string" in summary
    assert "the jsonl output holds them as they were in the input" in summary
    stats["output"]["format"] = "parquet"
    (run_dir / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    assert "each value in the parquet output is its JSON text" in _section(build_report(run_dir), "summary")


def test_quarantine_says_records_may_have_a_field_of_the_wrong_type(report: str) -> None:
    assert "3 input records could not be read or did not fit their columns' types." in _section(
        report, "quarantine")
