"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, Ollama, hosted APIs), with httpx.

Text prompts go to ``/completions``, message prompts to ``/chat/completions`` (``chat``
in the spec forces one). Requests run ``concurrency`` at a time on a thread pool, at most
``rate_limit_per_s`` started per second. A request that times out, cannot connect, or
gets 429 or 5xx is retried up to ``max_retries`` times with exponential backoff and jitter
(``backoff_s`` x 2^attempt x [0.5, 1.5)), waiting at least what a ``Retry-After`` header
asks. Any other failure, or the last retry's, becomes that prompt's error completion, of
one of three kinds (:class:`~gristmill.llm.types.Completion`): ``transient: connection
refused (<base_url>, 5 attempts)`` (unreachable, timeouts, 408/409/425/429, 5xx: a rerun
retries it), ``permanent: HTTP 400 Bad Request: ...`` (other 4xx, a bad URL), and
``malformed response: empty choices`` (an answer that is not a completion: no JSON, no or
empty ``choices``, no ``message``/``content``/``text``, wrong types).

Decoding: ``temperature`` (0 = greedy), ``top_p``, ``max_tokens``, ``stop`` and ``seed`` are
standard. ``top_k``, ``min_p`` and the repetition penalty (as ``repeat_penalty`` for
llama.cpp and ``repetition_penalty`` for vLLM) are always sent, their "off" values
included, because servers have their own defaults (llama.cpp's server penalises
repetition by 1.1 unless told otherwise). For APIs that reject unknown fields (OpenAI's
own) set ``extra_sampling: false``: only standard fields are sent, and asking for top-k,
min-p or a repetition penalty raises :class:`UnsupportedDecoding`, as do beam search and
no-repeat-n-gram everywhere.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import httpx

from gristmill.llm.backends.base import (BackendFailure, BackendSpec, BaseBackend, MalformedResponse,
                                         UnsupportedDecoding, error_completion, parse_openai_response,
                                         refuse_transformers_only)
from gristmill.llm.types import Completion, Decoding, Prompt

RETRY_STATUS = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))
MAX_WAIT_S = 120.0


class RetryableError(Exception):
    """A failure worth retrying; ``wait`` is the server's Retry-After, if it sent one."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def transport_reason(exc: httpx.TransportError) -> str:
    """A short reason for a failure to get any HTTP answer (connection refused, reset, timeout)."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return {httpx.ConnectTimeout: "connect timeout", httpx.ReadTimeout: "read timeout (no answer in time)",
                httpx.WriteTimeout: "write timeout", httpx.PoolTimeout: "pool timeout"}.get(type(exc), "timeout")
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in detail.lower() else f"cannot connect: {detail}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection closed by the server: {detail}"
    if isinstance(exc, httpx.NetworkError):
        return "connection reset" if "reset" in detail.lower() else f"connection error: {detail}"
    return f"{type(exc).__name__}: {detail}"


def http_reason(resp: httpx.Response, limit: int) -> str:
    """``HTTP 503 Service Unavailable: <start of the body>``."""
    text = resp.text.strip()[:limit]
    return f"HTTP {resp.status_code} {resp.reason_phrase}".rstrip() + (f": {text}" if text else "")


class RateLimiter:
    """Spaces request starts at least ``1 / per_s`` seconds apart, across threads."""

    def __init__(self, per_s: float | None) -> None:
        self.interval = 1.0 / per_s if per_s else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIBackend(BaseBackend):
    """Completions from an OpenAI-compatible server; see the module docstring."""

    name = "openai"

    def __init__(self, base_url: str, model: str = "default", api_key: str | None = None, concurrency: int = 4,
                 timeout_s: float = 120.0, max_retries: int = 4, backoff_s: float = 0.5,
                 rate_limit_per_s: float | None = None, chat: bool | None = None,
                 extra_sampling: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.identity = f"{model}@{self.base_url}"
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.chat = chat
        self.extra_sampling = extra_sampling
        self.limiter = RateLimiter(rate_limit_per_s)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers,
                                   limits=httpx.Limits(max_connections=concurrency,
                                                       max_keepalive_connections=concurrency))
        self.attempts = 0  # requests sent, retries included
        self._count = threading.Lock()

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> OpenAIBackend:
        if not spec.base_url:
            raise ValueError("openai backend: base_url is required (e.g. http://127.0.0.1:8000/v1)")
        key = None
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ValueError(f"openai backend: environment variable {spec.api_key_env} is not set")
        return cls(spec.base_url, model=spec.model or "default", api_key=key, concurrency=spec.concurrency,
                   timeout_s=spec.timeout_s, max_retries=spec.max_retries, backoff_s=spec.backoff_s,
                   rate_limit_per_s=spec.rate_limit_per_s, chat=spec.chat, extra_sampling=spec.extra_sampling)

    def check(self, decoding: Decoding) -> None:
        refuse_transformers_only(decoding, "openai", "part of the OpenAI API")
        if not self.extra_sampling:
            extra = {"top_k": decoding.top_k != 0, "min_p": decoding.min_p != 0,
                     "repetition_penalty": decoding.repetition_penalty != 1.0}
            if any(extra.values()):
                raise UnsupportedDecoding(f"openai backend: {', '.join(k for k, v in extra.items() if v)} "
                                          "need extra_sampling: true (llama.cpp, vLLM and Ollama servers)")

    def request(self, prompt: Prompt, decoding: Decoding) -> tuple[str, dict[str, Any]]:
        """The endpoint and JSON body for one prompt."""
        chat = self.chat if self.chat is not None else not isinstance(prompt, str)
        body: dict[str, Any] = {"model": self.model, "max_tokens": decoding.max_tokens,
                                "temperature": decoding.temperature, "top_p": decoding.top_p,
                                "seed": decoding.seed}
        if decoding.stop:
            body["stop"] = list(decoding.stop)
        if self.extra_sampling:
            body.update(top_k=decoding.top_k, min_p=decoding.min_p, repeat_penalty=decoding.repetition_penalty,
                        repetition_penalty=decoding.repetition_penalty)
        if chat:
            body["messages"] = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            return "/chat/completions", body
        if not isinstance(prompt, str):
            raise ValueError("openai backend: chat=false needs text prompts, got messages")
        body["prompt"] = prompt
        return "/completions", body

    def _once(self, path: str, body: dict[str, Any]) -> Completion:
        self.limiter.wait()
        with self._count:
            self.attempts += 1
        try:
            resp = self.client.post(self.base_url + path, json=body)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            raise BackendFailure(f"{type(exc).__name__}: {exc}") from exc
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise RetryableError(transport_reason(exc)) from exc
        if resp.status_code in RETRY_STATUS:
            raise RetryableError(http_reason(resp, 200), retry_after(resp.headers.get("retry-after")))
        if resp.status_code >= 400:
            raise BackendFailure(f"{http_reason(resp, 300)} ({self.base_url})")
        try:
            data = resp.json()
        except ValueError:
            raise MalformedResponse(f"body is not JSON: {resp.text[:100]!r}") from None
        return parse_openai_response(data)

    def complete_one(self, prompt: Prompt, decoding: Decoding) -> Completion:
        """One prompt's completion, retried as the module docstring says; never raises."""
        t0 = time.perf_counter()
        try:
            path, body = self.request(prompt, decoding)
        except ValueError as exc:
            return error_completion(exc)
        for attempt in range(self.max_retries + 1):
            try:
                c = self._once(path, body)
            except RetryableError as exc:
                if attempt == self.max_retries:
                    n = attempt + 1
                    return error_completion(f"{exc} ({self.base_url}, {n} attempt{'s' * (n > 1)})",
                                            time.perf_counter() - t0, kind="transient")
                delay = self.backoff_s * 2 ** attempt * (0.5 + random.random())
                time.sleep(min(MAX_WAIT_S, max(delay, exc.wait or 0.0)))
            except (ValueError, KeyError, IndexError, TypeError) as exc:  # BackendFailure, or a bug of ours
                return error_completion(exc, time.perf_counter() - t0)
            else:
                c.seconds = time.perf_counter() - t0
                return c
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(self, prompts: Sequence[Prompt], decoding: Decoding) -> Iterator[tuple[int, Completion]]:
        self.check(decoding)
        if self.concurrency == 1 or len(prompts) <= 1:
            for i, p in enumerate(prompts):
                yield i, self.complete_one(p, decoding)
            return
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            futures = {pool.submit(self.complete_one, p, decoding): i for i, p in enumerate(prompts)}
            try:
                for fut in as_completed(futures):
                    yield futures[fut], fut.result()
            finally:
                for fut in futures:
                    fut.cancel()

    def close(self) -> None:
        self.client.close()
