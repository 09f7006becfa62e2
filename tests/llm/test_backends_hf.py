"""The transformers backend on the packaged SmolLM2-135M GGUF, dequantized to float32."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from gristmill.llm.backends import create_backend
from gristmill.llm.backends.hf import TransformersBackend
from gristmill.llm.types import Decoding

CHAT = [{"role": "user", "content": "What is the capital of France?"}]
TEXTS = ["The three primary colors are", "def fibonacci(n):", "Once upon a time, in a village by the sea, a fox"]


@pytest.fixture(scope="module")
def hf() -> Iterator[TransformersBackend]:
    backend = create_backend({"type": "transformers", "dtype": "float32", "batch_size": 4, "threads": 1})
    yield backend
    backend.close()


def test_chat_and_usage(hf: TransformersBackend) -> None:
    [c] = hf.generate([CHAT], Decoding(max_tokens=16))
    assert "Paris" in c.text and c.finish_reason == "stop"
    assert c.tokens_in > 10 and 0 < c.tokens_out < 16
    assert hf.model == "SmolLM2-135M-Instruct.Q4_1.gguf" and hf.identity.endswith(":float32")


def test_left_padded_batch_equals_one_at_a_time(hf: TransformersBackend) -> None:
    d = Decoding(max_tokens=10)
    one = copy.copy(hf)
    one.batch_size = 1
    batched = hf.generate(TEXTS, d)
    assert [c.text for c in batched] == [c.text for c in one.generate(TEXTS, d)]
    assert all(c.finish_reason == "length" and c.tokens_out == 10 for c in batched)


def test_beam_search_and_no_repeat_ngram(hf: TransformersBackend) -> None:
    prompt = "List the days of the week: Monday, Tuesday,"

    def repeated_bigrams(text: str) -> int:
        ids = hf.tokenizer(prompt + text, add_special_tokens=False)["input_ids"]
        bigrams = list(zip(ids, ids[1:]))
        return len(bigrams) - len(set(bigrams))

    greedy = hf.generate([prompt], Decoding(max_tokens=24))[0]
    beams = hf.generate([prompt], Decoding(max_tokens=24, num_beams=3))[0]
    blocked = hf.generate([prompt], Decoding(max_tokens=24, no_repeat_ngram_size=2))[0]
    assert beams.text and beams.text != greedy.text
    assert repeated_bigrams(greedy.text) > 0 and repeated_bigrams(blocked.text) == 0


def test_seeded_sampling_is_reproducible(hf: TransformersBackend) -> None:
    d = Decoding(max_tokens=16, temperature=1.0, top_k=40, top_p=0.9, min_p=0.05, repetition_penalty=1.2, seed=3)
    first = [c.text for c in hf.generate(TEXTS, d)]
    assert first == [c.text for c in hf.generate(TEXTS, d)]
    assert first != [c.text for c in hf.generate(TEXTS, d.model_copy(update={"seed": 4}))]


def test_stop_strings_are_cut(hf: TransformersBackend) -> None:
    out = hf.generate(TEXTS, Decoding(max_tokens=30, stop=("\n", ".")))
    assert all("\n" not in c.text and "." not in c.text for c in out)
