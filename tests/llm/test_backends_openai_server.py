"""The HTTP backend against a real OpenAI-compatible server: llama-cpp-python's, started on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.llm.backends import create_backend
from gristmill.llm.cache import CachedBackend
from gristmill.llm.types import Decoding
from tests.llm.llama_server import smollm2_server

PROMPTS = ["The three primary colors are", [{"role": "user", "content": "Name a fruit that is yellow."}],
           "def fibonacci(n):", [{"role": "user", "content": "What is the capital of Italy?"}]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with smollm2_server(tmp_path_factory.mktemp("server") / "server.log") as (url, _):
        yield url


def test_real_server_matches_the_embedded_model(server: str) -> None:
    d = Decoding(max_tokens=12)
    remote = create_backend({"type": "openai", "base_url": server, "concurrency": 2}).generate(PROMPTS, d)
    assert all(c.error is None for c in remote), [c.error for c in remote]
    local = create_backend({"type": "llama_cpp", "batch_size": 1, "threads": 1, "n_ctx": 1024}).generate(PROMPTS, d)
    assert [c.text for c in remote] == [c.text for c in local]
    assert [(c.tokens_in, c.tokens_out, c.finish_reason) for c in remote] == \
           [(c.tokens_in, c.tokens_out, c.finish_reason) for c in local]


def test_real_server_behind_the_cache(server: str, tmp_path: Path) -> None:
    backend = create_backend({"type": "openai", "base_url": server, "concurrency": 2})
    cached = CachedBackend(backend, tmp_path / "c.sqlite")
    d = Decoding(max_tokens=6, stop=("\n",))
    first = cached.generate(PROMPTS, d)
    sent = backend.attempts
    second = cached.generate(PROMPTS, d)
    assert backend.attempts == sent == len(PROMPTS)
    assert [c.text for c in second] == [c.text for c in first] and all(c.cached for c in second)
