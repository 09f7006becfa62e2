"""SmolLM2 from the packaged GGUF: the cached conversion and the loss computation."""

from __future__ import annotations

import math

import pytest
import torch

from gristmill.models.causal_lm import CausalLM, hf_dir, load_causal_lm
from tests.models._text import paragraphs


@pytest.fixture(scope="module")
def lm() -> CausalLM:
    torch.set_num_threads(1)
    return load_causal_lm(None, "float32")


def test_the_converted_directory_is_reused() -> None:
    first = hf_dir()
    assert (first / "config.json").is_file() and (first / "model.safetensors").is_file()
    assert hf_dir() == first
    assert not list(first.parent.glob(f".{first.name}.tmp-*"))


def test_tokenizer_and_prefix(lm: CausalLM) -> None:
    assert lm.tokenizer.convert_ids_to_tokens(lm.prefix_id) == "<|endoftext|>"
    assert lm.encode(["Hello world"]) == [[19556, 905]]  # no special tokens added


def test_window_losses_equal_the_models_own_loss(lm: CausalLM) -> None:
    text = paragraphs(0, 1)[0]
    window = [lm.prefix_id, *lm.encode([text])[0]][:96]
    sums, counts = lm.window_losses([window], [1], batch_size=1)
    ids = torch.tensor([window])
    with torch.inference_mode():
        loss = lm.model(input_ids=ids, labels=ids).loss.item()  # mean over tokens 1..n-1
    assert counts == [len(window) - 1]
    assert sums[0] / counts[0] == pytest.approx(loss, rel=1e-4)


def test_first_scored_position_and_padding(lm: CausalLM) -> None:
    a, b = ([lm.prefix_id, *ids] for ids in lm.encode(paragraphs(2, 2)))
    a, b = a[:80], b[:40]
    full, n_full = lm.window_losses([a], [1], 1)
    tail, n_tail = lm.window_losses([a], [50], 1)
    assert n_full == [79] and n_tail == [30]
    assert 0 < tail[0] < full[0]
    together, _ = lm.window_losses([b, a], [1, 1], batch_size=2)  # b is right-padded to a's length
    alone, _ = lm.window_losses([b], [1], 1)
    assert together[0] == pytest.approx(alone[0], rel=1e-4)
    assert together[1] == pytest.approx(full[0], rel=1e-4)
    assert math.isfinite(together[0])
