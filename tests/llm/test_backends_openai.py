"""The HTTP backend against tiny loopback servers: retries, Retry-After, timeouts, concurrency, rate limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gristmill.llm.backends import UnsupportedDecoding, create_backend
from gristmill.llm.backends.openai_http import retry_after
from gristmill.llm.types import Decoding
from tests.llm.openai_fake import CLOSE, RESET, FakeServer, Reply, free_port, ok


def _ok(text: str = "hi there", finish: str = "stop") -> Reply:
    return ok(text, finish)


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def start(script: Callable[[int, str, dict[str, Any]], Any]) -> FakeServer:
        servers.append(FakeServer(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _backend(url: str, **kw: Any) -> Any:
    return create_backend({"type": "openai", "base_url": url, "backoff_s": 0.01, **kw})


def test_429_then_200_is_retried_honouring_retry_after(serve: Callable[..., FakeServer]) -> None:
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


def test_500s_until_max_retries_become_an_error_completion(serve: Callable[..., FakeServer]) -> None:
    server = serve(lambda n, path, body: (500, {}, "boom"))
    backend = _backend(server.url, max_retries=3)
    [c] = backend.generate(["x"], Decoding())
    assert c.finish_reason == "error" and c.error_kind == "transient" and c.transient
    assert c.error == f"transient: HTTP 500 Internal Server Error: boom ({server.url}, 4 attempts)"
    assert len(server.requests) == 4 == backend.attempts


def test_other_4xx_is_not_retried(serve: Callable[..., FakeServer]) -> None:
    server = serve(lambda n, path, body: (400, {}, '{"error": "bad top_k"}'))
    [c] = _backend(server.url).generate(["x"], Decoding(top_k=5))
    assert c.finish_reason == "error" and c.error_kind == "permanent" and not c.transient
    assert c.error == f'permanent: HTTP 400 Bad Request: {{"error": "bad top_k"}} ({server.url})'
    assert len(server.requests) == 1 and server.requests[0][1]["top_k"] == 5


def test_timeouts_are_retried(serve: Callable[..., FakeServer]) -> None:
    def slow_first(n: int, path: str, body: dict[str, Any]) -> Reply:
        if n == 0:
            time.sleep(0.6)
        return _ok("late" if n == 0 else "on time")

    server = serve(slow_first)
    [c] = _backend(server.url, timeout_s=0.3, max_retries=2).generate(["x"], Decoding())
    assert c.text == "on time" and len(server.requests) == 2


def test_connection_refused_is_a_transient_error_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = _backend(url, max_retries=1)
    [c] = backend.generate(["x"], Decoding())
    assert c.finish_reason == "error" and c.transient and backend.attempts == 2
    assert c.error == f"transient: connection refused ({url}, 2 attempts)"


@pytest.mark.parametrize(("failure", "reason"), [
    (CLOSE, "connection closed by the server: Server disconnected without sending a response."),
    (RESET, "connection reset"),
    ((503, {}, "overloaded"), "HTTP 503 Service Unavailable: overloaded"),
    ((429, {}, ""), "HTTP 429 Too Many Requests"),
])
def test_dropped_connections_and_overload_are_transient_and_retried(
        serve: Callable[..., FakeServer], failure: Any, reason: str) -> None:
    server = serve(lambda n, path, body: failure if n < 2 else _ok())
    [c] = _backend(server.url, max_retries=1).generate(["x"], Decoding())
    assert c.transient and c.error == f"transient: {reason} ({server.url}, 2 attempts)"
    [c] = _backend(server.url, max_retries=0).generate(["x"], Decoding())  # the third request succeeds
    assert c.error is None and c.text == "hi there" and len(server.requests) == 3


@pytest.mark.parametrize(("payload", "reason"), [
    ({"choices": []}, "empty choices"),
    ({"object": "text_completion"}, "no choices"),
    ({"error": {"message": "model overloaded"}}, "no choices (error: model overloaded)"),
    ("<html>Bad gateway</html>", "body is not JSON: '<html>Bad gateway</html>'"),
    ([{"text": "hi"}], "body is a JSON array, not an object"),
    ({"choices": {"text": "hi"}}, "choices is object, not an array"),
    ({"choices": ["hi"]}, "choices[0] is string, not an object"),
    ({"choices": [{"finish_reason": "stop"}]}, "choices[0] has neither message nor text"),
    ({"choices": [{"message": "hi"}]}, "choices[0].message is string, not an object"),
    ({"choices": [{"message": {"role": "assistant"}}]}, "choices[0].message has no content"),
    ({"choices": [{"message": {"content": None}}]}, "choices[0].message.content is null"),
    ({"choices": [{"message": {"content": 7}}]}, "choices[0].message.content is int, not a string"),
    ({"choices": [{"text": None}]}, "choices[0].text is null, not a string"),
    ({"choices": [{"text": "hi"}], "usage": {"prompt_tokens": "many"}},
     "usage.prompt_tokens is string 'many', not a count"),
    ({"choices": [{"text": "hi"}], "usage": [1, 2]}, "usage is array, not an object"),
])
def test_malformed_answers_get_named_reasons_and_are_not_retried(
        serve: Callable[..., FakeServer], payload: Any, reason: str) -> None:
    server = serve(lambda n, path, body: (200, {}, payload))
    [c] = _backend(server.url, max_retries=3).generate(["x"], Decoding())
    assert (c.finish_reason, c.error_kind, c.error) == ("error", "malformed", f"malformed response: {reason}")
    assert len(server.requests) == 1


def test_refusals_and_content_parts(serve: Callable[..., FakeServer]) -> None:
    replies = [{"choices": [{"message": {"content": None, "refusal": "I can't help with that."}}]},
               {"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                             "finish_reason": "stop"}], "usage": None}]
    server = serve(lambda n, path, body: (200, {}, replies[n]))
    backend = _backend(server.url, concurrency=1)
    refused, parts = backend.generate([[{"role": "user", "content": "x"}]] * 2, Decoding())
    assert refused.error == "permanent: refused: I can't help with that." and refused.error_kind == "permanent"
    assert (parts.text, parts.error, parts.tokens_in) == ("ab", None, 0)


def test_a_bad_url_is_a_permanent_error_not_a_crash() -> None:
    [c] = _backend("ftp://127.0.0.1:9/v1", max_retries=3).generate(["x"], Decoding())
    assert c.error_kind == "permanent" and c.error.startswith("permanent: UnsupportedProtocol: ")


def test_chat_prompts_key_from_env_and_finish_reason(serve: Callable[..., FakeServer],
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


def test_concurrency_overlaps_requests_and_keeps_order(serve: Callable[..., FakeServer]) -> None:
    def slow(n: int, path: str, body: dict[str, Any]) -> Reply:
        time.sleep(0.3)
        return _ok(body["prompt"].upper())

    server = serve(slow)
    prompts = [f"p{i}" for i in range(8)]
    t0 = time.perf_counter()
    out = _backend(server.url, concurrency=8).generate(prompts, Decoding())
    assert time.perf_counter() - t0 < 1.2  # sequential would take 2.4 s
    assert [c.text for c in out] == [p.upper() for p in prompts]


def test_rate_limit_spaces_request_starts(serve: Callable[..., FakeServer]) -> None:
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


def test_standard_fields_only_for_strict_apis(serve: Callable[..., FakeServer]) -> None:
    server = serve(lambda n, path, body: _ok())
    backend = _backend(server.url, extra_sampling=False)
    backend.generate(["x"], Decoding(temperature=0.7, top_p=0.9))
    assert set(server.requests[0][1]) == {"model", "prompt", "max_tokens", "temperature", "top_p", "seed"}
    with pytest.raises(UnsupportedDecoding, match="top_k, repetition_penalty"):
        backend.generate(["x"], Decoding(top_k=5, repetition_penalty=1.2))
