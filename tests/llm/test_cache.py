from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from gristmill.llm.backends import MockBackend
from gristmill.llm.backends.base import MalformedResponse
from gristmill.llm.cache import CachedBackend, ResponseCache, cache_key
from gristmill.llm.types import Completion, Decoding


def test_key_depends_on_every_part() -> None:
    d = Decoding()
    base = cache_key("llama_cpp", "m.gguf", "hello", d)
    assert base == cache_key("llama_cpp", "m.gguf", "hello", Decoding())
    others = {
        cache_key("openai", "m.gguf", "hello", d),
        cache_key("llama_cpp", "other.gguf", "hello", d),
        cache_key("llama_cpp", "m.gguf", "hello!", d),
        cache_key("llama_cpp", "m.gguf", [{"role": "user", "content": "hello"}], d),
        cache_key("llama_cpp", "m.gguf", "hello", Decoding(seed=1)),
        cache_key("llama_cpp", "m.gguf", "hello", Decoding(temperature=0.7)),
        cache_key("llama_cpp", "m.gguf", "hello", Decoding(stop=("\n",))),
    }
    assert base not in others and len(others) == 7


def test_rerun_sends_only_misses(tmp_path: Path) -> None:
    mock = MockBackend(lambda text, d: text.upper())
    cached = CachedBackend(mock, tmp_path / "c.sqlite")
    first = cached.generate(["a", "b"], Decoding())
    assert [c.text for c in first] == ["A", "B"] and not any(c.cached for c in first)
    second = cached.generate(["b", "c", "a"], Decoding())
    assert [c.text for c in second] == ["B", "C", "A"]
    assert [c.cached for c in second] == [True, False, True]
    assert mock.calls == ["a", "b", "c"]
    assert (cached.hits, cached.misses) == (2, 3)
    # another seed is another request
    cached.generate(["a"], Decoding(seed=5))
    assert mock.calls[-1] == "a" and len(mock.calls) == 4


def test_identical_requests_in_one_call_are_sent_once(tmp_path: Path) -> None:
    mock = MockBackend(lambda text, d: text * 2)
    out = CachedBackend(mock, tmp_path / "c.sqlite").generate(["x", "y", "x"], Decoding())
    assert [c.text for c in out] == ["xx", "yy", "xx"]
    assert mock.calls == ["x", "y"]


def test_errors_are_not_cached(tmp_path: Path) -> None:
    mock = MockBackend({"good": "fine", "bad": RuntimeError("server down"), "down": ConnectionError("refused"),
                        "odd": MalformedResponse("empty choices")})
    cached = CachedBackend(mock, tmp_path / "c.sqlite")
    out = cached.generate(["good", "bad", "down", "odd"], Decoding())
    assert out[1].finish_reason == "error" and "server down" in out[1].error
    assert [c.error_kind for c in out] == [None, "permanent", "transient", "malformed"]
    assert out[3].error == "malformed response: empty choices"
    cached.generate(["good", "bad", "down", "odd"], Decoding())
    assert mock.calls == ["good", "bad", "down", "odd", "bad", "down", "odd"]
    assert len(cached.cache) == 1


class _Killed(Exception):
    pass


class _DiesAfter(MockBackend):
    """Yields ``n`` completions, then dies as a killed process would."""

    def __init__(self, n: int) -> None:
        super().__init__(lambda text, d: f"<{text}>")
        self.n = n

    def stream(self, prompts, decoding):
        for k, pair in enumerate(super().stream(prompts, decoding)):
            if k == self.n:
                raise _Killed
            yield pair


def test_a_killed_generation_resumes(tmp_path: Path) -> None:
    prompts = [f"p{i}" for i in range(10)]
    with pytest.raises(_Killed):
        CachedBackend(_DiesAfter(4), tmp_path / "c.sqlite").generate(prompts, Decoding())
    mock = MockBackend(lambda text, d: f"<{text}>")
    out = CachedBackend(mock, tmp_path / "c.sqlite").generate(prompts, Decoding())
    assert [c.text for c in out] == [f"<{p}>" for p in prompts]
    assert mock.calls == prompts[4:]
    assert sum(c.cached for c in out) == 4


def test_cached_completion_round_trips(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    c = Completion("héllo ✓", finish_reason="length", tokens_in=3, tokens_out=9, seconds=1.5)
    cache.put("k", c)
    assert cache.get_many(["k", "missing"]) == {"k": c}


def _writer(path: str, worker: int, n: int) -> None:
    cache = ResponseCache(path)
    for i in range(n):
        cache.put(f"w{worker}-{i}", Completion(f"text {worker} {i}"))
        cache.put(f"shared-{i}", Completion(f"shared {i}"))


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    ResponseCache(path)  # create the schema first, as the operator's setup does
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 300)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = ResponseCache(path)
    assert len(cache) == 300 * 3
    got = cache.get_many([f"w1-{i}" for i in range(300)])
    assert got["w1-299"].text == "text 1 299"
