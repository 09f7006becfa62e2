"""Byte-level BPE tokenizers for the from-scratch language model (trained with ``tokenizers``).

Byte-level means every string can be encoded (no unknown token) and decoding gives the
text back exactly. Two special tokens are added first, so their ids are fixed:
``<|endoftext|>`` (id 0) separates documents (and starts generation from an empty
prompt), ``<|pad|>`` (id 1) pads batches. Special tokens are dropped when decoding.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import tokenizers

__all__ = ["EOT", "PAD", "TOKENIZER_FILE", "load_tokenizer", "save_tokenizer", "separator_id", "train_tokenizer"]

EOT = "<|endoftext|>"
PAD = "<|pad|>"
TOKENIZER_FILE = "tokenizer.json"


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> tokenizers.Tokenizer:
    """Train a byte-level BPE with at most ``vocab_size`` tokens (256 bytes + specials + merges) on ``texts``.

    The vocabulary is smaller than ``vocab_size`` when the texts hold too few pairs seen
    ``min_frequency`` times; read the size back with ``get_vocab_size()``.
    """
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < 258:
        raise ValueError(f"vocab_size must be at least 258 (256 bytes + 2 special tokens), got {vocab_size}")
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOT, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def separator_id(tok: tokenizers.Tokenizer) -> int:
    """The id of the document separator ``<|endoftext|>``."""
    i = tok.token_to_id(EOT)
    if i is None:
        raise ValueError(f"tokenizer has no {EOT} token")
    return i


def save_tokenizer(tok: tokenizers.Tokenizer, directory: Path) -> Path:
    """Write ``directory/tokenizer.json``; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / TOKENIZER_FILE
    tok.save(str(path))
    return path


def load_tokenizer(path: Path) -> tokenizers.Tokenizer:
    """Read a tokenizer from ``tokenizer.json`` or a directory holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    return tokenizers.Tokenizer.from_file(str(path))
