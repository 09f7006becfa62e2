"""The embedded llama.cpp backend on the packaged SmolLM2-135M GGUF (a real model, small outputs)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from gristmill.llm.backends import UnsupportedDecoding, create_backend
from gristmill.llm.backends.llama_cpp import LlamaCppBackend
from gristmill.llm.types import Decoding

CHAT = [{"role": "user", "content": "What is the capital of France?"}]
TEXTS = ["The three primary colors are", "def fibonacci(n):", "Once upon a time, a small fox"]


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaCppBackend]:
    backend = create_backend({"type": "llama_cpp", "n_ctx": 512, "batch_size": 4, "threads": 1})
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def single(llama: LlamaCppBackend) -> LlamaCppBackend:
    """The same model through the one-prompt-at-a-time engine."""
    b = copy.copy(llama)
    b.batch_size, b._engine = 1, None
    return b


def test_chat_prompt_uses_the_gguf_template(llama: LlamaCppBackend) -> None:
    assert llama.render(CHAT).startswith("<|im_start|>")
    [c] = llama.generate([CHAT], Decoding(max_tokens=16))
    llama.llm.reset()
    ref = llama.llm.create_chat_completion(CHAT, temperature=0.0, max_tokens=16)
    assert c.text == ref["choices"][0]["message"]["content"] and c.text
    assert (c.tokens_in, c.tokens_out) == (ref["usage"]["prompt_tokens"], ref["usage"]["completion_tokens"])
    assert c.tokens_in == len(llama.tokenize(CHAT)) and c.error is None


def test_batched_greedy_equals_single_stream(llama: LlamaCppBackend, single: LlamaCppBackend) -> None:
    d = Decoding(max_tokens=12)
    batched = llama.generate([*TEXTS, CHAT], d)
    alone = single.generate([*TEXTS, CHAT], d)
    assert [c.text for c in batched] == [c.text for c in alone]
    assert [(c.tokens_in, c.tokens_out, c.finish_reason) for c in batched] == \
           [(c.tokens_in, c.tokens_out, c.finish_reason) for c in alone]
    assert all(c.finish_reason == "length" and c.tokens_out == 12 for c in batched[:3])


def test_same_seed_same_sample_other_seed_other_sample(llama: LlamaCppBackend, single: LlamaCppBackend) -> None:
    d = Decoding(max_tokens=12, temperature=1.0, top_k=50, top_p=0.95, min_p=0.02, repetition_penalty=1.1, seed=7)
    prompts = TEXTS * 2  # 6 prompts over 4 slots: slots are reused mid-run
    first = [c.text for c in llama.generate(prompts, d)]
    assert first == [c.text for c in llama.generate(prompts, d)]
    assert first[:3] == first[3:]  # each sequence has its own seeded sampler
    assert first[:3] == [c.text for c in single.generate(TEXTS, d)]
    other = [c.text for c in llama.generate(TEXTS, d.model_copy(update={"seed": 8}))]
    assert other != first[:3]


def test_stop_strings(llama: LlamaCppBackend, single: LlamaCppBackend) -> None:
    d = Decoding(max_tokens=40, stop=("\n", ","))
    for backend in (llama, single):
        out = backend.generate(TEXTS[:2] + [CHAT], d)
        for c in out:
            assert "\n" not in c.text and "," not in c.text and c.finish_reason == "stop"


def test_unsupported_settings_name_the_transformers_backend(llama: LlamaCppBackend) -> None:
    for d in (Decoding(num_beams=4), Decoding(no_repeat_ngram_size=3)):
        with pytest.raises(UnsupportedDecoding, match="transformers"):
            llama.generate(TEXTS, d)


def test_too_long_prompt_is_an_error_for_that_prompt_only(llama: LlamaCppBackend) -> None:
    out = llama.generate(["word " * 600, TEXTS[0], ""], Decoding(max_tokens=4))
    assert out[0].finish_reason == "error" and "n_ctx" in out[0].error
    assert out[1].finish_reason == "length" and out[1].text
    assert out[2].finish_reason == "error" and "empty prompt" in out[2].error
