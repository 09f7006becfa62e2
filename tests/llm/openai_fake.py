"""A tiny OpenAI-compatible server on loopback for tests: a script decides each answer.

``script(n, path, body)`` gets the request number (from 0), the path and the JSON body
and returns ``(status, headers, payload)`` -- a dict is sent as JSON, a string as is --
or :data:`CLOSE` (the server closes the connection without answering) or :data:`RESET`
(it resets the connection). Every request is kept in ``requests``.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, str], dict[str, Any] | str]
CLOSE = "close"
RESET = "reset"
Script = Callable[[int, str, dict[str, Any]], Any]


def ok(text: str = "hi there", finish: str = "stop", chat: bool = False) -> Reply:
    """A 200 answer with ``text`` (chat form with ``chat``)."""
    choice: dict[str, Any] = ({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
    return 200, {}, {"choices": [{**choice, "finish_reason": finish}],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 2}}


def prompt_of(body: dict[str, Any]) -> str:
    """The text of a request: its prompt, or its last message's content."""
    return body["prompt"] if "prompt" in body else body["messages"][-1]["content"]


class FakeServer:
    """A loopback server whose answer to the n-th request is ``script(n, path, body)``."""

    def __init__(self, script: Script) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.headers: dict[str, str] = {}
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    n = len(outer.requests)
                    outer.requests.append((self.path, body))
                    outer.headers = dict(self.headers)
                reply = script(n, self.path, body)
                if reply in (CLOSE, RESET):
                    self.close_connection = True
                    if reply == RESET:  # SO_LINGER 0: closing now sends RST instead of FIN
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.rfile.close()  # the last reference besides the socket itself
                        self.connection.close()
                    return
                status, headers, payload = reply
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def prompts(self) -> list[str]:
        """The text of every request received, in order."""
        return [prompt_of(body) for _, body in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
