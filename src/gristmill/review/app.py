"""The review web app (Starlette): the page, its static files and a small JSON API over the index and the decisions.

Access: every request needs a reviewer's token: the ``X-Review-Token`` header (the page's script sends
it), the cookie the page sets (``HttpOnly``, ``SameSite=Strict``), or ``?token=`` on a ``GET`` (the URL
``gristmill review`` prints). Without a valid one: 401. A request that changes state (``POST``) must also
carry the token in the header (a cookie alone is refused: a cross-site form cannot set headers), send JSON,
and, when the browser says where it comes from, come from the page's own origin (``Origin``,
``Sec-Fetch-Site``): otherwise 403. On loopback the ``Host`` header must name the server (DNS
rebinding), else 403. Responses forbid framing, sniffing, referrers and (API) caching; the page's
Content-Security-Policy allows only its own script and style.

API (JSON): ``GET /api/session`` (reviewer, settings, shortcuts, options), ``GET /api/queues``,
``GET /api/items?queue=&status=&rule=&where=&q=&min=&max=&sort=&page=&size=``, ``GET /api/items/<iid>``,
``POST /api/decide`` (``{iid, hash, action, reason?, after?, label?, tags?}``; 409 when the row changed
under the reviewer), ``POST /api/bulk`` (the filter plus ``{action, reason?}``: every matching item),
``GET /api/figures``.
"""

from __future__ import annotations

import hmac
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gristmill.review import pages
from gristmill.review.actions import ActionError, make_decision
from gristmill.review.index import ReviewIndex
from gristmill.review.summary import index_figures

__all__ = ["COOKIE", "SHORTCUTS", "TOKEN_HEADER", "ReviewApp", "create_app"]

TOKEN_HEADER = "x-review-token"
COOKIE = "gristmill_review"
MAX_BODY = 4_000_000
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
SHORTCUTS = [
    ("j / ↓", "next item"), ("k / ↑", "previous item"), ("n / p", "next / previous page"),
    ("] / [", "next / previous queue"), ("a", "accept"), ("r", "reject (type the reason, Enter)"),
    ("e", "edit the text (Ctrl+Enter saves, Esc cancels)"), ("l", "change the label (Enter)"),
    ("t", "edit NER tags token by token (Tab moves, Ctrl+Enter saves)"), ("s", "skip"),
    ("b", "send back (note, Enter)"), ("/", "search the text"), ("f", "next status filter"),
    ("o", "next sort order"), ("A", "accept every item the filter matches"),
    ("R", "reject every item the filter matches"), ("g", "show the figures"), ("?", "this list"),
    ("Esc", "cancel, leave a field"),
]
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer",
                    "cross-origin-opener-policy": "same-origin", "cross-origin-resource-policy": "same-origin"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _static(name: str) -> bytes:
    return resources.files("gristmill.review").joinpath("static", name).read_bytes()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={**SECURITY_HEADERS, "cache-control": "no-store"})


class ReviewApp:
    """The app's state: the index, the reviewers' tokens and what the checks accept (see the module doc)."""

    def __init__(self, index: ReviewIndex, tokens: Mapping[str, str], origins: set[str], hosts: set[str] | None,
                 cookie: str = COOKIE) -> None:
        self.index = index
        self.tokens = dict(tokens)  # token -> reviewer
        self.origins = origins
        self.hosts = hosts  # None: any Host header (a server exposed with --host)
        self.cookie = cookie
        self.lock = threading.Lock()  # one writer per process at a time keeps bulk actions in one piece

    # ---- access ---------------------------------------------------------------------------
    def reviewer_of(self, token: str | None) -> str | None:
        if not token:
            return None
        for known, reviewer in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return reviewer
        return None

    def check(self, request: Request) -> tuple[str, str] | Response:
        """``(reviewer, token)`` of an allowed request, else the refusal."""
        if self.hosts is not None and request.headers.get("host", "").lower() not in self.hosts:
            return _error(403, "unexpected Host header")
        header = request.headers.get(TOKEN_HEADER)
        token = header or (request.query_params.get("token") if request.method in ("GET", "HEAD") else None) \
            or request.cookies.get(self.cookie)
        reviewer = self.reviewer_of(token)
        if reviewer is None:
            return _error(401, "a valid review token is required (open the URL gristmill review printed)")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            site = request.headers.get("sec-fetch-site")
            if self.reviewer_of(header) is None:
                return _error(403, "a state-changing request must carry the token in the X-Review-Token header")
            if origin is not None and origin not in self.origins:
                return _error(403, f"cross-site request refused (Origin {origin})")
            if site is not None and site not in ("same-origin", "none"):
                return _error(403, f"cross-site request refused (Sec-Fetch-Site {site})")
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return _error(403, "a state-changing request must send JSON")
        return reviewer, str(token)

    def guarded(self, handler: Callable[..., Response]) -> Callable[[Request], Awaitable[Response]]:
        """The endpoint running ``handler(request, reviewer, token, body)`` in a worker thread (SQLite work never
        blocks the event loop) once :meth:`check` lets the request through; ``body`` is the parsed JSON of a POST."""
        async def endpoint(request: Request) -> Response:
            checked = self.check(request)
            if isinstance(checked, Response):
                return checked
            body: dict[str, Any] = {}
            if request.method == "POST":
                parsed = _parse(await request.body())
                if isinstance(parsed, Response):
                    return parsed
                body = parsed
            response = await run_in_threadpool(handler, request, checked[0], checked[1], body)
            response.headers.update(SECURITY_HEADERS)
            if request.url.path.startswith("/api/"):
                response.headers["cache-control"] = "no-store"
            return response

        return endpoint

    # ---- settings -----------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return self.index.store.settings()

    def _filter(self, params: Mapping[str, Any]) -> pages.Filter:
        def num(key: str) -> float | None:
            value = params.get(key)
            return None if value in (None, "") else float(value)

        return pages.Filter(queue=str(params.get("queue") or ""), status=str(params.get("status") or "todo"),
                            rule=params.get("rule") or None, where=params.get("where") or None,
                            q=params.get("q") or None, min_score=num("min"), max_score=num("max"),
                            sort=str(params.get("sort") or "order"))

    # ---- handlers -----------------------------------------------------------------------------
    def page_html(self, request: Request, reviewer: str, token: str, body: dict[str, Any]) -> Response:
        html = _static("index.html").decode("utf-8").replace("{{TOKEN}}", token).replace(
            "{{REVIEWER}}", _attr(reviewer)).replace("{{RUN}}", _attr(self.index.run.name))
        response = Response(html, media_type="text/html; charset=utf-8",
                            headers={"content-security-policy": CSP, "cache-control": "no-store"})
        response.set_cookie(self.cookie, token, httponly=True, samesite="strict", path="/")
        return response

    def static(self, request: Request, reviewer: str, token: str, body: dict[str, Any]) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return _error(404, "no such file")
        return Response(_static(name), media_type=STATIC[name], headers={"cache-control": "no-cache"})

    def session(self, request: Request, reviewer: str, token: str, body: dict[str, Any]) -> Response:
        return JSONResponse({"reviewer": reviewer, "run": self.index.run.name, "settings": self.settings(),
                             "shortcuts": SHORTCUTS, "statuses": pages.STATUSES, "sorts": pages.SORTS,
                             **self.index.options()})

    def queues(self, request: Request, reviewer: str, token: str, body: dict[str, Any]) -> Response:
        self.index.sync()
        s = self.settings()
        return JSONResponse({"queues": pages.queue_list(self.index, reviewer, int(s["per_item"]))})

    def items(self, request: Request, reviewer: str, token: str, body: dict[str, Any]) -> Response:
        self.index.sync()
        s = self.settings()
        try:
            f = self._filter(request.query_params)
            number, size = int(request.query_params.get("page") or 1), int(request.query_params.get("size") or 50)
        except ValueError as exc:
            return _error(400, str(exc))
        return JSONResponse(pages.page(self.index, f, reviewer, int(s["per_item"]), bool(s["blind"]), number, size))

    def item(self, request: Request, reviewer: str, token: str, body: dict[str, Any]) -> Response:
        self.index.sync()
        try:
            iid = int(request.path_params["iid"])
        except ValueError:
            return _error(400, "item ids are numbers")
        detail = pages.item_detail(self.index, iid, reviewer, bool(self.settings()["blind"]))
        return _error(404, "no such item") if detail is None else JSONResponse(detail)

    def decide(self, request: Request, reviewer: str, token: str, body: dict[str, Any]) -> Response:
        try:
            iid = int(body["iid"])
        except (KeyError, TypeError, ValueError):
            return _error(400, "iid must be an item id")
        with self.index.connect() as conn:
            row = conn.execute("SELECT i.iid, r.key, r.where_, r.hash, i.queue, r.fields FROM items i JOIN rows r ON "
                               "r.rid = i.rid WHERE i.iid = ?", (iid,)).fetchone()
        if row is None:
            return _error(404, "no such item")
        item = {"iid": row[0], "key": row[1], "where": row[2], "hash": row[3], "queue": row[4],
                "fields": json.loads(row[5])}
        if body.get("hash") not in (None, item["hash"]):
            return _error(409, "the row changed since it was shown; reload the page")
        try:
            decision, snapshot = make_decision(item, str(body.get("action")), reviewer, reason=body.get("reason"),
                                               after=body.get("after"), label=body.get("label"), tags=body.get("tags"))
        except ActionError as exc:
            return _error(400, str(exc))
        with self.lock:
            stored = self.index.store.append([decision], snapshot)
            self.index.sync()
        return JSONResponse({"decision": stored[0].to_dict()})

    def bulk(self, request: Request, reviewer: str, token: str, body: dict[str, Any]) -> Response:
        action = str(body.get("action"))
        if action not in ("accept", "reject", "skip", "send_back"):
            return _error(400, "a bulk action is accept, reject, skip or send_back")
        s = self.settings()
        try:
            f = self._filter(body)
        except ValueError as exc:
            return _error(400, str(exc))
        bulk_id = uuid.uuid4().hex[:12]
        with self.lock:
            matched = pages.matching(self.index, f, reviewer, int(s["per_item"]))
            try:
                made = [make_decision(it, action, reviewer, reason=body.get("reason"), bulk=bulk_id) for it in matched]
            except ActionError as exc:
                return _error(400, str(exc))
            snapshots: dict[tuple[str, str], dict[str, Any]] = {}
            for _, snap in made:
                snapshots.update(snap)
            self.index.store.append([d for d, _ in made], snapshots)
            self.index.sync()
        return JSONResponse({"bulk": bulk_id, "decided": len(made)})

    def figures(self, request: Request, reviewer: str, token: str, body: dict[str, Any]) -> Response:
        self.index.sync()
        return JSONResponse(index_figures(self.index))


def _parse(raw: bytes) -> dict[str, Any] | Response:
    """The JSON object of a request body, or the refusal (too large, not JSON, not an object)."""
    if len(raw) > MAX_BODY:
        return _error(413, "request too large")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return _error(400, "the body is not JSON")
    return body if isinstance(body, dict) else _error(400, "the body must be a JSON object")


def _attr(text: str) -> str:
    return (text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;"))


def create_app(index: ReviewIndex, tokens: Mapping[str, str], origins: set[str],
               hosts: set[str] | None, cookie: str = COOKIE) -> Starlette:
    """The Starlette app over ``index`` for the reviewers of ``tokens`` (token -> name); ``origins`` are the page's
    own origins, ``hosts`` the accepted ``Host`` headers (None: any)."""
    app = ReviewApp(index, tokens, origins, hosts, cookie)
    g = app.guarded
    routes = [
        Route("/", g(app.page_html), methods=["GET"]),
        Route("/static/{name}", g(app.static), methods=["GET"]),
        Route("/api/session", g(app.session), methods=["GET"]),
        Route("/api/queues", g(app.queues), methods=["GET"]),
        Route("/api/items", g(app.items), methods=["GET"]),
        Route("/api/items/{iid}", g(app.item), methods=["GET"]),
        Route("/api/decide", g(app.decide), methods=["POST"]),
        Route("/api/bulk", g(app.bulk), methods=["POST"]),
        Route("/api/figures", g(app.figures), methods=["GET"]),
    ]
    starlette = Starlette(routes=routes)
    starlette.state.review = app
    return starlette
