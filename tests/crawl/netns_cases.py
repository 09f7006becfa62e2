"""The crawler against local sites, inside a network namespace with loopback only.

Not collected on its own (the file name does not start with ``test_``): ``test_crawl_netns.py`` runs
this module in ``unshare -n`` after ``ip link set lo up`` and reports each case, so that a link to
an outside host can never leave the machine. Importing it anywhere else fails.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("GRISTMILL_NETNS") != "1" or [n for _, n in socket.if_nameindex()] != ["lo"]:
    raise RuntimeError("tests/crawl/netns_cases.py runs only inside the network namespace that "
                       "tests/crawl/test_crawl_netns.py makes (loopback only)")

from gristmill.crawl import CrawlConfig, run_crawl  # noqa: E402
from tests.crawl.websites import Answer, Site, fixture_site, generated_site  # noqa: E402
from tests.processes import session_members  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
UA = "gristmill-test/1.0"


# ---- helpers ------------------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def warc_record(root: Path, name: str, offset: int) -> tuple[str, str, bytes]:
    """(type, target URI, payload) of the WARC record at ``offset`` of ``warc/name``."""
    from warcio.archiveiterator import ArchiveIterator

    with open(root / "warc" / name, "rb") as f:
        f.seek(offset)
        rec = next(iter(ArchiveIterator(f)))
        return rec.rec_type, rec.rec_headers.get_header("WARC-Target-URI"), rec.content_stream().read()


def warc_responses(root: Path) -> list[str]:
    """Target URIs of every response record in the crawl's WARC files, in order."""
    from warcio.archiveiterator import ArchiveIterator

    uris = []
    for f in sorted((root / "warc").glob("*.warc.gz")):
        with open(f, "rb") as stream:
            uris += [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(stream)
                     if r.rec_type == "response"]
    return uris


def check_index_against_warc(root: Path) -> list[dict[str, Any]]:
    """Every stored index line points at its response record, whose payload has the line's sha256."""
    import hashlib

    index = read_jsonl(root / "index.jsonl")
    urls = [r["url"] for r in index]
    assert len(urls) == len(set(urls)), [u for u, n in Counter(urls).items() if n > 1]
    stored = [r for r in index if r["reason"] is None]
    for r in stored:
        kind, uri, payload = warc_record(root, r["warc_file"], r["warc_offset"])
        assert (kind, uri) == ("response", r["url"])
        assert hashlib.sha256(payload).hexdigest() == r["sha256"] and len(payload) == r["length"]
    assert sorted(warc_responses(root)) == sorted(r["url"] for r in stored)
    return stored


def cli(*args: str, **kw: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.Popen([sys.executable, "-m", "gristmill.cli", "crawl", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


# ---- the namespace ------------------------------------------------------------------------------

def test_only_loopback_is_reachable() -> None:
    assert [n for _, n in socket.if_nameindex()] == ["lo"]
    s = socket.socket()
    s.settimeout(2)
    with pytest.raises(OSError) as exc:
        s.connect(("192.0.2.1", 80))  # TEST-NET-1: no route in this namespace
    assert exc.value.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
    with pytest.raises(OSError):
        socket.getaddrinfo("example.com", 80)


# ---- the fixture site -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fixture site crawled once (in this process); what the servers saw and what the crawl wrote."""
    root = tmp_path_factory.mktemp("crawl")
    outside = Site({}, "127.0.0.2")  # another host: must never be asked anything
    with outside:
        with fixture_site(outside.base) as site:
            config = CrawlConfig(seeds=(site.url("/"),), sitemaps=(site.url("/sitemap.xml"),), delay=0, per_host=4,
                                 concurrency=8, timeout=1.0, retries=1, backoff=0.05, max_bytes=2**20, max_depth=3,
                                 exclude=("^/excluded/",), user_agent=UA)
            t0 = time.monotonic()
            summary = run_crawl(config, root)
            seconds = time.monotonic() - t0
            time.sleep(0.3)  # let the server threads of cut-off answers finish counting
            return {"root": root, "site": site, "outside": outside, "summary": summary, "seconds": seconds,
                    "log": read_jsonl(root / "crawl_log.jsonl"), "index": read_jsonl(root / "index.jsonl")}


def _reasons(crawled: dict[str, Any], outcome: str | None = None) -> dict[str, set[str]]:
    site = crawled["site"]
    out: dict[str, set[str]] = {}
    for line in crawled["log"]:
        if outcome is None or line["outcome"] == outcome:
            out.setdefault(line["url"].replace(site.base, ""), set()).add(line["reason"])
    return out


def test_robots_and_domain_limits_hold(crawled: dict[str, Any]) -> None:
    site, outside = crawled["site"], crawled["outside"]
    asked = set(site.paths())
    for forbidden in ("/private/secret.html", "/private/in-sitemap.html", "/file.secret", "/only-from-nofollow.html",
                      "/deep/4", "/excluded/page.html", "/chain/6"):
        assert forbidden not in asked
    assert "/private/open.html" in asked  # the longer Allow wins
    assert outside.paths() == []
    reasons = _reasons(crawled, "skipped")
    for path in ("/private/secret.html", "/private/in-sitemap.html", "/file.secret"):
        assert reasons[path] == {"robots-disallow"}
    for url in ("http://example.com/away", f"http://localhost:{site.port}/a.html", f"{outside.base}/from-fixture",
                f"{outside.base}/from-sitemap"):
        assert reasons[url] == {"off-domain"}
    assert reasons["/deep/4"] == {"depth"} and reasons["/excluded/page.html"] == {"path-excluded"}
    for url in ("mailto:someone@example.com", "javascript:void(0)", "ftp://example.com/f"):
        assert reasons[url] == {"scheme"}


def test_each_problem_is_logged_with_its_reason(crawled: dict[str, Any]) -> None:
    failed = _reasons(crawled, "failed")
    expected = {"/self": "redirect-loop", "/loop/b": "redirect-loop", "/chain/5": "too-many-redirects",
                "/missing": "http-error", "/broken": "http-error", "/slow": "fetch-error", "/trickle": "fetch-error",
                "/huge": "size", "/huge-stream": "size", "/image.png": "content-type", "/blob": "content-type",
                "/noindex.html": "meta-noindex", "/xrobots.html": "meta-noindex"}
    for path, reason in expected.items():
        assert failed.get(path) == {reason}, path
    dups = [p for p in ("/dup1.html", "/dup2.html") if failed.get(p) == {"duplicate-content"}]
    assert len(dups) == 1
    redirected = _reasons(crawled, "redirected")
    assert {p for p, r in redirected.items() if r == {"redirect"}} == {"/loop/a", "/moved", *(f"/chain/{i}" for i in
                                                                                               range(5))}
    notes = _reasons(crawled, "note")
    assert "charset-mismatch" in notes["/latin1.html"] and "charset-missing" in notes["/nocharset.html"]
    assert "/metacharset.html" not in notes
    assert "retry" in notes["/flaky"] and "retry" in notes["/broken"] and "retry" in notes["/slow"]
    lines = {(line["url"], line["reason"]): line for line in crawled["log"]}
    site = crawled["site"]
    assert "timeout" in lines[(site.url("/slow"), "fetch-error")]["detail"]
    assert lines[(site.url("/huge"), "size")]["detail"].startswith("Content-Length")


def test_stored_pages_and_the_index(crawled: dict[str, Any]) -> None:
    site = crawled["site"]
    stored = {r["url"].replace(site.base, "") for r in check_index_against_warc(crawled["root"])}
    expected = {"/", "/a.html", "/A.html", "/b.html", "/b.html?a=2&z=1", "/c.html", "/private/open.html",
                "/moved-here.html", "/flaky", "/latin1.html", "/nocharset.html", "/metacharset.html",
                "/from-noindex.html", "/nofollow.html", "/deep/1", "/deep/2", "/deep/3", "/plain.txt", "/doc.pdf",
                "/from-sitemap.html", "/from-gz-sitemap.html"}
    assert stored - {"/dup1.html", "/dup2.html"} == expected
    assert len(stored & {"/dup1.html", "/dup2.html"}) == 1
    by_url = {r["url"].replace(site.base, ""): r for r in crawled["index"]}
    assert by_url["/missing"]["status"] == 404 and by_url["/missing"]["warc_file"] is None
    assert by_url["/doc.pdf"]["content_type"] == "application/pdf"
    assert by_url["/latin1.html"]["charset_note"] == "charset-mismatch"
    assert crawled["summary"]["pages_stored"] == len(stored)


def test_the_readers_read_the_crawl(crawled: dict[str, Any]) -> None:
    """What a recipe reads: the WARC files (format warc: HTML pages as rows that join back to the
    index) and the index itself as plain JSON Lines."""
    from gristmill.io.base import ReaderOptions
    from gristmill.io.readers import open_reader

    root = crawled["root"]
    stored = {r["url"]: r for r in crawled["index"] if r["reason"] is None}
    rows = [r for r in open_reader(root / "warc", ReaderOptions(format="warc")) if isinstance(r, dict)]
    html_pages = {u for u, r in stored.items() if r["content_type"] == "text/html"}
    assert {r["url"] for r in rows} <= html_pages and len(rows) >= len(html_pages) - 3  # pages without main text
    for row in rows:
        entry = stored[row["url"]]
        assert row["id"] == f"{entry['warc_file']}@{entry['warc_offset']}"
        assert row["content_sha256"] == entry["sha256"] and row["http_status"] == 200
    index_rows = list(open_reader(root / "index.jsonl", ReaderOptions(text_column="url")))
    assert all(isinstance(r, dict) for r in index_rows) and len(index_rows) == len(crawled["index"])


def test_each_page_is_fetched_once_and_retries_are_bounded(crawled: dict[str, Any]) -> None:
    counts = Counter(crawled["site"].paths())
    retried = {"/broken": 2, "/flaky": 2, "/slow": 2, "/trickle": 2}  # --retries 1
    assert {p: n for p, n in counts.items() if n > 1} == retried
    assert counts["/robots.txt"] == 1 and counts["/a.html"] == 1 and counts["/b.html?a=2&z=1"] == 1


def test_time_and_bytes_are_bounded(crawled: dict[str, Any]) -> None:
    assert crawled["seconds"] < 15  # two tries of 1 s for each slow page, run side by side
    hits = {h.path: h for h in crawled["site"].hits}
    for path in ("/huge", "/huge-stream"):
        assert not hits[path].served and hits[path].sent < 10 * 2**20  # 20 MiB offered, the crawler hung up


def test_user_agent_is_sent(crawled: dict[str, Any]) -> None:
    assert {h.user_agent for h in crawled["site"].hits} == {UA}


# ---- politeness -----------------------------------------------------------------------------------

def _starts(site: Site, prefix: str = "/p/") -> list[float]:
    return sorted(h.start for h in site.hits if h.path.startswith(prefix))


def test_crawl_delay_of_robots_txt_spaces_requests(tmp_path: Path) -> None:
    with generated_site(12, robots="User-agent: *\nCrawl-delay: 0.25\n") as site:
        run_crawl(CrawlConfig(seeds=(site.url("/p/0"),), delay=0, per_host=4, max_depth=None, user_agent=UA),
                  tmp_path)
        starts = _starts(site)
    assert len(starts) == 12
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.25 - 0.02, gaps


def test_delay_and_per_host_limits(tmp_path: Path) -> None:
    with generated_site(30) as site:
        for path, route in list(site.routes.items()):
            if path.startswith("/p/"):
                answer = route(site, None)  # type: ignore[arg-type]
                site.routes[path] = lambda s, h, a=answer: Answer(a.status, a.body, a.headers, delay=0.1)
        run_crawl(CrawlConfig(seeds=(site.url("/p/0"),), delay=0.1, per_host=2, concurrency=8, max_depth=None,
                              user_agent=UA), tmp_path)
        starts = _starts(site)
        assert site.max_active <= 2 and len(starts) == 30
    # the crawler spaces the moments its requests go out; what the server sees varies with its own latency
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert sum(gaps) / len(gaps) >= 0.1 * 0.97 and min(gaps) >= 0.08, gaps


@pytest.mark.parametrize("status", [503, 404])
def test_robots_txt_unreachable_forbids_everything_missing_allows_everything(tmp_path: Path, status: int) -> None:
    with generated_site(5) as site:
        site.routes["/robots.txt"] = lambda s, h: Answer(status, b"", {"Content-Type": "text/plain"})
        run_crawl(CrawlConfig(seeds=(site.url("/p/0"),), delay=0, retries=1, backoff=0.01, max_depth=None,
                              user_agent=UA), tmp_path)
        paths = site.paths()
    log = read_jsonl(tmp_path / "crawl_log.jsonl")
    if status == 503:
        assert paths == ["/robots.txt", "/robots.txt"]  # tried again once, then nothing
        skip = [ln for ln in log if ln["reason"] == "robots-disallow"]
        assert len(skip) == 1 and "unreachable" in skip[0]["detail"]
    else:
        assert sorted(paths) == sorted(["/robots.txt", "/never/0", "/never/1", "/never/2", "/never/3", "/never/4",
                                        *(f"/p/{i}" for i in range(5))])


# ---- stopping and resuming ------------------------------------------------------------------------

def test_sigkill_mid_fetch_then_resume_fetches_nothing_twice(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with generated_site(300) as site:
        site.hold_at = 150  # this request waits: the crawler is killed while it is in flight
        args = [site.url("/p/0"), "--out", str(out), "--delay", "0", "--max-depth", "-1", "--user-agent", UA, "-q"]
        proc = cli(*args)
        assert site.held.wait(60), finish(proc, 5)
        held = site.hits[149].path
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        site.release.set()
        assert session_members(proc.pid) == []
        rc, _, err = finish(cli(*args, "--resume"))
        assert rc == 0, err
        served = Counter(site.served())
    assert served == Counter({"/robots.txt": 1, **{f"/p/{i}": 1 for i in range(300)}})
    stored = check_index_against_warc(out)
    assert len(stored) == 300
    refetched = [ln["url"] for ln in read_jsonl(out / "crawl_log.jsonl") if ln["reason"] == "refetch"]
    assert refetched == [site.url(held)]


def test_repeated_sigkills_lose_and_repeat_only_what_was_in_flight(tmp_path: Path) -> None:
    out = tmp_path / "run"
    rng = random.Random(20)
    with generated_site(400) as site:
        args = [site.url("/p/0"), "--out", str(out), "--delay", "0", "--per-host", "4", "--concurrency", "4",
                "--max-depth", "-1", "--user-agent", UA, "-q"]
        kills = 0
        for round_ in range(4):
            seen = len(site.hits)
            proc = cli(*args, *(["--resume"] if round_ else []))
            deadline = time.monotonic() + 60
            while len(site.hits) < seen + 40 + rng.randrange(40) and time.monotonic() < deadline:
                time.sleep(0.005)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait(10)
        rc, _, err = finish(cli(*args, "--resume"))
        assert rc == 0, err
        served = Counter(site.served())
    assert kills >= 3
    stored = check_index_against_warc(out)
    assert len(stored) == 400
    refetched = {ln["url"].replace(site.base, "") for ln in read_jsonl(out / "crawl_log.jsonl")
                 if ln["reason"] == "refetch"}
    twice = {p for p, n in served.items() if n > 1}
    assert twice <= refetched and len(refetched) <= 4 * kills, (twice, refetched)
    assert served["/robots.txt"] == 1


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path: Path, sig: str) -> None:
    out = tmp_path / "run"
    with generated_site(200) as site:
        args = [site.url("/p/0"), "--out", str(out), "--delay", "0.005", "--max-depth", "-1", "--user-agent", UA]
        proc = cli(*args)
        deadline = time.monotonic() + 60
        while len(site.hits) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, getattr(signal, sig))
        rc, _, err = finish(proc, 30)
        assert rc == 130 and "--resume" in err, (rc, err)
        assert session_members(proc.pid) == []
        results = json.loads((out / "results.json").read_text())
        assert 0 < results["pages_stored"] < 200
        rc, text, err = finish(cli(*args, "--resume", "-q"))
        assert rc == 0 and "200 pages stored" in text, (rc, text, err)
        served = Counter(site.served())
    assert sum(n - 1 for n in served.values()) <= 1  # at most the one request in flight at the stop
    assert len(check_index_against_warc(out)) == 200


# ---- the command ----------------------------------------------------------------------------------

def test_the_command_writes_its_layout_rotates_warcs_and_starts_over(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with generated_site(60, size=6000) as site:
        args = [site.url("/p/0"), "--out", str(out), "--delay", "0", "--max-depth", "-1", "--warc-max-bytes", "8K",
                "--user-agent", UA]
        rc, text, err = finish(cli(*args))
        assert rc == 0, err
        assert "60 pages stored" in text and "robots-disallow" in text
        assert {p.name for p in out.iterdir()} >= {".gristmill-run", "config.json", "results.json", "report.html",
                                                  "index.jsonl", "crawl_log.jsonl", "frontier.sqlite", "warc"}
        assert json.loads((out / "config.json").read_text())["kind"] == "crawl"
        warcs = sorted(p.name for p in (out / "warc").iterdir())
        assert len(warcs) > 3 and warcs[0] == "crawl-00000.warc.gz"
        stored = check_index_against_warc(out)
        assert {r["warc_file"] for r in stored} == set(warcs)
        first = len(site.hits)
        rc, text, err = finish(cli(*args, "-q"))  # no --resume: starts over
        assert rc == 0 and len(site.hits) == 2 * first, err
        assert len(check_index_against_warc(out)) == 60
        rc, _, err = finish(cli(*args, "--max-pages", "10", "-q"))
        assert rc == 0 and len(read_jsonl(out / "index.jsonl")) <= 12, err
        results = json.loads((out / "results.json").read_text())
        assert results["pages_stored"] == 10 and results["stopped_at_max_pages"]


def test_the_command_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    for args, words in ((["ftp://x/"], "not an http(s) URL"), ([], "at least one seed"),
                        (["http://127.0.0.1:9/", "--resume", "--out", str(tmp_path / "none")], "no crawl to continue"),
                        (["http://127.0.0.1:9/", "--max-bytes", "lots"], "not a size"),
                        (["http://127.0.0.1:9/", "--include", "("], "not a regular expression")):
        rc, _, err = finish(cli(*args, "-q"))
        assert rc == 2 and words in err, (args, err)


def test_an_unreachable_seed_exits_1_with_the_reason_logged(tmp_path: Path) -> None:
    rc, _, err = finish(cli("http://127.0.0.1:9/", "--out", str(tmp_path / "r"), "--retries", "0", "-q"))
    assert rc == 1 and "no page was stored" in err
    log = read_jsonl(tmp_path / "r" / "crawl_log.jsonl")
    assert any(ln["reason"] == "robots-disallow" and "unreachable" in ln["detail"] for ln in log)


def test_gzip_sitemap_served_compressed_is_read(tmp_path: Path) -> None:
    with generated_site(3) as site:
        body = gzip.compress(("\n".join(site.url(f"/p/{i}") for i in range(3)) + "\n").encode())
        site.routes["/sitemap.txt.gz"] = lambda s, h: Answer(200, body, {"Content-Type": "application/gzip"})
        run_crawl(CrawlConfig(sitemaps=(site.url("/sitemap.txt.gz"),), delay=0, max_depth=0, user_agent=UA), tmp_path)
    assert len(check_index_against_warc(tmp_path)) == 3
