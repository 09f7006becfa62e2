"""The small decoder-only transformer that ``train lm`` trains from scratch (the model only; the
training is :mod:`gristmill.train.lm`, the loop :mod:`gristmill.train.loop`).

GPT-2 shaped: token + learned position embeddings, pre-LayerNorm blocks of causal
self-attention (``scaled_dot_product_attention(is_causal=True)``) and a GELU MLP, a final
LayerNorm, and an output head tied to the token embedding. Initialisation as GPT-2: normal(0,
0.02), residual projections scaled down by depth. :meth:`TransformerLM.forward_cached` serves
:mod:`gristmill.train.decoding` with cached keys/values.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GPTShape", "TransformerLM"]


class GPTShape(Protocol):
    """What the model reads of its config (:class:`gristmill.train.lm.LMConfig` has these fields)."""

    vocab_size: int
    context: int
    n_layer: int
    n_head: int
    d_model: int
    dropout: float


class _Block(nn.Module):
    def __init__(self, cfg: GPTShape) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.fc_out = nn.Linear(4 * cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.fc_out(F.gelu(self.fc(self.ln2(x)))))

    def forward_cached(self, x: torch.Tensor, mask: torch.Tensor,
                       past: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, tuple]:
        """Inference with cached keys/values: ``mask[B, 1, T, T_past + T]`` says which keys each query sees."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc_out(F.gelu(self.fc(self.ln2(x)))), (k, v)


class TransformerLM(nn.Module):
    """Decoder-only transformer; ``forward(ids[B, T]) -> logits[B, T, vocab]`` with ``T <= context``."""

    def __init__(self, cfg: GPTShape) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.context, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight
        self.apply(self._init)
        for block in self.blocks:  # GPT-2: residual projections scaled down by depth
            for w in (block.proj.weight, block.fc_out.weight):
                nn.init.normal_(w, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        if t > self.cfg.context:
            raise ValueError(f"sequence of {t} tokens is longer than the context ({self.cfg.context})")
        x = self.drop(self.tok_emb(ids) + self.pos_emb(torch.arange(t, device=ids.device)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def forward_cached(self, ids: torch.Tensor, positions: torch.Tensor, key_mask: torch.Tensor,
                       cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                       ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Logits of new tokens ``ids[B, T]`` at ``positions[B, T]`` given the keys/values in ``cache``.

        ``key_mask[B, T_past + T]`` is True at real tokens (False at left padding). Returns
        the logits and the cache extended by these tokens. Used by
        :mod:`gristmill.train.decoding`; no dropout.
        """
        b, t = ids.shape
        t_past = 0 if cache is None else cache[0][0].shape[2]
        q_idx = torch.arange(t)[:, None] + t_past
        k_idx = torch.arange(t_past + t)[None, :]
        # a query sees real keys at or before it, and always itself (so padding rows never see nothing)
        mask = ((k_idx <= q_idx)[None] & key_mask[:, None, :]) | (k_idx == q_idx)[None]
        x = self.tok_emb(ids) + self.pos_emb(positions)
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, kv = block.forward_cached(x, mask[:, None], None if cache is None else cache[i])
            new_cache.append(kv)
        return self.head(self.ln_f(x)), new_cache

    def num_parameters(self) -> int:
        """Distinct parameters (the tied head counted once)."""
        return sum(p.numel() for p in self.parameters())
