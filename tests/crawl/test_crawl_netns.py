"""The crawler tests against local sites, run inside a network namespace of their own.

The cases live in ``netns_cases.py``. This module runs them once, in ``unshare --net`` with only the
loopback interface up (``ip link set lo up``), so that no request of the crawler can leave the
machine whatever a page links to; then reports each case as a test of its own. Making the namespace
needs root (CAP_SYS_ADMIN): where it cannot be made, every case fails with the reason, it is never
skipped.
"""

from __future__ import annotations

import ast
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
CASES_FILE = HERE / "netns_cases.py"


def _cases() -> list[str]:
    """Test names of netns_cases.py, parametrized ones with their ids (read with ast, not imported)."""
    tree = ast.parse(CASES_FILE.read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            params = [d for d in node.decorator_list if isinstance(d, ast.Call) and "parametrize" in ast.unparse(d)]
            if params:
                values = params[0].args[1]
                ids = [str(ast.literal_eval(v)) for v in values.elts]  # type: ignore[attr-defined]
                names += [f"{node.name}[{i}]" for i in ids]
            else:
                names.append(node.name)
    return names


@pytest.fixture(scope="module")
def inner(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, tuple[str, str]], str]:
    """Run netns_cases.py in a new network namespace: ``({case: (outcome, message)}, output)``."""
    problems = [f"{tool} is not installed" for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        problems.append("the tests are not run as root, and only root can make a network namespace here")
    if problems:
        pytest.fail("cannot run the crawler tests in a network namespace: " + "; ".join(problems))
    report = tmp_path_factory.mktemp("netns") / "junit.xml"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(GRISTMILL_NETNS="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    command = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable, "-m",
               "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(CASES_FILE), f"--junitxml={report}",
               "-o", "junit_family=xunit1", "--timeout=300"]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
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


@pytest.mark.parametrize("case", _cases())
def test_in_a_network_namespace(case: str, inner: Any) -> None:
    results, output = inner
    assert case in results, f"{case} did not run in the namespace:\n{output}"
    outcome, message = results[case]
    if outcome != "passed":
        pytest.fail(f"{case}: {outcome} in the network namespace\n{message}", pytrace=False)
