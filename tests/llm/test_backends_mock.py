from __future__ import annotations

import pytest

from gristmill.llm.backends import BackendSpec, MockBackend, create_backend, find_smollm2_gguf
from gristmill.llm.types import Completion, Decoding


def test_list_cycles_in_order() -> None:
    b = create_backend({"type": "mock", "responses": ["one", "two"]})
    assert [c.text for c in b.generate(["a", "b", "c"], Decoding())] == ["one", "two", "one"]
    assert b.calls == ["a", "b", "c"] and b.name == "mock" and b.model == "mock"


def test_dict_matches_substrings_and_misses_are_errors() -> None:
    b = MockBackend({"capital": "Paris", "sum": "4"})
    out = b.generate(["the capital of France?", [{"role": "user", "content": "sum 2+2"}], "other"], Decoding())
    assert [c.text for c in out[:2]] == ["Paris", "4"]
    assert out[2].finish_reason == "error" and "no scripted response" in out[2].error


def test_callable_completions_and_exceptions() -> None:
    b = MockBackend(lambda text, d: Completion("cut", finish_reason="length") if "long" in text
                    else ValueError("refused") if "no" in text else f"{text}/{d.seed}")
    out = b.generate(["long", "no", "x"], Decoding(seed=7))
    assert (out[0].text, out[0].finish_reason) == ("cut", "length")
    assert out[1].error == "permanent: ValueError: refused" and out[1].error_kind == "permanent"
    assert out[2].text == "x/7"


def test_stop_strings_and_max_tokens() -> None:
    b = MockBackend(["w1 w2 w3 w4\nmore"])
    [c] = b.generate(["p q"], Decoding(stop=("\n",)))
    assert (c.text, c.finish_reason, c.tokens_in, c.tokens_out) == ("w1 w2 w3 w4", "stop", 2, 4)
    [c] = b.generate(["p"], Decoding(max_tokens=2))
    assert (c.text, c.finish_reason) == ("w1 w2", "length")


def test_spec_rejects_unknown_keys_and_types() -> None:
    with pytest.raises(ValueError):
        BackendSpec(type="mock", tempreature=1)
    with pytest.raises(ValueError):
        create_backend({"type": "vllm"})


def test_default_model_is_the_packaged_smollm2_gguf() -> None:
    path = find_smollm2_gguf()
    assert path.suffix == ".gguf" and "SmolLM2-135M" in path.name and path.stat().st_size > 10_000_000


def test_a_raising_script_is_an_error_completion() -> None:
    def script(text: str, d: Decoding) -> str:
        if "boom" in text:
            raise ConnectionError("reset by peer")
        return "fine"

    out = MockBackend(script).generate(["boom", "ok"], Decoding())
    assert out[0].error == "transient: ConnectionError: reset by peer" and out[0].transient and out[1].text == "fine"
