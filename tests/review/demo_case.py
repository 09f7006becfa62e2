"""The review of the default demo run in a real browser, by scripted reviewers (slow: it runs the default recipe).

Run by ``test_browser.py::test_review_of_the_default_demo_run`` inside a network namespace. The recipe is
``recipes/default.yaml`` with 8 instructions; ``$GRISTMILL_REVIEW_DEMO_RUN`` may name a finished run of that
same command to copy instead of generating again. One reviewer goes through the acceptance sample with the
keyboard; a ``review.apply`` step then applies the decisions, and the dataset card gives the error rate with
its interval. Two reviewers then judge the same sample (two reviewers per row) for the agreement figures.
The figures are written to ``$GRISTMILL_REVIEW_SHOTS/demo-figures.json`` and printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gristmill.api import run as run_api
from tests.review.browser_cases import (SHOTS, Server, answer, browser, go_to_queue, idle, open_page,  # noqa: F401
                                        press, servers, start_server, wait_status)

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "default.yaml"
OVERRIDE = "steps.0.params.num_instructions=8"
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default demo run, made once (or copied from ``$GRISTMILL_REVIEW_DEMO_RUN``); tests review copies."""
    runs = tmp_path_factory.mktemp("demo") / "runs"
    given = os.environ.get("GRISTMILL_REVIEW_DEMO_RUN")
    if given:
        shutil.copytree(given, runs / "default", ignore=shutil.ignore_patterns("review"))
    else:
        run_api(RECIPE, overrides=[OVERRIDE], runs_dir=runs, progress=False)
    return runs / "default"


@pytest.fixture
def demo_run(made_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "default"
    shutil.copytree(made_run, run)
    return run


def output_of(page: Any) -> str:
    """The ``output`` field of the item on the page."""
    fields = page.locator("#fields")
    heads = fields.locator("h4").all_inner_texts()
    return fields.locator("pre").nth(heads.index("output")).inner_text() if "output" in heads else ""


def lenient(output: str) -> str | None:
    """Reviewer 1's rule: the reason to reject an output with no letters or fewer than 4 words, else None."""
    if not re.search(r"[A-Za-z]", output):
        return "no words: does not answer the instruction"
    if len(output.split()) < 4:
        return "too short to answer the instruction"
    return None


def strict(output: str) -> str | None:
    """Reviewer 2's rule: reviewer 1's, and an output that opens with a Python list literal is no answer."""
    reason = lenient(output)
    if reason is None and output.strip().startswith("["):
        reason = "a Python list, not an answer"
    return reason


def review_sample(page: Any, rule: Callable[[str], str | None], shot: str | None = None) -> list[tuple[str, str]]:
    """Go through the acceptance sample with the keyboard, deciding each row by ``rule`` (a screenshot with the
    figures shown after 4 rows, when ``shot`` names one)."""
    go_to_queue(page, "sample")
    made = []
    while page.locator("#items tbody tr").count():
        idle(page)
        if shot and len(made) == 4:
            page.keyboard.press("g")
            page.wait_for_selector("#figures:not([hidden])")
            page.screenshot(path=str(SHOTS / shot))
            page.keyboard.press("g")
        key = page.locator("#detail .head h2").inner_text()
        reason = rule(output_of(page))
        if reason is None:
            press(page, "a", "accept")
        else:
            page.keyboard.press("r")
            answer(page, reason)
            wait_status(page, f"reject: {key}")
        made.append((key, "accept" if reason is None else "reject"))
    return made


def test_one_reviewer_then_review_apply(browser: Any, servers: list[Server], demo_run: Path) -> None:  # noqa: F811
    servers.append(start_server(demo_run, ["demo"], "--sample", "50", "--seed", "1"))
    page = open_page(browser, servers[0].url("demo"))
    made = review_sample(page, lenient, shot="demo-review.png")
    rows = json.loads((demo_run / "stats.json").read_text())["output"]["rows"]
    assert len(made) == rows  # the sample is every kept row of this small run
    servers.pop().proc.terminate()

    spec = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    spec["steps"][0]["params"]["num_instructions"] = 8
    spec["steps"].append({"op": "review.apply", "params": {"run": str(demo_run)}})
    spec["gates"] = ["review.pending >= 0", "review.error_rate_high <= 1"]
    summary = run_api(spec, runs_dir=demo_run.parent, base_dir=RECIPE.parent, progress=False)
    assert summary.audit["passed"]
    rejected = sum(1 for _, a in made if a == "reject")
    assert summary.stats["steps"][-1]["dropped"] == ({"review": rejected} if rejected else {})
    card = (demo_run / "DATASET_CARD.md").read_text(encoding="utf-8")
    section = card.split("## Human review", 1)[1].split("\n## ", 1)[0]
    assert "Estimated error rate of the kept rows:" in section and "95% Wilson interval" in section
    e = summary.audit["summaries"]["review"]["error_rate"]
    assert (e["errors"], e["n"]) == (rejected, len(made))
    FIGURES["one_reviewer"] = {"decisions": made, "error_rate": e, "card_section": section.strip()}
    print("\n## Human review (DATASET_CARD.md of the demo run)" + section)


def test_two_reviewers(browser: Any, servers: list[Server], demo_run: Path) -> None:  # noqa: F811
    servers.append(start_server(demo_run, ["ann", "bob"], "--per-item", "2", "--sample", "50", "--seed", "1"))
    ann, bob = (open_page(browser, servers[0].url(r)) for r in ("ann", "bob"))
    made = {"ann": review_sample(ann, lenient), "bob": review_sample(bob, strict)}
    assert [k for k, _ in made["ann"]] == [k for k, _ in made["bob"]]
    figures = ann.evaluate("fetch('/api/figures', {headers: {'X-Review-Token': document.querySelector("
                           "'meta[name=review-token]').content}}).then(r => r.json())")
    a = figures["agreement"]
    assert a["items"] == len(made["ann"]) and a["fleiss"]["raters"] == 2
    assert a["items"] == len(made["ann"])
    FIGURES["two_reviewers"] = {"decisions": made, "agreement": a, "error_rate": figures["error_rate"]}
    ann.keyboard.press("g")
    ann.wait_for_selector("#figures:not([hidden])")
    ann.screenshot(path=str(SHOTS / "demo-two-reviewers.png"))
    (SHOTS / "demo-figures.json").write_text(json.dumps(FIGURES, indent=1, ensure_ascii=False), encoding="utf-8")
    print("\nagreement:", json.dumps(a, indent=1))
