"""The decisions file: append-only, WAL, safe with several writers, and a corrupt file refused untouched."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gristmill.review.store import DEFAULT_SETTINGS, Decision, ReviewStoreError, Store, decisions_path

REPO = Path(__file__).resolve().parents[2]


def _d(key: str, action: str = "accept", reviewer: str = "ann", **kw: object) -> Decision:
    return Decision(key=key, hash="h" + key, action=action, reviewer=reviewer, queue="sample", **kw)  # type: ignore[arg-type]


def test_append_and_read_back_in_order(tmp_path: Path) -> None:
    store = Store(decisions_path(tmp_path), create=True)
    stored = store.append([_d("a"), _d("b", "reject", reason="off topic", before={"x": 1}, after={"x": 2})],
                          snapshots={("b", "hb"): {"id": "b", "text": "t"}})
    assert [d.seq for d in stored] == [1, 2] and stored[0].time
    back = store.decisions()
    assert [(d.key, d.action, d.reason, d.before, d.after) for d in back] == [
        ("a", "accept", None, None, None), ("b", "reject", "off topic", {"x": 1}, {"x": 2})]
    assert store.decisions(keys=["b"])[0].seq == 2 and store.decisions(since=1)[0].key == "b"
    assert store.snapshots() == {("b", "hb"): {"id": "b", "text": "t"}}
    assert store.last_seq() == 2
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_decisions_are_append_only(tmp_path: Path) -> None:
    store = Store(decisions_path(tmp_path), create=True)
    store.append([_d("a")])
    conn = sqlite3.connect(store.path)
    for sql in ("UPDATE decisions SET action = 'reject'", "DELETE FROM decisions"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    conn.close()
    with pytest.raises(ValueError, match="unknown review action"):
        store.append([_d("b", "delete")])
    assert len(store.decisions()) == 1  # the failed transaction left nothing


def test_settings_and_sample(tmp_path: Path) -> None:
    store = Store(decisions_path(tmp_path), create=True)
    assert store.settings() == DEFAULT_SETTINGS
    assert store.set_settings({"per_item": 2, "blind": True})["per_item"] == 2
    with pytest.raises(ValueError, match="unknown review settings"):
        store.set_settings({"colour": "red"})
    store.add_sample([("x", "hx", 0), ("y", "hy", 1)], frame=10)
    store.add_sample([("x", "other", 5)], frame=99)  # drawn once: kept as it was
    assert store.sample() == [("x", "hx", 0, 10), ("y", "hy", 1, 10)]


def test_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    store = Store(decisions_path(tmp_path), create=True)

    def work(name: str) -> None:
        for i in range(40):
            store.append([_d(f"{name}{i}", reviewer=name)])

    threads = [threading.Thread(target=work, args=(n,)) for n in ("ann", "bob", "cy")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = store.decisions()
    assert len(made) == 120 and len({d.seq for d in made}) == 120


def test_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = decisions_path(tmp_path)
    Store(path, create=True)
    code = ("import sys\nfrom gristmill.review.store import Decision, Store\n"
            "s = Store(sys.argv[1])\n"
            "for i in range(50):\n"
            "    s.append([Decision(key=f'{sys.argv[2]}{i}', hash='h', action='accept', reviewer=sys.argv[2])])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), name], env={"PYTHONPATH": str(REPO / "src")})
             for name in ("ann", "bob")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    made = Store(path).decisions()
    assert len(made) == 100 and {d.reviewer for d in made} == {"ann", "bob"}


@pytest.mark.parametrize("content", [b"this is not a database at all" * 40, b"SQLite format 3\x00" + b"\x07" * 2000])
def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    path = decisions_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(ReviewStoreError, match="left as it is") as exc:
        Store(path, create=True)
    assert str(path) in str(exc.value)
    assert path.read_bytes() == content


def test_another_database_is_not_a_decisions_file(tmp_path: Path) -> None:
    path = decisions_path(tmp_path)
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x)")
    with pytest.raises(ReviewStoreError, match="not a gristmill decisions file"):
        Store(path, create=True)
    with pytest.raises(ReviewStoreError, match="no decisions file"):
        Store(tmp_path / "missing.sqlite")
