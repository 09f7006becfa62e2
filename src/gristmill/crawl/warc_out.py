"""The crawl's output files: WARC (warcio, gzip per record, rotated by size), the JSONL index, the crawl log.

Layout under the run directory::

    warc/crawl-00000.warc.gz   a warcinfo record, then a request and a response record per stored page
    warc/crawl-00001.warc.gz   begun once the previous file passed --warc-max-bytes
    index.jsonl                one line per URL requested (see :data:`INDEX_FIELDS`)
    crawl_log.jsonl            one line per URL not stored, per retry and per note, with its reason

Each file is only appended to. :meth:`CrawlOutput.positions` gives their sizes, which the crawler
commits to the frontier together with the state of the URLs written; a resumed crawl cuts each file
back to its committed size and removes WARC files begun after the commit (:meth:`CrawlOutput.open`),
so a page whose commit was lost is neither in the index twice nor in the WARC twice.

The response record holds the decoded body: ``Content-Encoding`` and ``Transfer-Encoding`` are
dropped from the stored HTTP headers and ``Content-Length`` is set to the stored body's length.
"""

from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

__all__ = ["INDEX_FIELDS", "CrawlOutput", "warc_date"]

INDEX_FIELDS = ("url", "status", "content_type", "charset", "length", "sha256", "warc_file", "warc_offset",
                "warc_length", "fetch_time", "depth", "parent", "reason", "detail")
_WARC_NAME = re.compile(r"crawl-(\d{5})\.warc\.gz$")
_DROPPED_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


def warc_date(t: float) -> str:
    """WARC/1.1 date of a wall time, to the microsecond."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CrawlOutput:
    """Append-only writers of the WARC files, the index and the crawl log of one crawl directory."""

    def __init__(self, root: Path, warc_max_bytes: int, software: str, user_agent: str) -> None:
        self.root = Path(root)
        self.warc_dir = self.root / "warc"
        self.warc_max_bytes = warc_max_bytes
        self.software = software
        self.user_agent = user_agent
        self._number = 0
        self._warc: IO[bytes] | None = None
        self._writer: Any = None
        self._index: IO[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def open(cls, root: Path, committed: dict[str, Any] | None, warc_max_bytes: int, software: str,
             user_agent: str) -> "CrawlOutput":
        """Open the files for appending; with ``committed`` (:meth:`positions` of the last commit) cut
        them back to it first. Without it every output file of an earlier crawl is removed."""
        out = cls(root, warc_max_bytes, software, user_agent)
        out.warc_dir.mkdir(parents=True, exist_ok=True)
        committed = committed or {"warc_number": 0, "warc_size": 0, "index_size": 0, "log_size": 0}
        number = int(committed["warc_number"])
        for f in out.warc_dir.iterdir():
            m = _WARC_NAME.match(f.name)
            if m and int(m.group(1)) > number or (m and int(m.group(1)) == number and not committed["warc_size"]):
                f.unlink()
        out._number = number
        for name, size in ((out._warc_path(number), committed["warc_size"]),
                           (out.root / "index.jsonl", committed["index_size"]),
                           (out.root / "crawl_log.jsonl", committed["log_size"])):
            _cut(name, int(size))
        out._index = open(out.root / "index.jsonl", "ab")
        out._log = open(out.root / "crawl_log.jsonl", "ab")
        if committed["warc_size"]:
            out._open_warc(fresh=False)
        return out

    def _warc_path(self, number: int) -> Path:
        return self.warc_dir / f"crawl-{number:05d}.warc.gz"

    def _open_warc(self, fresh: bool) -> None:
        from warcio.warcwriter import WARCWriter

        self._warc = open(self._warc_path(self._number), "ab")
        self._writer = WARCWriter(self._warc, gzip=True, warc_version="1.1")
        if fresh:
            info = {"software": self.software, "format": "WARC File Format 1.1", "http-header-user-agent":
                    self.user_agent, "robots": "obey", "description": "gristmill crawl"}
            record = self._writer.create_warcinfo_record(self._warc_path(self._number).name, info)
            self._writer.write_record(record)

    def _ensure_warc(self) -> None:
        if self._warc is not None and self._warc.tell() >= self.warc_max_bytes:
            self._warc.close()
            self._warc = None
            self._number += 1
        if self._warc is None:
            self._open_warc(fresh=True)

    def write_page(self, url: str, fetched_at: float, request_line: str, request_headers: list[tuple[str, str]],
                   protocol: str, status_line: str, headers: list[tuple[str, str]], body: bytes,
                   ip: str | None = None) -> tuple[str, int, int]:
        """Append the request and response records of one page; returns (WARC file name, offset and
        length of the response record)."""
        from warcio.statusandheaders import StatusAndHeaders

        self._ensure_warc()
        assert self._warc is not None
        date = warc_date(fetched_at)
        stored = [(k, v) for k, v in headers if k.lower() not in _DROPPED_HEADERS]
        stored.append(("Content-Length", str(len(body))))
        extra = {"WARC-Date": date}
        if ip:
            extra["WARC-IP-Address"] = ip
        response = self._writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), warc_headers_dict=dict(extra),
            http_headers=StatusAndHeaders(status_line, stored, protocol=protocol))
        request = self._writer.create_warc_record(
            url, "request", payload=io.BytesIO(b""), warc_headers_dict=dict(extra),
            http_headers=StatusAndHeaders(request_line, request_headers, is_http_request=True))
        request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
        offset = self._warc.tell()
        self._writer.write_record(response)
        length = self._warc.tell() - offset
        self._writer.write_record(request)
        return self._warc_path(self._number).name, offset, length

    def index(self, row: dict[str, Any]) -> None:
        """Append one index line (fields of :data:`INDEX_FIELDS`, in that order; absent ones null)."""
        assert self._index is not None
        line = {k: row.get(k) for k in INDEX_FIELDS}
        line.update({k: v for k, v in row.items() if k not in line})
        self._index.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")

    def log(self, row: dict[str, Any]) -> None:
        """Append one crawl log line."""
        assert self._log is not None
        self._log.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")

    def positions(self) -> dict[str, int]:
        """Flush every file and return their sizes (what a commit records)."""
        for f in (self._warc, self._index, self._log):
            if f is not None:
                f.flush()
        return {"warc_number": self._number, "warc_size": self._warc.tell() if self._warc else 0,
                "index_size": self._index.tell() if self._index else 0,
                "log_size": self._log.tell() if self._log else 0}

    def warc_files(self) -> list[str]:
        """Names of the WARC files written so far, in order."""
        return sorted(f.name for f in self.warc_dir.iterdir() if _WARC_NAME.match(f.name))

    def close(self) -> None:
        for f in (self._warc, self._index, self._log):
            if f is not None:
                f.close()
        self._warc = self._index = self._log = None


def _cut(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (a missing file with size 0 is fine)."""
    if not path.exists():
        if size:
            raise OSError(f"{path}: missing, but the frontier records {size} committed bytes; the crawl "
                          "directory is damaged (start over without --resume)")
        return
    actual = path.stat().st_size
    if actual < size:
        raise OSError(f"{path}: {actual} bytes, but the frontier records {size} committed bytes; the crawl "
                      "directory is damaged (start over without --resume)")
    if actual > size:
        with open(path, "r+b") as f:
            f.truncate(size)
            os.fsync(f.fileno())
