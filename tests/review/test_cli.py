"""``gristmill review``: bad input is a clear error with nothing lost, and a killed server loses no decision."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gristmill.review.server import is_loopback
from gristmill.review.store import Store, decisions_path

REPO = Path(__file__).resolve().parents[2]
ENV = {**{k: v for k, v in os.environ.items() if "proxy" not in k.lower()}, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": str(REPO / "src")}


def review(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gristmill.cli", "review", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def start(run_dir: Path, *args: str) -> tuple[subprocess.Popen[str], str, str]:
    """A review server on a free loopback port: the process, its base URL and the first reviewer's token."""
    proc = subprocess.Popen([sys.executable, "-m", "gristmill.cli", "review", str(run_dir), "-q", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
    assert m, f"no URL line: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
    return proc, m.group(1), m.group(2)


def test_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    r = review(str(tmp_path / "missing"))
    assert r.returncode == 2 and "no such run directory" in r.stderr
    (tmp_path / "empty").mkdir()
    r = review(str(tmp_path / "empty"))
    assert r.returncode == 2 and "not a finished run directory (no stats.json)" in r.stderr
    assert not (tmp_path / "empty" / "review").exists()
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "config.json").write_text("{}")
    r = review(str(tmp_path / "trained"))
    assert r.returncode == 2 and "not a pipeline run" in r.stderr


def test_a_run_that_is_still_running(fresh_run: Path) -> None:
    (fresh_run / "INCOMPLETE").write_text("")
    r = review(str(fresh_run))
    assert r.returncode == 2 and "the run is incomplete" in r.stderr
    assert not (fresh_run / "review").exists()


def test_a_corrupt_decisions_file_is_refused_and_kept(fresh_run: Path) -> None:
    path = decisions_path(fresh_run)
    path.parent.mkdir()
    garbage = b"SQLite format 3\x00" + os.urandom(3000)
    path.write_bytes(garbage)
    r = review(str(fresh_run))
    assert r.returncode == 2 and "decisions" in r.stderr and "left as it is" in r.stderr
    assert path.read_bytes() == garbage


def test_host_and_port_problems(fresh_run: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    r = review(str(fresh_run), "--host", "192.0.2.1", "--port", "1")
    assert "warning: --host 192.0.2.1 exposes the review" in r.stderr
    assert r.returncode == 2 and "cannot listen on 192.0.2.1:1" in r.stderr


def test_nothing_is_lost_when_the_server_is_killed(fresh_run: Path) -> None:
    proc, base, token = start(fresh_run, "--reviewer", "ann")
    try:
        with httpx.Client(base_url=base, headers={"X-Review-Token": token}, timeout=60) as c:
            items = c.get("/api/items", params={"queue": "judge", "size": 5}).json()["items"]
            for n, it in enumerate(items):
                body = {"iid": it["iid"], "hash": it["hash"], "action": "reject" if n % 2 else "accept",
                        "reason": "wrong" if n % 2 else None}
                assert c.post("/api/decide", json=body).status_code == 200
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert len(Store(decisions_path(fresh_run)).decisions()) == 5  # on disk after the kill
    proc, base, token = start(fresh_run, "--reviewer", "ann")
    try:
        with httpx.Client(base_url=base, headers={"X-Review-Token": token}, timeout=60) as c:
            mine = c.get("/api/items", params={"queue": "judge", "status": "mine"}).json()
            assert mine["total"] == 5
            assert sorted(i["mine"] for i in mine["items"]) == ["accept"] * 3 + ["reject"] * 2
    finally:
        proc.terminate()  # uvicorn shuts down, then lets SIGTERM end the process as it would have
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


@pytest.mark.parametrize("args", [["--per-item", "0"], ["--margin", "2"], ["--port", "70000"]])
def test_bad_options_exit_2(fresh_run: Path, args: list[str]) -> None:
    assert review(str(fresh_run), *args).returncode == 2
