"""The review app's API through Starlette's test client: access checks, queues, pages, decisions, bulk actions,
several reviewers (per-item, blind)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gristmill.review.app import create_app
from gristmill.review.server import prepare

BASE = "http://127.0.0.1:8000"
TOKENS = {"tok-ann": "ann", "tok-bob": "bob"}


def client(run_dir: Path, **settings: Any) -> TestClient:
    prepared = prepare(run_dir, settings or None)
    app = create_app(prepared.index, TOKENS, {BASE}, {"127.0.0.1:8000"})
    return TestClient(app, base_url=BASE)


def as_(token: str) -> dict[str, str]:
    return {"X-Review-Token": token}


def post(c: TestClient, path: str, body: dict[str, Any], token: str = "tok-ann", **headers: str) -> Any:
    return c.post(path, json=body, headers={**as_(token), **headers})


def first(c: TestClient, queue: str, token: str = "tok-ann", **params: Any) -> dict[str, Any]:
    r = c.get("/api/items", params={"queue": queue, **params}, headers=as_(token))
    assert r.status_code == 200, r.text
    return r.json()["items"][0]


def test_access_needs_a_token_and_same_origin_writes(fresh_run: Path) -> None:
    c = client(fresh_run)
    assert c.get("/api/queues").status_code == 401
    assert c.get("/api/queues", headers=as_("nope")).status_code == 401
    assert c.get("/").status_code == 401
    page = c.get("/?token=tok-ann")
    assert page.status_code == 200 and 'content="tok-ann"' in page.text and "ann" in page.text
    assert "SameSite=strict" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert c.get("/api/queues").status_code == 200  # the cookie now
    assert c.get("/static/app.js").status_code == 200 and c.get("/static/nope.js").status_code == 404
    item = first(c, "judge")
    body = {"iid": item["iid"], "hash": item["hash"], "action": "accept"}
    assert c.post("/api/decide", json=body).status_code == 403  # the cookie alone does not write
    assert post(c, "/api/decide", body, Origin="http://evil.example").status_code == 403
    assert post(c, "/api/decide", body, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert c.post("/api/decide", content="iid=1", headers={**as_("tok-ann"), "Content-Type": "text/plain"}
                  ).status_code == 403
    assert c.get("/api/queues", headers={**as_("tok-ann"), "Host": "evil.example"}).status_code == 403
    ok = post(c, "/api/decide", body, Origin=BASE, **{"Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200 and ok.json()["decision"]["reviewer"] == "ann"


def test_queues_pages_filters_and_search(fresh_run: Path) -> None:
    c = client(fresh_run)
    queues = {q["queue"]: q for q in c.get("/api/queues", headers=as_("tok-ann")).json()["queues"]}
    assert {"sample", "judge", "queue:custom", "queue:ner", "pii", "toxicity", "copyright", "contamination",
            "near_duplicates", "quarantine", "dropped:min_words", "dropped:duplicate"} <= set(queues)
    assert queues["judge"]["total"] == queues["judge"]["todo"] == 6
    page = c.get("/api/items", params={"queue": "judge", "size": 4, "page": 2}, headers=as_("tok-ann")).json()
    assert (page["total"], page["pages"], len(page["items"])) == (6, 2, 2)
    scores = [i["score"] for i in c.get("/api/items", params={"queue": "judge", "sort": "score_desc"},
                                        headers=as_("tok-ann")).json()["items"]]
    assert scores == sorted(scores, reverse=True)
    ranged = c.get("/api/items", params={"queue": "judge", "min": 2, "max": 6}, headers=as_("tok-ann")).json()
    assert all(2 <= i["score"] <= 6 for i in ranged["items"]) and ranged["total"] == 3
    found = c.get("/api/items", params={"queue": "toxicity", "status": "all", "q": "referee"},
                  headers=as_("tok-ann")).json()
    assert [i["key"] for i in found["items"]] == ["rude"]
    custom = c.get("/api/items", params={"queue": "queue:custom"}, headers=as_("tok-ann")).json()["items"]
    assert [i["key"] for i in custom] == ["p03", "p05"] and custom[0]["note"] == "low confidence"
    assert c.get("/api/items", params={"queue": "judge", "status": "bogus"}, headers=as_("tok-ann")).status_code == 400
    near = first(c, "near_duplicates")
    detail = c.get(f"/api/items/{near['iid']}", headers=as_("tok-ann")).json()
    assert detail["partner"]["key"] == "long" and ["replace", "sixty", "seventy"] in detail["diff"]
    pii = c.get(f"/api/items/{first(c, 'pii')['iid']}", headers=as_("tok-ann")).json()
    assert {s["type"] for s in pii["spans"]} == {"EMAIL_ADDRESS", "PHONE_NUMBER"}


def test_actions_and_their_checks(fresh_run: Path) -> None:
    c = client(fresh_run)
    item = first(c, "judge")
    base = {"iid": item["iid"], "hash": item["hash"]}
    assert post(c, "/api/decide", {**base, "action": "reject"}).json()["error"] == "a rejection needs a reason"
    assert post(c, "/api/decide", {**base, "action": "edit", "after": {"source": "x"}}).status_code == 400
    assert post(c, "/api/decide", {**base, "action": "explode"}).status_code == 400
    assert post(c, "/api/decide", {**base, "hash": "0" * 16, "action": "accept"}).status_code == 409
    edited = post(c, "/api/decide", {**base, "action": "edit", "after": {"text": "better text"}}).json()["decision"]
    assert edited["before"] == {"text": item["text"]} and edited["after"] == {"text": "better text"}
    assert edited["diff"].startswith("--- text (before)") and edited["hash_after"] != item["hash"]
    ner = first(c, "queue:ner")
    base = {"iid": ner["iid"], "hash": ner["hash"]}
    assert post(c, "/api/decide", {**base, "action": "label", "tags": ["O"]}).status_code == 400
    tags = ["B-person", "O", "B-location", "O", "B-person", "O", "O"]
    assert post(c, "/api/decide", {**base, "action": "label", "tags": tags}).json()["decision"]["after"] == {"tags": tags}
    mine = c.get("/api/items", params={"queue": "judge", "status": "mine"}, headers=as_("tok-ann")).json()
    assert [i["mine"] for i in mine["items"]] == ["edit"]
    skipped = first(c, "judge")
    post(c, "/api/decide", {"iid": skipped["iid"], "action": "skip"})
    assert c.get("/api/items", params={"queue": "judge", "status": "skipped"}, headers=as_("tok-ann")).json()["total"] == 1
    # bulk: every item the filter matches, one decision each, under one bulk id
    r = post(c, "/api/bulk", {"queue": "dropped:min_words", "status": "todo", "action": "reject", "reason": "short"})
    assert r.json()["decided"] == 2
    assert c.get("/api/items", params={"queue": "dropped:min_words"}, headers=as_("tok-ann")).json()["total"] == 0
    assert post(c, "/api/bulk", {"queue": "judge", "action": "edit"}).status_code == 400
    figures = c.get("/api/figures", headers=as_("tok-ann")).json()
    assert figures["precision"]["dropped:min_words"]["value"] == 1.0 and figures["decisions"] == 5
    # one reviewer per row: what ann decided is done for bob too; her skip is hers alone
    for token, judge_todo in (("tok-ann", 4), ("tok-bob", 5)):
        queues = {q["queue"]: q for q in c.get("/api/queues", headers=as_(token)).json()["queues"]}
        assert (queues["judge"]["todo"], queues["judge"]["done"]) == (judge_todo, 1)
        assert queues["dropped:min_words"]["todo"] == 0
        page = c.get("/api/items", params={"queue": "judge"}, headers=as_(token)).json()
        assert page["total"] == len(page["items"]) == judge_todo


def test_two_reviewers_per_item_and_blind(fresh_run: Path) -> None:
    c = client(fresh_run, per_item=2, blind=True)
    item = first(c, "judge")
    post(c, "/api/decide", {"iid": item["iid"], "action": "reject", "reason": "no"})
    # still in bob's queue (two reviewers wanted), gone from ann's; bob does not see ann's verdict (blind)
    bob_first = first(c, "judge", "tok-bob")
    assert bob_first["key"] == item["key"] and bob_first["others"] == {} and bob_first["outcome"] is None
    detail = c.get(f"/api/items/{item['iid']}", headers=as_("tok-bob")).json()
    assert detail["decisions"] == []
    assert first(c, "judge")["key"] != item["key"]
    post(c, "/api/decide", {"iid": item["iid"], "action": "accept"}, token="tok-bob")
    done = c.get("/api/items", params={"queue": "judge", "status": "done"}, headers=as_("tok-ann")).json()
    assert [i["key"] for i in done["items"]] == [item["key"]]
    post(c, "/api/decide", {"iid": item["iid"], "action": "send_back", "reason": "disagree: look again"}, token="tok-ann")
    back = c.get("/api/items", params={"queue": "judge", "status": "sent_back"}, headers=as_("tok-bob")).json()
    assert back["items"][0]["sent_back"] == {"by": "ann", "note": "disagree: look again"}
    agreement = c.get("/api/figures", headers=as_("tok-ann")).json()["agreement"]
    assert agreement["items"] == 0  # the verdicts were voided by the send-back


@pytest.mark.parametrize("size", [0, 5])
def test_the_sample_is_drawn_once(fresh_run: Path, size: int) -> None:
    c = client(fresh_run, sample_size=size)
    queues = {q["queue"]: q["total"] for q in c.get("/api/queues", headers=as_("tok-ann")).json()["queues"]}
    assert queues.get("sample", 0) == size
    again = client(fresh_run, sample_size=9)  # a later size does not draw again
    queues = {q["queue"]: q["total"] for q in again.get("/api/queues", headers=as_("tok-ann")).json()["queues"]}
    assert queues.get("sample", 0) == (size or 9)
