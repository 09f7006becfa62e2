"""recipes/web.yaml end to end with ``gristmill run``: a WARC crawl of the fixture site becomes clean,
deduplicated, PII-redacted English rows that keep their provenance, and the dataset card lists
their licences. Also: the committed WARC is what recipes/data/make_web_warc.py writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SITE = "https://riverside-gardens.example"


def test_the_committed_warc_is_what_the_script_writes(tmp_path: Path) -> None:
    out = tmp_path / "web_site.warc.gz"
    subprocess.run([sys.executable, str(REPO / "recipes" / "data" / "make_web_warc.py"), str(out)], check=True,
                   capture_output=True)
    assert out.read_bytes() == (REPO / "recipes" / "data" / "web_site.warc.gz").read_bytes()


@pytest.mark.slow
def test_the_web_recipe_runs_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gristmill", "run", str(REPO / "recipes" / "web.yaml"),
                           "--runs-dir", str(tmp_path), "-q"], capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "web"
    stats = json.loads((run / "stats.json").read_text(encoding="utf-8"))
    assert stats["input"]["rows"] == 15 and stats["input"]["quarantined"] == 0
    assert stats["input"]["skipped"] == {"warcinfo record": 1, "request record": 19, "non-HTML response": 2,
                                         "HTTP 404": 1, "HTTP 301": 1, "metadata record": 1}
    dropped = {s["op"]: s["dropped"] for s in stats["steps"]}
    assert dropped["filter.language"] == {"language": 1}
    assert dropped["quality.gopher"] == {"n_words": 1} and dropped["quality.c4"] == {"lorem_ipsum": 1}
    assert dropped["quality.fineweb"] == {"char_dup_ratio": 1} and dropped["dedup.minhash"] == {"near_duplicate": 2}

    rows = [json.loads(line) for line in (run / "data" / "data.jsonl").read_text(encoding="utf-8").splitlines()]
    by_path = {r["url"].removeprefix(SITE): r for r in rows}
    assert sorted(by_path) == ["/", "/about", "/articles/bees", "/articles/compost", "/articles/guest-orchard",
                               "/articles/seed-library", "/articles/tomatoes", "/articles/winter", "/contact"]
    tomatoes = by_path["/articles/tomatoes"]
    assert "Start the seeds indoors about eight weeks before the last frost." in tomatoes["text"]
    for boilerplate in ("Member login", "Most read this month", "Accept all cookies", "founded 1987", "Sitemap"):
        assert all(boilerplate not in r["text"] for r in rows), boilerplate
    assert tomatoes["fetch_time"].startswith("2024-11-05T10:") and tomatoes["http_status"] == 200
    assert tomatoes["content_type"] == "text/html" and len(tomatoes["content_sha256"]) == 64
    assert tomatoes["title"] == "Growing tomatoes in small gardens | Riverside Gardening Club"
    assert tomatoes["published"] == "2023-04-02" and tomatoes["html_lang"] == "en" and tomatoes["lang.code"] == "en"
    assert tomatoes["source"].endswith("recipes/data/web_site.warc.gz") and tomatoes["id"].startswith("web_site")
    contact = by_path["/contact"]["text"]
    assert "<EMAIL_ADDRESS>" in contact and "margaret.ellison@" not in contact
    assert "<PHONE_NUMBER>" in contact and "014-2237" not in contact
    assert {r["license"] for r in rows if r["url"] != SITE + "/articles/guest-orchard"} == {"CC-BY-SA-4.0",
                                                                                         "CC0-1.0"}
    assert by_path["/articles/seed-library"]["license"] == "CC0-1.0"
    assert by_path["/articles/guest-orchard"].get("license") is None

    report = (run / "report.html").read_text(encoding="utf-8")
    assert "25 input records were skipped, not quarantined" in report and "request record" in report
    card = (run / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert "| web_site.warc.gz | CC-BY-SA-4.0 | 7 |" in card and "| web_site.warc.gz | CC0-1.0 | 1 |" in card
    assert "1 output rows carry no license" in card
