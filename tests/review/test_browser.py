"""The review page in a real browser, run inside a network namespace of its own.

The cases live in ``browser_cases.py`` (and the slow review of the default demo run in ``demo_case.py``).
This module runs them in ``unshare --net`` with only the loopback interface up (``ip link set lo up``):
Chromium makes background requests of its own, and neither it nor the review server may reach anything
but each other. Playwright drives Debian's Chromium (``/usr/bin/chromium``, ``apt-get install chromium``)
through ``executable_path``; no browser is downloaded. Making the namespace needs root: where it cannot
be made, or Chromium or Playwright is missing, every case fails with the reason, it is never skipped.
Screenshots are saved under the test's temporary directory (printed with ``-s``).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CASES = HERE / "browser_cases.py"
DEMO = HERE / "demo_case.py"
CHROMIUM = Path("/usr/bin/chromium")


def _cases(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


def run_in_namespace(path: Path, out: Path, timeout: int, env: dict[str, str] | None = None
                     ) -> tuple[dict[str, tuple[str, str]], str]:
    """Run the pytest cases of ``path`` in a new network namespace: ``({case: (outcome, message)}, output)``."""
    problems = [f"{tool} is not installed" for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        problems.append("the tests are not run as root, and only root can make a network namespace here")
    if not CHROMIUM.is_file():
        problems.append(f"{CHROMIUM} is missing: apt-get install -y chromium (make test installs it)")
    if importlib.util.find_spec("playwright") is None:
        problems.append("playwright is not installed: pip install playwright (the dev extra; no browser download)")
    if problems:
        pytest.fail("cannot run the browser tests in a network namespace: " + "; ".join(problems))
    report = out / "junit.xml"
    shots = out / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    base.update(GRISTMILL_NETNS="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src") + os.pathsep + str(REPO),
                GRISTMILL_REVIEW_SHOTS=str(shots), **(env or {}))
    command = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable, "-m",
               "pytest", "-p", "no:cacheprovider", "-q", "-s", "-rA", str(path), f"--junitxml={report}",
               "-o", "junit_family=xunit1", f"--timeout={timeout}", "--basetemp", str(out / "tmp")]
    proc = subprocess.run(command, cwd=REPO, env=base, capture_output=True, text=True, timeout=timeout + 300)
    output = proc.stdout[-20000:] + proc.stderr[-5000:]
    if not report.is_file():
        pytest.fail(f"the network namespace could not be made, or pytest did not run in it (exit {proc.returncode}):"
                    f"\n{output}")
    results: dict[str, tuple[str, str]] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, (child.get("message") or "") + "\n" + (child.text or "")
        results[case.get("name", "")] = (outcome, message)
    return results, output


@pytest.fixture(scope="module")
def inner(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, tuple[str, str]], str, Path]:
    out = tmp_path_factory.mktemp("review-browser")
    results, output = run_in_namespace(CASES, out, timeout=600)
    print(f"\nreview screenshots: {out / 'screenshots'}")
    return results, output, out


def _check(case: str, results: dict[str, tuple[str, str]], output: str) -> None:
    assert case in results, f"{case} did not run in the namespace:\n{output}"
    outcome, message = results[case]
    if outcome != "passed":
        pytest.fail(f"{case}: {outcome} in the network namespace\n{message}", pytrace=False)


@pytest.mark.parametrize("case", _cases(CASES))
def test_in_a_browser(case: str, inner: Any) -> None:
    results, output, _ = inner
    _check(case, results, output)


def test_screenshots_are_saved(inner: Any) -> None:
    results, output, out = inner
    failed = [name for name, r in results.items() if r[0] != "passed"]
    assert not failed, f"the browser cases {failed} failed, so their screenshots may be missing"
    shots = {p.name for p in (out / "screenshots").glob("*.png")}
    assert {"review.png", "edit.png", "near-duplicates.png", "two-reviewers.png"} <= shots


@pytest.mark.slow
def test_review_of_the_default_demo_run(tmp_path: Path) -> None:
    """The default recipe (8 instructions), reviewed by a scripted reviewer in the browser, and by two; the
    decisions applied by review.apply; the error rate with its interval in the dataset card (demo_case.py)."""
    results, output = run_in_namespace(DEMO, tmp_path, timeout=3600)
    print(output[-6000:])
    for case in _cases(DEMO):
        _check(case, results, output)
