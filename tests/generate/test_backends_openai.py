"""The HTTP backend against tiny loopback servers: retries, Retry-After, timeouts, concurrency, rate limit."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gristmill.generate.backends import UnsupportedDecoding, create_backend
from gristmill.generate.backends.openai_http import retry_after
from gristmill.generate.types import Decoding

Reply = tuple[int, dict[str, str], dict[str, Any] | str]


def _ok(text: str = "hi there", finish: str = "stop") -> Reply:
    return 200, {}, {"choices": [{"text": text, "finish_reason": finish}],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 2}}


class _Server:
    """A loopback server whose answer to the n-th request is ``script(n, path, body)``."""

    def __init__(self, script: Callable[[int, str, dict[str, Any]], Reply]) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    n = len(outer.requests)
                    outer.requests.append((self.path, body))
                    outer.headers = dict(self.headers)
                status, headers, payload = script(n, self.path, body)
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
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., _Server]]:
    servers: list[_Server] = []

    def start(script: Callable[[int, str, dict[str, Any]], Reply]) -> _Server:
        servers.append(_Server(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _backend(url: str, **kw: Any) -> Any:
    return create_backend({"type": "openai", "base_url": url, "backoff_s": 0.01, **kw})


def test_429_then_200_is_retried_honouring_retry_after(serve: Callable[..., _Server]) -> None:
    server = serve(lambda n, path, body: (429, {"Retry-After": "0.3"}, "slow down") if n == 0 else _ok())
    backend = _backend(server.url, max_retries=3)
    t0 = time.perf_counter()
    [c] = backend.generate(["hello"], Decoding(max_tokens=9, stop=("\n",), seed=3))
    assert time.perf_counter() - t0 >= 0.3
    assert (c.text, c.finish_reason, c.tokens_in, c.tokens_out, c.error) == ("hi there", "stop", 5, 2, None)
    assert backend.attempts == 2 and len(server.requests) == 2
    path, body = server.requests[0]
    assert path == "/v1/completions"
    assert body == {"model": "default", "prompt": "hello", "max_tokens": 9, "temperature": 0.0, "top_p": 1.0,
                    "seed": 3, "stop": ["\n"], "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0,
                    "repetition_penalty": 1.0}


def test_500s_until_max_retries_become_an_error_completion(serve: Callable[..., _Server]) -> None:
    server = serve(lambda n, path, body: (500, {}, "boom"))
    backend = _backend(server.url, max_retries=3)
    [c] = backend.generate(["x"], Decoding())
    assert c.finish_reason == "error" and "HTTP 500: boom (after 4 attempts)" in c.error
    assert len(server.requests) == 4 == backend.attempts


def test_other_4xx_is_not_retried(serve: Callable[..., _Server]) -> None:
    server = serve(lambda n, path, body: (400, {}, '{"error": "bad top_k"}'))
    [c] = _backend(server.url).generate(["x"], Decoding(top_k=5))
    assert c.finish_reason == "error" and c.error.startswith("ValueError: HTTP 400")
    assert len(server.requests) == 1 and server.requests[0][1]["top_k"] == 5


def test_timeouts_are_retried(serve: Callable[..., _Server]) -> None:
    def slow_first(n: int, path: str, body: dict[str, Any]) -> Reply:
        if n == 0:
            time.sleep(0.6)
        return _ok("late" if n == 0 else "on time")

    server = serve(slow_first)
    [c] = _backend(server.url, timeout_s=0.3, max_retries=2).generate(["x"], Decoding())
    assert c.text == "on time" and len(server.requests) == 2


def test_connection_refused_is_an_error_after_retries() -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = _backend(f"http://127.0.0.1:{port}/v1", max_retries=1)
    [c] = backend.generate(["x"], Decoding())
    assert c.finish_reason == "error" and "ConnectError" in c.error and backend.attempts == 2


def test_chat_prompts_key_from_env_and_finish_reason(serve: Callable[..., _Server],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(lambda n, path, body: (200, {}, {
        "choices": [{"message": {"role": "assistant", "content": "yo"}, "finish_reason": "length"}]}))
    monkeypatch.setenv("GM_TEST_KEY", "sk-123")
    backend = _backend(server.url, api_key_env="GM_TEST_KEY", model="smol")
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    [c] = backend.generate([msgs], Decoding(repetition_penalty=1.3, min_p=0.05))
    assert (c.text, c.finish_reason, c.tokens_out) == ("yo", "length", 0)
    path, body = server.requests[0]
    assert path == "/v1/chat/completions" and body["messages"] == msgs and body["model"] == "smol"
    assert body["repeat_penalty"] == body["repetition_penalty"] == 1.3 and body["min_p"] == 0.05
    assert server.headers["Authorization"] == "Bearer sk-123"
    monkeypatch.delenv("GM_TEST_KEY")
    with pytest.raises(ValueError, match="GM_TEST_KEY"):
        _backend(server.url, api_key_env="GM_TEST_KEY")


def test_concurrency_overlaps_requests_and_keeps_order(serve: Callable[..., _Server]) -> None:
    def slow(n: int, path: str, body: dict[str, Any]) -> Reply:
        time.sleep(0.3)
        return _ok(body["prompt"].upper())

    server = serve(slow)
    prompts = [f"p{i}" for i in range(8)]
    t0 = time.perf_counter()
    out = _backend(server.url, concurrency=8).generate(prompts, Decoding())
    assert time.perf_counter() - t0 < 1.2  # sequential would take 2.4 s
    assert [c.text for c in out] == [p.upper() for p in prompts]


def test_rate_limit_spaces_request_starts(serve: Callable[..., _Server]) -> None:
    server = serve(lambda n, path, body: _ok())
    t0 = time.perf_counter()
    _backend(server.url, concurrency=4, rate_limit_per_s=20).generate(["x"] * 9, Decoding())
    assert time.perf_counter() - t0 >= 0.4  # 9 starts, 50 ms apart


def test_beam_search_names_the_transformers_backend() -> None:
    backend = _backend("http://127.0.0.1:9/v1")
    with pytest.raises(UnsupportedDecoding, match="transformers"):
        backend.generate(["x"], Decoding(num_beams=2))


def test_retry_after_forms() -> None:
    assert retry_after("2") == 2.0 and retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_standard_fields_only_for_strict_apis(serve: Callable[..., _Server]) -> None:
    server = serve(lambda n, path, body: _ok())
    backend = _backend(server.url, extra_sampling=False)
    backend.generate(["x"], Decoding(temperature=0.7, top_p=0.9))
    assert set(server.requests[0][1]) == {"model", "prompt", "max_tokens", "temperature", "top_p", "seed"}
    with pytest.raises(UnsupportedDecoding, match="top_k, repetition_penalty"):
        backend.generate(["x"], Decoding(top_k=5, repetition_penalty=1.2))
