"""all-MiniLM-L6-v2 from the packaged files: unit vectors, sensible similarities, long text."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gristmill.models.embed import SentenceEncoder, load_sentence_encoder
from tests.models._text import paragraphs


@pytest.fixture(scope="module")
def enc() -> SentenceEncoder:
    torch.set_num_threads(1)
    return load_sentence_encoder()


def test_unit_vectors_and_similarities(enc: SentenceEncoder) -> None:
    v = enc.encode(["A man is playing a guitar on stage.", "A person performs guitar music on a stage.",
                    "Quantum computers factor large integers."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.75 > 0.2 > v[0] @ v[2]


def test_batches_do_not_change_vectors(enc: SentenceEncoder) -> None:
    texts = paragraphs(1, 5, 20, 120)
    one = enc.encode(texts, batch_size=1)
    many = enc.encode(texts, batch_size=5)
    assert np.abs(one - many).max() < 1e-4


def test_long_text_truncated_or_chunked(enc: SentenceEncoder) -> None:
    head, tail_a, tail_b = paragraphs(0, 3, 80, 160)
    a, b = f"{head} {tail_a}", f"{head} {tail_b}"  # the same first 64 tokens, different rest
    t = enc.encode([a, b], max_tokens=64, long_text="truncate")
    c = enc.encode([a, b], max_tokens=64, long_text="chunks")
    assert t[0] @ t[1] == pytest.approx(1.0, abs=1e-5)
    assert c[0] @ c[1] < 0.95
    short = enc.encode(["A short sentence."], max_tokens=64, long_text="chunks")
    assert np.allclose(short, enc.encode(["A short sentence."], max_tokens=64, long_text="truncate"))


def test_empty_input(enc: SentenceEncoder) -> None:
    assert enc.encode([]).shape == (0, 384)
