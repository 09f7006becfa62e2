"""Decoding for the from-scratch LM (greedy, sampling, beam search) and the same options for HF models.

:func:`generate` runs prompts in batches with a key/value cache: prompts are left-padded,
each row gets its own positions, and rows that have stopped leave the batch. Every
prompt is preceded by ``<|endoftext|>`` (how documents start in training), so the empty
prompt ``""`` samples a document from scratch; generation stops at ``<|endoftext|>``
(not included in the output) or after ``max_new_tokens``. The pad token is never
generated. When a row outgrows the model's context, its view moves forward by half a
context (:func:`window_start`) and the cache is rebuilt, so long generations condition
on between half and all of the context (a full-window recompute per token would cost
``context`` times more).

Sampling applies temperature, then top-k, then top-p (nucleus: the smallest set of most
likely tokens whose probability reaches ``top_p``, at least one). The same inputs,
``seed`` and ``batch_size`` give the same texts.

Beam search keeps ``num_beams`` hypotheses per prompt ranked by summed log-probability;
a hypothesis that picks ``<|endoftext|>`` is finished with score
``sum_logprob / generated_tokens ** length_penalty``; a prompt stops once it has
``num_beams`` finished hypotheses (early stopping) or at ``max_new_tokens`` (live beams
then count as finished); the best-scoring finished hypothesis is returned. With
``num_beams=1`` this is exactly greedy decoding.

:func:`generate_hf` maps the same :class:`DecodeConfig` onto ``transformers``'
``model.generate``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from gristmill.train.lm import TrainedLM

__all__ = ["STRATEGIES", "DecodeConfig", "filter_logits", "generate", "generate_hf", "window_start"]

STRATEGIES = ("greedy", "sample", "beam")


@dataclass
class DecodeConfig:
    """How to decode. ``temperature``, ``top_k`` (0: off), ``top_p`` (1: off) apply to ``sample``;
    ``num_beams`` and ``length_penalty`` to ``beam``. Invalid values raise ValueError naming the field."""

    strategy: str = "sample"
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    num_beams: int = 4
    length_penalty: float = 1.0
    max_new_tokens: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0: no top-k), got {self.top_k!r}")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise ValueError(f"num_beams must be an integer >= 1, got {self.num_beams!r}")
        if not (isinstance(self.length_penalty, (int, float)) and math.isfinite(self.length_penalty)):
            raise ValueError(f"length_penalty must be a finite number, got {self.length_penalty!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- shared pieces --------------------------------------------------------------------------------


def filter_logits(logits: "torch.Tensor", temperature: float, top_k: int, top_p: float) -> "torch.Tensor":
    """Logits ``[B, V]`` scaled by ``1/temperature`` with tokens outside top-k / the top-p nucleus set to -inf."""
    import torch

    logits = logits / temperature
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the tokens ranked above it already reach top_p (the first is always kept)
        drop_sorted = (torch.cumsum(probs, dim=-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def window_start(length: int, context: int) -> int:
    """Where the model's view of a sequence of ``length`` tokens starts: 0 while it fits the context, then
    moved forward by half a context at a time (so the view holds between half and all of the context)."""
    if length <= context:
        return 0
    half = max(1, context // 2)
    return -(-(length - context) // half) * half


class _Cache:
    """Rows of token sequences with their key/value cache in ``lm``'s model.

    Each row's view starts at :func:`window_start` of its own length, so what a row is
    conditioned on does not depend on the other rows in the batch.
    """

    def __init__(self, lm: "TrainedLM", seqs: list[list[int]]) -> None:
        self.lm = lm
        self.context = lm.config.context
        self.seqs = seqs
        self.prefill()

    def _starts(self) -> list[int]:
        return [window_start(len(s), self.context) for s in self.seqs]

    def prefill(self) -> None:
        """(Re)build the cache from each row's view; sets ``self.logits`` to the next-token logits."""
        import torch

        self.starts = self._starts()
        windows = [s[b:] for s, b in zip(self.seqs, self.starts)]
        width = max(len(w) for w in windows)
        ids = torch.full((len(windows), width), self.lm.sep_id, dtype=torch.long)
        key_mask = torch.zeros((len(windows), width), dtype=torch.bool)
        positions = torch.zeros((len(windows), width), dtype=torch.long)
        for r, w in enumerate(windows):
            pad = width - len(w)
            ids[r, pad:] = torch.tensor(w, dtype=torch.long)
            key_mask[r, pad:] = True
            positions[r, pad:] = torch.arange(len(w))
        logits, self.cache = self.lm.model.forward_cached(ids, positions, key_mask)
        self.key_mask = key_mask
        self.next_pos = torch.tensor([len(w) for w in windows], dtype=torch.long)
        self.logits = logits[:, -1].float()

    def push(self, tokens: "torch.Tensor") -> None:
        """Append one token per row; sets ``self.logits`` to the next-token logits."""
        import torch

        for s, t in zip(self.seqs, tokens.tolist()):
            s.append(t)
        if self._starts() != self.starts:  # a row's view moves on: rebuild (rarely: every context/2 tokens)
            self.prefill()
            return
        self.key_mask = torch.cat([self.key_mask, torch.ones((len(self.seqs), 1), dtype=torch.bool)], dim=1)
        logits, self.cache = self.lm.model.forward_cached(tokens[:, None], self.next_pos[:, None], self.key_mask,
                                                          self.cache)
        self.next_pos = self.next_pos + 1
        self.logits = logits[:, -1].float()

    def select(self, rows: "torch.Tensor") -> None:
        """Keep (and reorder/duplicate) ``rows``."""
        idx = rows.tolist()
        self.seqs = [list(self.seqs[i]) for i in idx]
        self.starts = [self.starts[i] for i in idx]
        self.cache = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.cache]
        self.key_mask = self.key_mask.index_select(0, rows)
        self.next_pos = self.next_pos.index_select(0, rows)
        self.logits = self.logits.index_select(0, rows)


def _prompt_ids(lm: "TrainedLM", prompt: str) -> list[int]:
    return [lm.sep_id, *lm.encode(prompt)]  # a long prompt is cut by window_start like a long generation


# -- greedy and sampling ----------------------------------------------------------------------------


def _generate_batch(lm: "TrainedLM", prompts: list[list[int]], decode: DecodeConfig,
                    gen: "torch.Generator") -> list[list[int]]:
    import torch

    pad = lm.tokenizer.token_to_id("<|pad|>")
    sep = lm.sep_id
    out: list[list[int]] = [[] for _ in prompts]
    active = torch.arange(len(prompts))
    cache = _Cache(lm, [list(p) for p in prompts])
    for _ in range(decode.max_new_tokens):
        logits = cache.logits
        if pad is not None:
            logits[:, pad] = float("-inf")
        if decode.strategy == "greedy":
            tokens = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(filter_logits(logits, decode.temperature, decode.top_k, decode.top_p), dim=-1)
            tokens = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        going = tokens != sep
        for r, t in zip(active.tolist(), tokens.tolist()):
            if t != sep:
                out[r].append(t)
        if not bool(going.any()):
            break
        if not bool(going.all()):
            keep = going.nonzero().squeeze(1)
            active, tokens = active[keep], tokens[keep]
            cache.select(keep)
        cache.push(tokens)
    return out


# -- beam search ------------------------------------------------------------------------------------


def _beam_batch(lm: "TrainedLM", prompts: list[list[int]], decode: DecodeConfig) -> list[list[int]]:
    import torch

    k, lp, sep = decode.num_beams, decode.length_penalty, lm.sep_id
    pad = lm.tokenizer.token_to_id("<|pad|>")
    n = len(prompts)
    cache = _Cache(lm, [list(p) for p in prompts for _ in range(k)])
    # only the first beam of each prompt is live at the start, so the first step picks k distinct tokens
    scores = torch.full((n, k), float("-inf"), dtype=torch.float64)
    scores[:, 0] = 0.0
    generated: list[list[int]] = [[] for _ in range(n * k)]
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    done = [False] * n
    for step in range(1, decode.max_new_tokens + 1):
        logp = torch.log_softmax(cache.logits, dim=-1).double()
        if pad is not None:
            logp[:, pad] = float("-inf")
        vocab = logp.shape[-1]
        cand = (scores.view(-1, 1) + logp).view(n, k * vocab)
        top_scores, top_idx = torch.topk(cand, min(2 * k, k * vocab), dim=-1)
        next_rows, next_tokens, next_scores, next_generated = [], [], [], []
        for i in range(n):
            chosen = 0
            if not done[i]:
                for s, flat in zip(top_scores[i].tolist(), top_idx[i].tolist()):
                    if chosen == k or s == float("-inf"):
                        break
                    beam, token = divmod(flat, vocab)
                    row = i * k + beam
                    if token == sep:
                        finished[i].append((s / step ** lp, list(generated[row])))
                        continue
                    next_rows.append(row)
                    next_tokens.append(token)
                    next_scores.append(s)
                    next_generated.append(generated[row] + [token])
                    chosen += 1
                done[i] = len(finished[i]) >= k
            for _ in range(k - chosen):  # keep the batch rectangular with dead beams
                next_rows.append(i * k)
                next_tokens.append(sep)
                next_scores.append(float("-inf"))
                next_generated.append([])
        if all(done) or step == decode.max_new_tokens:
            generated = next_generated
            scores = torch.tensor(next_scores, dtype=torch.float64).view(n, k)
            break
        rows = torch.tensor(next_rows, dtype=torch.long)
        cache.select(rows)
        cache.push(torch.tensor(next_tokens, dtype=torch.long))
        scores = torch.tensor(next_scores, dtype=torch.float64).view(n, k)
        generated = next_generated
    results = []
    for i in range(n):
        hyps = list(finished[i])
        if not done[i]:  # ran out of tokens: live beams count as finished
            for b in range(k):
                s = float(scores[i, b])
                toks = generated[i * k + b]
                if s != float("-inf") and toks:
                    hyps.append((s / len(toks) ** lp, toks))
        results.append(max(hyps, key=lambda h: h[0])[1] if hyps else [])
    return results


# -- public -----------------------------------------------------------------------------------------


def generate(lm: "TrainedLM", prompts: Sequence[str], decode: DecodeConfig, batch_size: int = 64) -> list[str]:
    """The continuation of each prompt (without the prompt), decoded as ``decode`` says; see the module docstring.

    Beam search runs ``max(1, batch_size // num_beams)`` prompts at a time.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ids = [_prompt_ids(lm, p) for p in prompts]
    # similar lengths together: less padding (results are put back in prompt order)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    per_batch = max(1, batch_size // decode.num_beams) if decode.strategy == "beam" else batch_size
    gen = torch.Generator().manual_seed(decode.seed)
    out: list[str] = [""] * len(ids)
    was_training = lm.model.training
    lm.model.eval()
    try:
        with torch.inference_mode():
            for b in range(0, len(order), per_batch):
                chunk = order[b:b + per_batch]
                batch = [ids[i] for i in chunk]
                if decode.strategy == "beam":
                    toks = _beam_batch(lm, batch, decode)
                else:
                    toks = _generate_batch(lm, batch, decode, gen)
                for i, t in zip(chunk, toks):
                    out[i] = lm.decode(t)
    finally:
        lm.model.train(was_training)
    return out


def hf_generate_kwargs(decode: DecodeConfig) -> dict[str, Any]:
    """``model.generate`` keyword arguments for ``decode`` (only the ones its strategy uses)."""
    kw: dict[str, Any] = {"max_new_tokens": decode.max_new_tokens}
    if decode.strategy == "greedy":
        kw.update(do_sample=False, num_beams=1, temperature=None, top_k=None, top_p=None)
    elif decode.strategy == "sample":
        kw.update(do_sample=True, num_beams=1, temperature=decode.temperature, top_k=decode.top_k,
                  top_p=decode.top_p)
    else:
        kw.update(do_sample=False, num_beams=decode.num_beams, length_penalty=decode.length_penalty,
                  early_stopping=True, temperature=None, top_k=None, top_p=None)
    return kw


def generate_hf(model_dir: str | Path, prompts: Sequence[str], decode: DecodeConfig,
                batch_size: int = 16) -> list[str]:
    """Continuations of ``prompts`` from the transformers causal LM in ``model_dir`` with ``model.generate``.

    Prompts are tokenized with the tokenizer's special tokens; an empty prompt starts
    from the BOS token (EOS when there is none). Prompts are left-padded in batches of
    ``batch_size``. Sampling draws from torch's global RNG seeded with ``decode.seed``
    (restored afterwards).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gristmill.models.locate import offline

    offline()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()
    eos = tok.eos_token_id
    start = tok.bos_token_id if tok.bos_token_id is not None else eos
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    kw = hf_generate_kwargs(decode)
    out: list[str] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(decode.seed)
        for b in range(0, len(prompts), batch_size):
            chunk = list(prompts[b:b + batch_size])
            encoded = [tok(p)["input_ids"] if p else [] for p in chunk]
            encoded = [e if e else [start] for e in encoded]
            width = max(len(e) for e in encoded)
            ids = torch.full((len(encoded), width), pad, dtype=torch.long)
            mask = torch.zeros((len(encoded), width), dtype=torch.long)
            for r, e in enumerate(encoded):
                ids[r, width - len(e):] = torch.tensor(e)
                mask[r, width - len(e):] = 1
            with torch.inference_mode():
                result = model.generate(input_ids=ids, attention_mask=mask, pad_token_id=pad, eos_token_id=eos,
                                        **kw)
            out.extend(tok.decode(row[width:], skip_special_tokens=True) for row in result)
    return out
