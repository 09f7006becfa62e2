"""One HTTP GET with the crawl's limits, on an ``httpx.AsyncClient``.

:func:`fetch` never raises for what a server or the network does; it returns a :class:`Fetched`
saying what happened:

* an answer: status, headers (as received), the decoded body (httpx undoes gzip / deflate / br),
  the request's headers as sent, the peer's IP address when the connection tells it;
* a body not read, with ``skip`` set: the media type is not accepted (``content-type``; a missing
  ``Content-Type`` is sniffed from the first bytes), or ``Content-Length`` says it is longer than
  the limit, or reading passed the limit (``size``: reading stops there and the connection is
  closed, so a huge page costs at most the limit);
* no answer: ``error`` names the timeout or network error (retryable) or the refused URL.

The whole request, body included, must finish within ``timeout`` seconds (a page trickling bytes
slowly is cut off like one that never answers). Redirects are not followed here (the crawler queues
the target as a URL of its own) except for robots.txt (``follow`` 5 hops, as RFC 9309 asks).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

__all__ = ["Fetched", "fetch", "media_type", "sniff"]


@dataclass
class Fetched:
    """What one request gave."""

    url: str
    started: float  # wall time the request was sent
    status: int | None = None
    reason_phrase: str = ""
    http_version: str = "HTTP/1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    request_line: str = ""
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    content_type: str = ""  # bare media type, lower case ('' when none and nothing sniffed)
    charset: str | None = None  # from Content-Type
    length: int | None = None  # body bytes read (or Content-Length when the body was not read)
    skip: tuple[str, str] | None = None  # (reason, detail) when the body was not kept
    error: str | None = None  # no answer: what went wrong
    retryable: bool = False  # error is a timeout or a network error
    ip: str | None = None
    final_url: str = ""  # after followed redirects (robots.txt only)
    seconds: float = 0.0

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def retry_after(self) -> float | None:
        """Seconds a ``Retry-After`` header asks to wait (delta or HTTP date), if any."""
        value = self.header("retry-after")
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """``text/html; charset=UTF-8`` → ``('text/html', 'utf-8')``."""
    if not content_type:
        return "", None
    main, _, params = content_type.partition(";")
    charset = None
    for p in params.split(";"):
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset" and v.strip():
            charset = v.strip().strip("\"'").lower()
    return main.strip().lower(), charset


def sniff(head: bytes) -> str:
    """A media type for a body served without ``Content-Type``, from its first bytes (never reads more)."""
    start = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(b"%pdf-"):
        return "application/pdf"
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<title", b"<p", b"<div")):
        return "text/html"
    if start.startswith(b"<?xml"):
        return "text/xml"
    if b"\x00" in head[:1024]:
        return "application/octet-stream"
    try:
        head[:1024].decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head[:1024]) - 4:  # not just a character cut at the end
            return "application/octet-stream"
    return "text/plain"


def _peer(response: httpx.Response) -> str | None:
    stream = response.extensions.get("network_stream")
    try:
        addr = stream.get_extra_info("server_addr") if stream is not None else None
    except Exception:  # noqa: BLE001 - a transport without the information
        return None
    return str(addr[0]) if isinstance(addr, tuple) and addr else None


async def fetch(client: httpx.AsyncClient, url: str, *, timeout: float, max_bytes: int,
                accept: Callable[[str], bool] | None = None, follow: int = 0, truncate: bool = False,
                turn: Callable[[], Awaitable[None]] | None = None, sent: Callable[[], None] | None = None) -> Fetched:
    """GET ``url`` under the limits (see the module doc); ``accept(media_type)`` False skips the body;
    ``truncate``: keep the first ``max_bytes`` of a longer body instead of skipping it (robots.txt);
    ``turn``: awaited before the request (the host's rate limit; not part of ``timeout``); ``sent``:
    called when the request's headers are written, once the connection is made."""
    if turn is not None:
        await turn()
    got = Fetched(url=url, started=time.time(), final_url=url)
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await _get(client, got, max_bytes, accept, follow, truncate, _tracer(sent))
    except (TimeoutError, httpx.TimeoutException) as exc:
        got.error, got.retryable = f"timeout after {timeout:g}s" if isinstance(exc, TimeoutError) else \
            f"timeout ({type(exc).__name__})", True
    except httpx.DecodingError as exc:
        got.error = f"undecodable body ({exc})"
    except (httpx.TransportError, OSError) as exc:  # connection refused / reset, protocol errors, DNS
        detail = str(exc)
        got.error, got.retryable = f"network error ({type(exc).__name__}{': ' + detail if detail else ''})", True
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        got.error = f"invalid URL ({exc})"
    got.seconds = time.monotonic() - t0
    return got


Tracer = Callable[[str, dict[str, object]], Awaitable[None]]


def _tracer(sent: Callable[[], None] | None) -> Tracer | None:
    """httpcore's ``trace`` extension calling ``sent`` when the request headers start going out."""
    if sent is None:
        return None

    async def trace(name: str, info: dict[str, object]) -> None:
        if name.endswith("send_request_headers.started"):
            sent()

    return trace


async def _get(client: httpx.AsyncClient, got: Fetched, max_bytes: int, accept: Callable[[str], bool] | None,
               follow: int, truncate: bool, trace: Tracer | None) -> None:
    url = got.url
    for _ in range(follow + 1):
        async with client.stream("GET", url, extensions={"trace": trace} if trace else None) as resp:
            if resp.is_redirect and follow and resp.headers.get("location"):
                url = str(resp.url.join(resp.headers["location"]))
                continue
            await _read(resp, got, max_bytes, accept, truncate)
            got.final_url = str(resp.url)
            return
    got.status, got.error = None, f"more than {follow} redirects"


async def _read(resp: httpx.Response, got: Fetched, max_bytes: int, accept: Callable[[str], bool] | None,
                truncate: bool) -> None:
    req = resp.request
    target = req.url.raw_path.decode("ascii", errors="replace")
    got.request_line = f"{req.method} {target} {resp.http_version}"
    got.request_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in req.headers.raw]
    got.status, got.reason_phrase, got.http_version = resp.status_code, resp.reason_phrase, resp.http_version
    got.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers.raw]
    got.ip = _peer(resp)
    got.content_type, got.charset = media_type(resp.headers.get("content-type"))
    declared = resp.headers.get("content-length")
    if declared and declared.strip().isdigit():
        got.length = int(declared)
    if not 200 <= resp.status_code < 300:
        return  # the body of an error or a redirect is not kept
    if got.content_type and accept is not None and not accept(got.content_type):
        got.skip = ("content-type", got.content_type)
        return
    if got.length is not None and got.length > max_bytes and "content-encoding" not in resp.headers and not truncate:
        got.skip = ("size", f"Content-Length {got.length:,} > {max_bytes:,} bytes")
        return
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        if not got.content_type:
            got.content_type = sniff(chunk if not chunks else b"".join(chunks) + chunk)
            if accept is not None and not accept(got.content_type):
                got.skip = ("content-type", f"{got.content_type} (sniffed; no Content-Type)")
                return
        size += len(chunk)
        if size > max_bytes and truncate:
            chunks.append(chunk[:max_bytes - size + len(chunk)])
            break
        if size > max_bytes:
            got.length = size
            got.skip = ("size", f"body passed {max_bytes:,} bytes; reading stopped")
            return
        chunks.append(chunk)
    got.body = b"".join(chunks)
    got.length = len(got.body)
    if not got.content_type:  # an empty body without Content-Type
        got.content_type = sniff(got.body)
        if accept is not None and not accept(got.content_type):
            got.body, got.skip = None, ("content-type", f"{got.content_type} (sniffed; no Content-Type)")
