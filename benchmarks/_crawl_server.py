"""A fast local web server for bench_crawl.py: generated sites on loopback addresses, asyncio, keep-alive.

    python benchmarks/_crawl_server.py '<json: {"sites": [{"host", "pages", "robots", "latency"}]}>'

Prints one line ``ready <host> <port>`` per site, then serves until killed. Each site serves
``/robots.txt``, pages ``/p/0`` .. ``/p/<pages-1>`` (about 4 KB of text each, 8 links to other
pages and one link under ``/never/``) and a 404 for anything else; ``latency`` seconds are waited
before each page. ``GET /__log`` returns (and clears) what the site got since the last call:
``[[path, arrival (time.monotonic, system-wide on Linux), done], ...]`` and the most requests it
answered at once. Standard library only, so every crawler's venv can start it.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

WORDS = ("the of and to in is was for that with as on by at from his her which are be this had not but "
         "river mill grain stone water wheel flour miller wind village harvest field season bread market "
         "road bridge winter summer light shadow morning evening story people history letter").split()


def page(i: int, n: int, host: str) -> bytes:
    rng = random.Random(i)
    text = " ".join(rng.choice(WORDS) for _ in range(600))
    targets = [j for j in (2 * i + 1, 2 * i + 2) if j < n] + [rng.randrange(n) for _ in range(6)]
    links = "".join(f'<li><a href="/p/{j}">page {j}</a></li>' for j in targets)
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{host}: page {i}</title></head><body>"
            f"<h1>Page {i}</h1><p>{text}</p><ul>{links}<li><a href='/never/{i}'>no</a></li></ul>"
            "</body></html>").encode()


class SiteServer:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.pages = [page(i, spec["pages"], spec["host"]) for i in range(spec["pages"])]
        self.robots = spec.get("robots", "User-agent: *\nDisallow: /never/\n").encode()
        self.latency = float(spec.get("latency", 0))
        self.log: list[list[Any]] = []
        self.active = self.max_active = 0

    def answer(self, target: str) -> tuple[int, bytes, str]:
        if target == "/robots.txt":
            return 200, self.robots, "text/plain"
        if target.startswith("/p/") and target[3:].isdigit() and int(target[3:]) < len(self.pages):
            return 200, self.pages[int(target[3:])], "text/html; charset=utf-8"
        return 404, b"not found", "text/plain"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.monotonic()
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
                if target == "/__log":
                    body = json.dumps({"log": self.log, "max_active": self.max_active}).encode()
                    self.log, self.max_active = [], 0
                    status, ctype = 200, "application/json"
                else:
                    self.active += 1
                    self.max_active = max(self.max_active, self.active)
                    entry = [target, arrived, None]
                    self.log.append(entry)
                    if self.latency and target != "/robots.txt":
                        await asyncio.sleep(self.latency)
                    status, body, ctype = self.answer(target)
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                             % (status, b"OK" if status == 200 else b"Not Found", ctype.encode(), len(body)) + body)
                await writer.drain()
                if target != "/__log":
                    entry[2] = time.monotonic()
                    self.active -= 1
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


async def main(spec: dict[str, Any]) -> None:
    servers = []
    for site in spec["sites"]:
        s = SiteServer(site)
        server = await asyncio.start_server(s.handle, site["host"], site.get("port", 0), backlog=512)
        servers.append(server)
        print(f"ready {site['host']} {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
