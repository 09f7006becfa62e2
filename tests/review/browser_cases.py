"""The review page in a real browser: Playwright driving Debian's Chromium (``/usr/bin/chromium``).

Run by ``test_browser.py`` inside a network namespace with only loopback, so neither the server nor the
browser (which makes background requests of its own) can reach anything else. Not collected on its own
(no ``test_`` prefix). Screenshots go to ``$GRISTMILL_REVIEW_SHOTS``.
"""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gristmill.review.store import Store, decisions_path

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("GRISTMILL_REVIEW_SHOTS", "review-shots"))
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str
    tokens: dict[str, str]

    def url(self, reviewer: str) -> str:
        return f"{self.base}/?token={self.tokens[reviewer]}"


def start_server(run_dir: Path, reviewers: list[str], *args: str) -> Server:
    cmd = [sys.executable, "-m", "gristmill.cli", "review", str(run_dir), "-q", *args]
    for r in reviewers:
        cmd += ["--reviewer", r]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    tokens, base = {}, ""
    for _ in reviewers:
        line = proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)\s+\(reviewer (\S+)\)", line)
        assert m, f"no URL line: {line!r}"
        base, tokens[m.group(3)] = m.group(1), m.group(2)
    return Server(proc, base, tokens)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for s in started:
        s.proc.terminate()
        s.proc.wait(timeout=60)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def open_page(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    return page


def wait_status(page: Any, text: str) -> None:
    page.wait_for_function("t => document.getElementById('status').textContent.includes(t)", arg=text, timeout=30_000)


def idle(page: Any) -> None:
    """Wait until the page has finished what the last key started (the script marks ``body[data-busy]``)."""
    page.wait_for_selector("body:not([data-busy])", timeout=30_000)


def go_to_queue(page: Any, queue: str) -> None:
    for _ in range(30):
        idle(page)
        if page.locator("#queue-list li.current").get_attribute("data-queue") == queue:
            page.wait_for_selector("#detail .head", timeout=30_000)
            return
        page.keyboard.press("]")
    raise AssertionError(f"queue {queue} not reached with ]")


def current_key(page: Any) -> str:
    return page.locator("#detail .head h2").inner_text()


def press(page: Any, key: str, then: str) -> str:
    """Press ``key`` on the current item and wait for the status line to say ``then: <key>``."""
    idle(page)
    key_before = current_key(page)
    page.keyboard.press(key)
    wait_status(page, f"{then}: {key_before}")
    return key_before


def answer(page: Any, text: str) -> None:
    page.wait_for_selector("#prompt:not([hidden])")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_review_with_the_keyboard_only(browser: Any, servers: list[Server], fresh_run: Path) -> None:
    servers.append(start_server(fresh_run, ["ann"]))
    page = open_page(browser, servers[0].url("ann"))
    assert "token" not in page.url  # dropped from the address bar
    shortcuts = page.locator("#keys").inner_text()
    for k in ("accept", "reject", "edit the text", "change the label", "NER tags", "skip", "send back",
              "every item the filter matches"):
        assert k in shortcuts
    go_to_queue(page, "judge")
    done: dict[str, str] = {}
    done[press(page, "a", "accept")] = "accept"
    page.keyboard.press("r")
    answer(page, "off topic")
    wait_status(page, "reject: ")
    done[page.locator("#status").inner_text().split(": ", 1)[1]] = "reject"
    key = current_key(page)
    page.keyboard.press("e")
    page.wait_for_selector("#fields textarea:focus")
    page.keyboard.press("Control+a")
    page.keyboard.type("a rewritten note about the meadow, typed with the keyboard only")
    page.screenshot(path=str(SHOTS / "edit.png"))
    page.keyboard.press("Control+Enter")
    wait_status(page, f"edit: {key}")
    done[key] = "edit"
    done[press(page, "s", "skip")] = "skip"
    key = current_key(page)
    page.keyboard.press("l")
    answer(page, "b")
    wait_status(page, f"label: {key}")
    done[key] = "label"
    go_to_queue(page, "queue:ner")
    page.keyboard.press("t")
    page.wait_for_selector("#fields input.tag:focus")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # the third token, "Paris"
    page.keyboard.press("Control+a")
    page.keyboard.type("B-location")
    page.keyboard.press("Control+Enter")
    wait_status(page, "label: ner1")
    go_to_queue(page, "near_duplicates")
    assert page.locator("#detail .pair del").first.inner_text() == "sixty"
    assert page.locator("#detail .pair ins").first.inner_text() == "seventy"
    page.screenshot(path=str(SHOTS / "near-duplicates.png"))
    go_to_queue(page, "pii")
    assert sorted(page.locator("#detail mark.pii").all_inner_texts()) == ["+1 415 555 0132",
                                                                         "m.lopez@archive-volunteers.net"]
    page.keyboard.press("g")
    page.wait_for_selector("#figures:not([hidden])")
    page.screenshot(path=str(SHOTS / "review.png"))
    page.keyboard.press("g")

    made = {d.key: d for d in Store(decisions_path(fresh_run)).decisions()}
    assert {k: made[k].action for k in done} == done
    assert made["ner1"].after == {"tags": ["B-person", "O", "B-location", "O", "B-person", "O", "O"]}
    edit = next(d for d in made.values() if d.action == "edit")
    assert edit.after == {"text": "a rewritten note about the meadow, typed with the keyboard only"} and edit.diff
    assert next(d for d in made.values() if d.action == "reject").reason == "off topic"

    # reload: the decisions are kept; the "mine" filter lists them
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    go_to_queue(page, "judge")
    for _ in range(len(page.locator("#f-status option").all())):
        if page.locator("#f-status").input_value() == "mine":
            break
        page.keyboard.press("f")
        page.wait_for_timeout(200)
    page.wait_for_function("() => document.getElementById('page-info').textContent.includes('4 matching')")
    states = page.locator("#items tbody td.state").all_inner_texts()
    assert sorted(states) == ["you: accept", "you: edit", "you: label", "you: reject"]


def test_search_and_bulk_reject_with_the_keyboard(browser: Any, servers: list[Server], fresh_run: Path) -> None:
    servers.append(start_server(fresh_run, ["ann"]))
    page = open_page(browser, servers[0].url("ann"))
    go_to_queue(page, "dropped:min_words")
    page.keyboard.press("/")
    page.keyboard.type("also")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('page-info').textContent.includes('1 matching')")
    page.keyboard.press("R")
    answer(page, "too short to use")
    wait_status(page, "reject: 1 items")
    made = Store(decisions_path(fresh_run)).decisions()
    assert [(d.key, d.action, d.reason, bool(d.bulk)) for d in made] == [("tiny2", "reject", "too short to use", True)]


def test_two_reviewers_at_once(browser: Any, servers: list[Server], fresh_run: Path) -> None:
    servers.append(start_server(fresh_run, ["ann", "bob"], "--per-item", "2", "--sample", "6"))
    ann, bob = (open_page(browser, servers[0].url(r)) for r in ("ann", "bob"))
    for page in (ann, bob):
        go_to_queue(page, "sample")
    for n in range(6):  # turn by turn, both pages open and writing
        for page, reject in ((ann, n in (1, 4)), (bob, n in (1, 2))):
            if reject:
                page.keyboard.press("r")
                answer(page, "not useful")
                wait_status(page, "reject: ")
            else:
                press(page, "a", "accept")
    made = Store(decisions_path(fresh_run)).decisions()
    assert len(made) == 12 and {d.reviewer for d in made} == {"ann", "bob"}
    figures = ann.evaluate("fetch('/api/figures', {headers: {'X-Review-Token': document.querySelector("
                           "'meta[name=review-token]').content}}).then(r => r.json())")
    a = figures["agreement"]
    assert a["items"] == 6 and a["cohen"][0]["items"] == 6
    assert a["cohen"][0]["kappa"] == pytest.approx(0.25)  # p_o 24/36, p_e (4x4 + 2x2)/36 = 20/36: 4/16
    ann.keyboard.press("g")
    ann.wait_for_selector("#figures:not([hidden])")
    assert "Cohen κ ann/bob 0.250" in ann.locator("#figures").inner_text()
    ann.screenshot(path=str(SHOTS / "two-reviewers.png"))


class _Evil(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        page = f"""<!doctype html><html><body>
<form id="f" method="POST" action="{self.target}/api/decide" enctype="text/plain">
<input name='{{"iid": 1, "action": "accept", "x": "' value='"}}'></form>
<script>
fetch("{self.target}/api/decide", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{iid: 1, action: "accept"}})}})
  .finally(() => document.getElementById("f").submit());
</script></body></html>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: Any) -> None:
        pass


def test_requests_without_the_token_and_cross_site_posts_are_refused(browser: Any, servers: list[Server],
                                                                    fresh_run: Path) -> None:
    servers.append(start_server(fresh_run, ["ann"]))
    base = servers[0].base
    stranger = browser.new_context()
    assert stranger.new_page().goto(base + "/").status == 401
    assert stranger.request.get(base + "/api/queues").status == 401
    assert stranger.request.post(base + "/api/decide", data={"iid": 1, "action": "accept"}).status == 401

    victim = browser.new_context()
    page = victim.new_page()
    page.goto(servers[0].url("ann"))  # the reviewer's browser holds the review cookie
    page.wait_for_selector("body[data-ready='1']")
    _Evil.target = base
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    statuses: list[int] = []
    evil_page = victim.new_page()
    evil_page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/api/decide") else None)
    try:
        # 127.0.0.1 on another port: the same site, so the browser sends the review cookie along; the header
        # token and the Origin / Sec-Fetch-Site checks refuse it (403). From localhost: no cookie at all (401).
        for host, refused in (("127.0.0.1", 403), ("localhost", 401)):
            statuses.clear()
            with evil_page.expect_navigation(url=re.compile(r".*/api/decide$"), timeout=30_000):
                evil_page.goto(f"http://{host}:{evil.server_address[1]}/")
            assert statuses and set(statuses) == {refused}, (host, statuses)
            assert "refused" in evil_page.content() or "X-Review-Token" in evil_page.content() or refused == 401
    finally:
        evil.shutdown()
    assert Store(decisions_path(fresh_run)).decisions() == []
