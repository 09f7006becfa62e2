"""bias.audit: term matching, per-row columns, PMI and the run summary computed by hand on a toy corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gristmill.ops.bias.audit import FEMALE, GROUPS, MALE, MENTIONS, BiasAudit, pmi
from gristmill.pipeline.run_reader import RunReader
from gristmill.records import from_rows
from gristmill.report import bias as bias_report
from gristmill.runner import run_recipe

TOY = ["She is a nurse. He is a doctor.",
       "She is a doctor. The weather is nice.",
       "He was happy. He is a nurse."]


@pytest.fixture
def lists(tmp_path: Path) -> dict[str, str]:
    groups = tmp_path / "groups.txt"
    groups.write_text("# toy\n{person}\tman woman\ngender\tfemale\tshe\ngender\tmale\the\n"
                      "age\told\told {person}\n", encoding="utf-8")
    occupations = tmp_path / "occupations.txt"
    occupations.write_text("nurse\t90\tnurse|nurses\ndoctor\t\tdoctor|doctors\n", encoding="utf-8")
    sentiment = tmp_path / "sentiment.txt"
    sentiment.write_text("happy\t2.7\nnice\t1.8\nsad\t-2.1\nmeh\t-0.5\n", encoding="utf-8")
    return {"groups_path": str(groups), "occupations_path": str(occupations), "sentiment_path": str(sentiment)}


def _fit(op: BiasAudit, texts: list[str | None], shards: int = 1) -> dict:
    batch = from_rows([{"id": f"r{i}", "text": t} for i, t in enumerate(texts)])
    size = math.ceil(len(texts) / shards)
    op.fit([op.summarize(batch.slice(i, size)) for i in range(0, len(texts), size)])
    return op.run_summary()


def test_pmi_by_hand() -> None:
    assert pmi(1, 2, 2, 6) == pytest.approx(math.log2(1.5))
    assert pmi(1, 3, 2, 6) == 0.0
    assert pmi(0, 3, 2, 6) is None


def test_toy_corpus_summary_matches_hand_counts(lists: dict[str, str]) -> None:
    s = _fit(BiasAudit(**lists, min_count=1), TOY)
    # 6 segments; female: s1, s3; male: s2, s5, s6; nurse: s1, s6; doctor: s2, s3; positive: s4, s5
    assert (s["rows"], s["segments"], s["rows_with_mentions"]) == (3, 6, 3)
    assert s["gender"] == {"female_terms": 2, "male_terms": 3, "female_share": 0.4,
                           "segments_female": 2, "segments_male": 3}
    nurse = next(o for o in s["occupations"] if o["occupation"] == "nurse")
    assert (nurse["segments"], nurse["female"], nurse["male"], nurse["bls_female_pct"]) == (2, 1, 1, 90.0)
    assert nurse["female_share"] == 0.5
    assert nurse["female_share_adjusted"] == pytest.approx(0.6)  # (1/2) / (1/2 + 1/3)
    assert nurse["skew"] == pytest.approx(math.log2(1.5) - 0.0, abs=1e-4)  # PMI(f, nurse) - PMI(m, nurse)
    sent = {g["group"]: g for g in s["sentiment"]["groups"]}
    assert s["sentiment"]["segments_positive"] == 2 and s["sentiment"]["segments_negative"] == 0
    assert sent["male"]["positive"] == 1 and sent["male"]["pmi_positive"] == 0.0  # log2(1*6 / (3*2))
    assert sent["female"]["positive"] == 0 and sent["female"]["pmi_positive"] is None
    assert s["sentiment"]["top_words"]["gender:male"] == [["happy", 1.0, 1]]  # log2(1*6 / (3*1))
    gender = s["axes"]["gender"]
    assert gender["mentions"] == 5 and gender["rows"] == 3
    assert [(g["group"], g["mentions"], g["share"], g["top_terms"]) for g in gender["groups"]] == [
        ("male", 3, 0.6, [["he", 3]]), ("female", 2, 0.4, [["she", 2]])]


def test_summary_is_the_same_over_shards(lists: dict[str, str]) -> None:
    assert _fit(BiasAudit(**lists), TOY, shards=3) == _fit(BiasAudit(**lists), TOY, shards=1)


def test_row_columns_and_placeholder_terms(lists: dict[str, str]) -> None:
    op = BiasAudit(**lists)
    batch = from_rows([{"id": "a", "text": "She met an old man and an old car."}, {"id": "b", "text": None},
                       {"id": "c", "text": "He and he and she."}])
    _fit(op, batch.column("text").to_pylist())
    rows = op.process(batch).kept.to_pylist()
    assert [(r[GROUPS], r[MENTIONS], r[FEMALE], r[MALE]) for r in rows] == [
        (["age:old", "gender:female"], 2, 1, 0), ([], 0, 0, 0), (["gender:female", "gender:male"], 3, 1, 2)]


def test_shipped_lists_on_real_phrases() -> None:
    op = BiasAudit()
    texts = ["A Black woman and a black cat.", "The African American community met the Muslim families.",
             "Mrs Jones asked the elderly Irish nurse; I miss her.", "Gay and lesbian couples; a deaf man."]
    _fit(op, texts)
    groups = op.process(from_rows([{"id": str(i), "text": t} for i, t in enumerate(texts)])).kept.column(GROUPS)
    assert groups.to_pylist() == [
        ["gender:female", "race_ethnicity:black"],
        ["race_ethnicity:black", "religion:muslim"],
        ["age:old", "gender:female", "nationality:irish"],
        ["disability:deaf_hard_of_hearing", "gender:male", "sexual_orientation:gay_lesbian"]]


def test_run_writes_the_summary_and_the_report_shows_it(tmp_path: Path, lists: dict[str, str]) -> None:
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TOY * 4)),
                    encoding="utf-8")
    recipe = {"name": "b", "input": {"path": str(data), "format": "jsonl", "shard_rows": 5},
              "steps": [{"op": "bias.audit", "params": {**lists, "min_count": 1}}],
              "output": {"format": "jsonl"}, "executor": {"workers": 1}}
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False)
    saved = json.loads((summary.run_dir / "summaries" / "00-bias.audit.json").read_text())
    assert saved["rows"] == 12 and saved["segments"] == 24 and saved["gender"]["female_terms"] == 8
    html = bias_report.render(RunReader(summary.run_dir))
    assert "nurse" in html and "Gender and occupations" in html and "<svg" in html
    again = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False)  # cached: the summary is still written
    assert json.loads((again.run_dir / "summaries" / "00-bias.audit.json").read_text()) == saved
    assert "Bias audit" in (summary.run_dir / "report.html").read_text()
