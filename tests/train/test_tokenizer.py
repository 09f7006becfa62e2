from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.train.tokenizer import EOT, PAD, load_tokenizer, save_tokenizer, separator_id, train_tokenizer

TEXTS = ["The quick brown fox jumps over the lazy dog.", "the dog sleeps; the fox runs away",
         "Café crème, naïve façade — 日本語 and emoji 🙂 too"] * 5


def test_byte_level_roundtrip_of_unseen_text_and_fixed_special_ids() -> None:
    tok = train_tokenizer(TEXTS, vocab_size=300)
    assert tok.token_to_id(EOT) == 0 and tok.token_to_id(PAD) == 1 and separator_id(tok) == 0
    assert 258 < tok.get_vocab_size() <= 300
    for text in [*TEXTS, "zebra ÆØÅ \t\n  spaces", "ß∂ƒ©˙∆ unseen bytes \x00"]:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids) == text
    # merges were learnt: a frequent word is fewer tokens than bytes
    assert len(tok.encode(" the fox").ids) < len(" the fox".encode())


def test_specials_are_dropped_on_decode_and_save_load_keeps_encoding(tmp_path: Path) -> None:
    tok = train_tokenizer(TEXTS, vocab_size=280)
    ids = [0, *tok.encode("the dog").ids, 0, 1]
    assert tok.decode(ids) == "the dog"
    path = save_tokenizer(tok, tmp_path / "t")
    assert path.name == "tokenizer.json"
    again = load_tokenizer(tmp_path / "t")
    assert again.encode(TEXTS[2]).ids == tok.encode(TEXTS[2]).ids


def test_vocab_size_below_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(TEXTS, vocab_size=100)
