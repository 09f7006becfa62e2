"""The reasons a URL is not stored, as the crawl log and the index write them, and the log's outcomes."""

from __future__ import annotations

__all__ = ["NOTES", "OUTCOMES", "REASONS"]

# reason -> what it means. "skipped": never requested; the others were requested.
REASONS: dict[str, str] = {
    "robots-disallow": "skipped: robots.txt forbids it, or robots.txt was unreachable (429, 5xx, no answer)",
    "off-domain": "skipped: its host is outside the allowed domains",
    "depth": "skipped: more links away from a seed than --max-depth",
    "path-excluded": "skipped: its path matches an --exclude pattern, or no --include pattern",
    "scheme": "skipped: not an http(s) URL (mailto:, javascript:, ftp:, ...)",
    "malformed": "skipped: the link cannot be parsed as a URL",
    "url-too-long": "skipped: longer than --max-url-length",
    "redirect": "redirected: the target is queued as a URL of its own",
    "redirect-loop": "failed: redirects back to a URL of its own redirect chain",
    "too-many-redirects": "failed: more redirects in a row than --max-redirects",
    "http-error": "failed: a 4xx or 5xx answer (5xx and 429 after the retries)",
    "fetch-error": "failed: a timeout or network error after the retries, or a body that cannot be decoded",
    "content-type": "failed: a media type outside --content-type (the body is not read)",
    "size": "failed: longer than --max-bytes (reading stops at the limit)",
    "duplicate-content": "failed: the same body (sha256) is stored under another URL",
    "meta-noindex": "failed: the page asks not to be indexed (meta robots or X-Robots-Tag noindex)",
}

# crawl log lines that are no final word on a URL
NOTES: dict[str, str] = {
    "retry": "a 5xx, 429, timeout or network error: tried again after the backoff",
    "refetch": "was being fetched when the last crawl stopped: fetched again",
    "charset-missing": "stored; no charset declared (read as UTF-8 or windows-1252 for links)",
    "charset-unknown": "stored; the declared charset has no codec",
    "charset-mismatch": "stored; the body is not valid in the declared charset",
    "robots": "robots.txt of an origin was read (status, crawl delay)",
    "sitemap": "a sitemap was read (pages and sitemaps it lists)",
    "sitemap-error": "a sitemap could not be read completely",
}

OUTCOMES = ("skipped", "failed", "redirected", "note")
