"""A fixture web site on a loopback address, served from a thread, that records every request it gets.

:class:`Site` serves ``routes``: path (with query) -> a function of the :class:`Site` and the request
giving a :class:`Answer`. :func:`fixture_site` builds the site the crawl tests use (robots.txt rules,
redirect loops, 404 / 500 / 503-once, slow and trickling pages, huge pages, binary files, wrong and
missing charsets, duplicate pages, links to outside hosts, sitemaps). :func:`generated_site` builds
a site of N linked pages (the kill-and-resume test and the benchmark).
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Answer", "Hit", "Site", "fixture_site", "generated_site"]


@dataclass
class Answer:
    """One response: ``body`` bytes or an iterable of chunks (sent as they come, close-delimited when
    ``length`` is None and the body is chunks)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    length: int | None = -1  # Content-Length to send: -1 the body's length, None none (close-delimited)


@dataclass
class Hit:
    """A request the site received."""

    path: str
    user_agent: str
    start: float  # time.monotonic() when the request line was read
    served: bool = False  # the whole answer was written
    sent: int = 0  # body bytes written


Route = Callable[["Site", Hit], Answer]


def html(body: str, charset: str | None = "utf-8", status: int = 200, encoding: str = "utf-8",
         **headers: str) -> Answer:
    ctype = "text/html" + (f"; charset={charset}" if charset else "")
    return Answer(status, body.encode(encoding), {"Content-Type": ctype, **headers})


def redirect(location: str, status: int = 302) -> Answer:
    return Answer(status, b"", {"Location": location})


class Site:
    """Serve ``routes`` on ``host`` (a loopback address) from a thread; ``hits`` lists every request."""

    def __init__(self, routes: dict[str, Route], host: str = "127.0.0.1") -> None:
        self.routes = routes
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.hold_at: int | None = None  # the request with this number (1-based) waits for `release`
        self.held = threading.Event()  # set when that request arrived
        self.release = threading.Event()
        self.active = self.max_active = 0  # requests being answered now / at most at once
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                hit = Hit(self.path, self.headers.get("User-Agent", ""), time.monotonic())
                with site.lock:
                    site.hits.append(hit)
                    number = len(site.hits)
                    site.active += 1
                    site.max_active = max(site.max_active, site.active)
                try:
                    if number == site.hold_at:
                        site.held.set()
                        site.release.wait()
                    route = site.routes.get(self.path)
                    answer = route(site, hit) if route else Answer(404, b"not found", {"Content-Type": "text/plain"})
                    self._send(answer, hit)
                    hit.served = True
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    self.close_connection = True
                finally:
                    with site.lock:
                        site.active -= 1

            def _send(self, answer: Answer, hit: Hit) -> None:
                if answer.delay:
                    time.sleep(answer.delay)
                body = answer.body
                chunks = [body] if isinstance(body, bytes) else body
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                if answer.length == -1:
                    self.send_header("Content-Length", str(len(body) if isinstance(body, bytes) else 0))
                elif answer.length is not None:
                    self.send_header("Content-Length", str(answer.length))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    hit.sent += len(chunk)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "Site":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def paths(self) -> list[str]:
        with self.lock:
            return [h.path for h in self.hits]

    def served(self) -> list[str]:
        with self.lock:
            return [h.path for h in self.hits if h.served]


def page(*links: str, title: str = "page", text: str = "") -> str:
    items = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>{text or title}</p>" \
           f"<ul>{items}</ul></body></html>"


def _static(answer: Answer) -> Route:
    return lambda site, hit: answer


def _once_then(first: Answer, then: Answer) -> Route:
    state = {"n": 0}

    def route(site: Site, hit: Hit) -> Answer:
        state["n"] += 1
        return first if state["n"] == 1 else then

    return route


def _trickle(total_s: float, step: float) -> Iterable[bytes]:
    yield b"<html><body>"
    end = time.monotonic() + total_s
    while time.monotonic() < end:
        time.sleep(step)
        yield b"."


def _huge(total: int, chunk: int = 64 * 1024) -> Iterable[bytes]:
    block = b"<p>" + b"x" * (chunk - 7) + b"</p>\n"
    for _ in range(total // chunk):
        yield block


def fixture_site(outside: str, host: str = "127.0.0.1") -> Site:
    """The crawl tests' site; ``outside``: the base URL of a second site that must get no request."""
    routes: dict[str, Route] = {}
    site = Site(routes, host)
    b = site.base
    links = ["/a.html", "/private/secret.html", "/private/open.html", "/file.secret", "/loop/a", "/self",
             "/chain/0", "/moved", "/missing", "/broken", "/flaky", "/slow", "/trickle", "/huge", "/huge-stream",
             "/image.png", "/blob", "/latin1.html", "/nocharset.html", "/metacharset.html", "/dup1.html",
             "/dup2.html", "/noindex.html", "/nofollow.html", "/deep/1", "/excluded/page.html", "/plain.txt",
             "/doc.pdf", "/xrobots.html",
             f"{outside}/from-fixture", "http://example.com/away", f"http://localhost:{site.port}/a.html",
             "mailto:someone@example.com", "javascript:void(0)", "ftp://example.com/f",
             "/A.html#top", "/a.html?utm_source=news&utm_medium=mail", "/b.html?z=1&a=2", "/b.html?a=2&z=1#x",
             "HTTP://127.0.0.1:%d/c.html" % site.port]
    robots = ("User-agent: *\nDisallow: /private/\nAllow: /private/open.html\nDisallow: /*.secret$\n\n"
              "User-agent: otherbot\nDisallow: /\n\nSitemap: " + b + "/sitemap.xml\n")
    index = (f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<sitemap><loc>{b}/sitemap-pages.xml</loc></sitemap><sitemap><loc>{b}/sitemap-more.xml.gz</loc>"
             "</sitemap></sitemapindex>")
    urlset = ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
              f"<url><loc>{b}/from-sitemap.html</loc><lastmod>2024-01-01</lastmod></url>"
              f"<url><loc>{b}/private/in-sitemap.html</loc></url><url><loc>{outside}/from-sitemap</loc></url>"
              f"<url><loc>{b}/a.html</loc></url></urlset>")
    more = gzip.compress(('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                          f"<url><loc>{b}/from-gz-sitemap.html</loc></url></urlset>").encode())
    dup = page("/c.html", title="same", text="the very same page under two URLs")
    deep = {f"/deep/{i}": _static(html(page(f"/deep/{i + 1}", title=f"deep {i}"))) for i in range(1, 9)}
    routes.update({
        "/robots.txt": _static(Answer(200, robots.encode(), {"Content-Type": "text/plain"})),
        "/": _static(html(page(*links, title="home"))),
        "/a.html": _static(html(page("/b.html", "../c.html", "/a.html#frag", title="a"))),
        "/A.html": _static(html(page(title="capital A"))),
        "/b.html?a=2&z=1": _static(html(page(title="b with query"))),
        "/b.html": _static(html(page("c.html", title="b"))),
        "/c.html": _static(html(page(title="c"))),
        "/private/open.html": _static(html(page(title="open in private"))),
        "/private/secret.html": _static(html(page(title="secret"))),
        "/private/in-sitemap.html": _static(html(page(title="secret in sitemap"))),
        "/file.secret": _static(html(page(title="wildcard secret"))),
        "/loop/a": _static(redirect("/loop/b")),
        "/loop/b": _static(redirect(b + "/loop/a", 301)),
        "/self": _static(redirect("/self", 301)),
        **{f"/chain/{i}": _static(redirect(f"/chain/{i + 1}")) for i in range(9)},
        "/chain/9": _static(html(page(title="end of chain"))),
        "/moved": _static(redirect("/moved-here.html", 301)),
        "/moved-here.html": _static(html(page(title="moved here"))),
        "/broken": _static(Answer(500, b"boom", {"Content-Type": "text/plain"})),
        "/flaky": _once_then(Answer(503, b"busy", {"Content-Type": "text/plain", "Retry-After": "0"}),
                             html(page(title="flaky, fine on retry"))),
        "/slow": _static(Answer(200, b"<html>late</html>", {"Content-Type": "text/html"}, delay=3.0)),
        "/trickle": lambda site, hit: Answer(200, _trickle(4.0, 0.1), {"Content-Type": "text/html"}, length=None),
        "/huge": lambda site, hit: Answer(200, _huge(20 * 2**20), {"Content-Type": "text/html"},
                                          length=20 * 2**20 - 20 * 2**20 % (64 * 1024)),
        "/huge-stream": lambda site, hit: Answer(200, _huge(20 * 2**20), {"Content-Type": "text/html"}, length=None),
        "/image.png": _static(Answer(200, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, {"Content-Type": "image/png"})),
        "/blob": _static(Answer(200, b"\x00\x01\x02\x03binary\xff\xfe" * 100, {})),
        "/latin1.html": _static(html(page(title="café crème"), charset="utf-8", encoding="latin-1")),
        "/nocharset.html": _static(html(page(title="no charset"), charset=None)),
        "/metacharset.html": _static(Answer(200, '<html><head><meta charset="iso-8859-1"><title>meta</title></head>'
                                           '<body>déjà vu</body></html>'.encode("latin-1"),
                                           {"Content-Type": "text/html"})),
        "/dup1.html": _static(html(dup)),
        "/dup2.html": _static(html(dup)),
        "/noindex.html": _static(html('<html><head><meta name="robots" content="noindex"></head><body>'
                                      '<a href="/from-noindex.html">x</a></body></html>')),
        "/from-noindex.html": _static(html(page(title="linked from noindex"))),
        "/nofollow.html": _static(html('<html><head><meta name="robots" content="nofollow"></head><body>'
                                       '<a href="/only-from-nofollow.html">x</a></body></html>')),
        "/only-from-nofollow.html": _static(html(page(title="must not be fetched"))),
        "/xrobots.html": _static(html(page(title="x-robots"), **{"X-Robots-Tag": "noindex"})),
        **deep,
        "/excluded/page.html": _static(html(page(title="excluded"))),
        "/plain.txt": _static(Answer(200, b"plain text file\n", {"Content-Type": "text/plain; charset=utf-8"})),
        "/doc.pdf": _static(Answer(200, b"%PDF-1.4\n%fake\n", {"Content-Type": "application/pdf"})),
        "/from-sitemap.html": _static(html(page(title="listed in the sitemap"))),
        "/from-gz-sitemap.html": _static(html(page(title="listed in the gzipped sitemap"))),
        "/sitemap.xml": _static(Answer(200, index.encode(), {"Content-Type": "application/xml"})),
        "/sitemap-pages.xml": _static(Answer(200, urlset.encode(), {"Content-Type": "application/xml"})),
        "/sitemap-more.xml.gz": _static(Answer(200, more, {"Content-Type": "application/gzip"})),
    })
    return site


def generated_site(n: int, host: str = "127.0.0.1", fanout: int = 8, size: int = 2000,
                   robots: str = "User-agent: *\nDisallow: /never/\n") -> Site:
    """``n`` pages ``/p/0`` .. ``/p/{n-1}``, each linking to ``fanout`` others (and one disallowed link);
    every page is reachable from ``/p/0`` (page i links to 2i+1 and 2i+2 among others)."""
    routes: dict[str, Route] = {}
    site = Site(routes, host)
    filler = ("lorem ipsum dolor sit amet " * (size // 27 + 1))[:size]
    routes["/robots.txt"] = _static(Answer(200, robots.encode(), {"Content-Type": "text/plain"}))
    for i in range(n):
        targets = [j for j in (2 * i + 1, 2 * i + 2) if j < n] + [(i * 7 + k * 13) % n for k in range(fanout - 2)]
        body = page(*(f"/p/{j}" for j in targets), f"/never/{i}", title=f"page {i}", text=f"{i} {filler}")
        routes[f"/p/{i}"] = _static(html(body))
    return site
