"""URL canonicalisation: one spelling per resource, so the frontier fetches it once.

:func:`canonicalize` resolves a link against its page and rewrites it:

* scheme and host lower-cased, the host IDNA-encoded (``bücher.de`` → ``xn--bcher-kva.de``), a
  trailing dot dropped from the host; the default port (``:80`` for http, ``:443`` for https) dropped;
* user name and password dropped (credentials never go into the frontier or the WARC);
* the fragment dropped (``#section`` names a part of the same page);
* the path: ``.`` and ``..`` segments resolved, percent-escapes upper-cased, escapes of unreserved
  characters decoded (``%7E`` → ``~``), characters that must be escaped escaped (a space → ``%20``);
* trailing slash rule: an empty path becomes ``/``; any other path keeps its trailing slash or its
  absence (``/docs`` and ``/docs/`` are two resources to HTTP; a server that serves the same page
  under both is caught by the content hash instead);
* the query: parameters matching ``drop_params`` (tracking and session parameters by default:
  ``utm_*``, ``gclid``, ``fbclid``, ``jsessionid``, ...) dropped, the rest sorted by name then value
  (order-dependent queries are rare and lose their order), an empty query (``?``) dropped.

Only ``http`` and ``https`` URLs are canonicalised; others (``mailto:``, ``javascript:``, ``ftp:``)
come back as :class:`NotCrawlable` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit, urlunsplit

__all__ = ["DEFAULT_DROP_PARAMS", "NotCrawlable", "canonicalize", "host_of", "in_domains", "origin_of"]

DEFAULT_DROP_PARAMS = (r"utm_[a-z_]+|gclid|dclid|fbclid|msclkid|yclid|mc_cid|mc_eid|_ga|_gl|igshid|ref_src"
                       r"|jsessionid|phpsessid|aspsessionid[a-z]*|sessionid|sid")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 unreserved characters are never escaped; these are kept as they are in a path / query
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/:@!$'()*+,;-._~?"
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_PARAM = re.compile(r";(jsessionid|phpsessid|sid)=[^/?#;]*", re.I)


@dataclass(frozen=True)
class NotCrawlable:
    """A link that is no http(s) URL, or is malformed: ``reason`` is ``scheme`` or ``malformed``."""

    url: str
    reason: str
    detail: str


def _normalise_escapes(text: str, safe: str) -> str:
    """Upper-case escapes, decode escapes of unreserved characters, escape what must be escaped."""
    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    text = _ESCAPE.sub(fix, text)
    # escape everything else that is not allowed, keeping the (now canonical) escapes as they are
    return quote(text, safe=safe + "%")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
            continue
        if seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def _host(parts: SplitResult) -> str:
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError("no host")
    if ":" in host:  # IPv6 literal
        return f"[{host}]"
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    return host.lower()


def canonicalize(url: str, base: str | None = None,
                 drop_params: re.Pattern[str] | str | None = DEFAULT_DROP_PARAMS) -> str | NotCrawlable:
    """The canonical form of ``url`` (resolved against ``base`` when given), or :class:`NotCrawlable`.

    See the module doc for every rewrite. ``drop_params``: a regular expression that a query
    parameter's whole name (case-insensitive) must match to be dropped; None keeps every parameter.
    """
    raw = url.strip()
    try:
        if base is not None:
            raw = urljoin(base, raw)
        parts = urlsplit(raw)
    except ValueError as exc:
        return NotCrawlable(url, "malformed", str(exc))
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return NotCrawlable(url, "scheme", f"{scheme or 'no'} scheme")
    try:
        host = _host(parts)
        port = parts.port
    except (ValueError, UnicodeError) as exc:
        return NotCrawlable(url, "malformed", str(exc) or "bad host")
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _PATH_PARAM.sub("", parts.path)
    path = _remove_dot_segments(_normalise_escapes(path, _PATH_SAFE)) if path else "/"
    query = _canonical_query(parts.query, drop_params)
    return urlunsplit((scheme, netloc, path, query, ""))


def _canonical_query(query: str, drop_params: re.Pattern[str] | str | None) -> str:
    if not query:
        return ""
    drop = re.compile(drop_params, re.I) if isinstance(drop_params, str) else drop_params
    pairs = []
    for chunk in query.split("&"):
        if not chunk:
            continue
        name, eq, value = chunk.partition("=")
        if drop is not None and drop.fullmatch(unquote(name.replace("+", " "))):
            continue
        pairs.append((_normalise_escapes(name, _QUERY_SAFE), eq, _normalise_escapes(value, _QUERY_SAFE + "=")))
    pairs.sort(key=lambda p: (p[0], p[2]))
    return "&".join(n + eq + v for n, eq, v in pairs)


def host_of(url: str) -> str:
    """The host name of a canonical URL (no port): the unit of the per-host rate limit."""
    return urlsplit(url).hostname or ""


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a canonical URL: the unit robots.txt applies to (RFC 9309)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def in_domains(host: str, domains: tuple[str, ...]) -> bool:
    """True when ``host`` is one of ``domains`` or a subdomain of one (``docs.example.org`` is in
    ``example.org``); a domain written with a leading dot (``.example.org``) allows subdomains only."""
    for d in domains:
        if d.startswith("."):
            if host.endswith(d):
                return True
        elif host == d or host.endswith("." + d):
            return True
    return False

