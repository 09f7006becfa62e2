"""Perplexity of a causal LM on a dataset of texts or chat conversations: the one windowed rule.

This module is the only place perplexity over long texts is computed: ``gristmill eval
perplexity`` (:func:`evaluate_perplexity`), ``train lm``'s dev perplexity
(:func:`gristmill.train.lm.perplexity`, the same figure as ``eval perplexity`` of the trained
model with the default window) and the ``quality.perplexity`` operator
(:func:`score_token_texts`) all score through :func:`windows` and :func:`score_segments`.

A document is one or more *segments*: a token sequence and the span of it that is scored.
A text is one segment, ``<|endoftext|>`` (the model's document separator, see
:class:`gristmill.models.causal_lm.CausalLM`) followed by its tokens, every token after the
separator scored (no closing separator is added). A conversation is rendered with the
tokenizer's chat template (plain ``role: content`` lines when it has none) and either scored
whole (one segment) or assistant-only: one segment per assistant turn, the conversation up to
the end of that turn, with only the turn's own tokens (its content and end-of-turn marker)
scored and everything before it as context.

A segment longer than ``max_length`` is scored with sliding windows (as in the
transformers perplexity guide): no window is longer than ``max_length`` tokens; the first
window scores all its tokens (up to ``max_length - 1``, after the separator); each next one
scores only the next ``stride`` new tokens, with the ``max_length - stride`` tokens before them
as context (the last window ends at the segment's end and takes as much context as fits).
Every scored token is scored exactly once.

The corpus perplexity is token-weighted, ``exp(Σ NLL / Σ tokens)`` over all documents;
its 95% interval comes from a bootstrap over documents. Per-document perplexities are
``exp`` of each document's mean NLL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

__all__ = ["DEFAULT_MAX_LENGTH", "DEFAULT_STRIDE", "DocumentPerplexity", "HFScorer", "PerplexityResult", "Scorer",
           "Segment", "TrainedLMScorer", "WindowScorer", "bootstrap_ci", "chat_segments", "effective_window",
           "evaluate_perplexity", "plain_chat", "score_segments", "score_token_texts", "text_segments",
           "token_segment", "windows"]

DEFAULT_MAX_LENGTH = 512  # tokens per window (cut to the model's context, see effective_window)
DEFAULT_STRIDE = 256      # new tokens scored per window after the first

ChatScope = Literal["assistant", "whole"]


@dataclass(frozen=True)
class Segment:
    """Token ids and the half-open span ``[lo, hi)`` of them that is scored (``lo >= 1``)."""

    ids: tuple[int, ...]
    lo: int
    hi: int


def windows(lo: int, hi: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows ``(begin, end, first)`` over a sequence that together score tokens ``lo..hi-1`` once each.

    Window tokens are ``[begin, end)``; its tokens from ``begin + first`` on are scored, each given
    the window's tokens before it (``first >= 1``). ``1 <= stride < max_length``.
    """
    if not 1 <= stride < max_length:
        raise ValueError(f"stride must be in 1..max_length-1 ({max_length - 1}), not {stride}")
    if lo < 1:
        raise ValueError("the first token has no context: lo must be >= 1")
    out = []
    start = lo
    end = min(hi, max(lo + stride, max_length))
    while start < hi:
        begin = max(0, end - max_length)
        out.append((begin, end, start - begin))
        start, end = end, min(hi, end + stride)
    return out


class WindowScorer(Protocol):
    """What :func:`score_segments` needs of a model: the summed NLL and count of the scored tokens of
    each window (token ``j >= first[i]`` of window ``i`` scored given the window's tokens before it).
    :class:`gristmill.models.causal_lm.CausalLM` is one, as are :class:`HFScorer` and :class:`TrainedLMScorer`."""

    def window_losses(self, windows: Sequence[Sequence[int]], first: Sequence[int],
                      batch_size: int) -> tuple[list[float], list[int]]: ...


class Scorer(WindowScorer, Protocol):
    """What scoring texts and chats needs of a model: tokenization, chat rendering, the separator, and window
    losses."""

    name: str
    prefix_id: int
    max_context: int | None

    def encode(self, text: str) -> list[int]: ...

    def render(self, messages: Sequence[dict[str, str]], generation_prompt: bool) -> str: ...


def plain_chat(messages: Sequence[dict[str, str]], generation_prompt: bool) -> str:
    """A conversation as ``role: content`` lines (for tokenizers without a chat template)."""
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if generation_prompt else "")


@dataclass
class HFScorer:
    """A transformers causal LM (:class:`~gristmill.models.causal_lm.CausalLM`) as a :class:`Scorer`."""

    lm: Any
    name: str

    @property
    def prefix_id(self) -> int:
        return int(self.lm.prefix_id)

    @property
    def max_context(self) -> int | None:
        return getattr(self.lm.model.config, "max_position_embeddings", None)

    def encode(self, text: str) -> list[int]:
        return list(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(self, messages: Sequence[dict[str, str]], generation_prompt: bool) -> str:
        tok = self.lm.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)
        return plain_chat(messages, generation_prompt)

    def window_losses(self, windows: Sequence[Sequence[int]], first: Sequence[int],
                      batch_size: int) -> tuple[list[float], list[int]]:
        return self.lm.window_losses(windows, first, batch_size)


@dataclass
class TrainedLMScorer:
    """A ``gristmill train lm`` model (:class:`gristmill.train.lm.TrainedLM`) as a :class:`Scorer`.

    Its tokenizer has no chat template, so conversations are rendered with :func:`plain_chat`.
    Windows are at most the model's ``context`` tokens long (:attr:`max_context`). The caller puts
    the model in eval mode (dropout off).
    """

    lm: Any
    name: str

    @property
    def prefix_id(self) -> int:
        return int(self.lm.sep_id)

    @property
    def max_context(self) -> int | None:
        return int(self.lm.config.context)

    def encode(self, text: str) -> list[int]:
        return list(self.lm.encode(text))

    def render(self, messages: Sequence[dict[str, str]], generation_prompt: bool) -> str:
        return plain_chat(messages, generation_prompt)

    def window_losses(self, windows: Sequence[Sequence[int]], first: Sequence[int],
                      batch_size: int) -> tuple[list[float], list[int]]:
        import torch

        n = len(windows)
        sums, counts = [0.0] * n, [0] * n
        order = sorted(range(n), key=lambda i: -len(windows[i]))
        model = self.lm.model
        with torch.inference_mode():
            for s in range(0, n, batch_size):
                rows = order[s:s + batch_size]
                width = max(len(windows[i]) for i in rows)
                ids = torch.full((len(rows), width), self.prefix_id, dtype=torch.long)
                for r, i in enumerate(rows):
                    ids[r, :len(windows[i])] = torch.tensor(list(windows[i]), dtype=torch.long)
                # right padding: causal attention keeps the real positions exact
                logp = torch.log_softmax(model(ids[:, :-1]).float(), dim=-1)
                nll = -logp.gather(2, ids[:, 1:, None]).squeeze(2).double()
                for r, i in enumerate(rows):
                    lo = max(first[i], 1)
                    sums[i] = float(nll[r, lo - 1:len(windows[i]) - 1].sum())
                    counts[i] = max(len(windows[i]) - lo, 0)
        return sums, counts


def token_segment(prefix_id: int, ids: Sequence[int]) -> list[Segment]:
    """One segment: ``prefix_id`` then ``ids``, all of ``ids`` scored (no segment when ``ids`` is empty)."""
    seq = (int(prefix_id), *ids)
    return [Segment(seq, 1, len(seq))] if len(seq) > 1 else []


def text_segments(scorer: Scorer, text: str) -> list[Segment]:
    """One segment: the separator then the text's tokens, all of them scored (none when the text has none)."""
    return token_segment(scorer.prefix_id, scorer.encode(text))


def chat_segments(scorer: Scorer, messages: Sequence[dict[str, str]], scope: ChatScope = "assistant") -> list[Segment]:
    """The segments of a conversation ``[{role, content}]``: the whole rendered conversation
    (``scope="whole"``), or each assistant turn given the conversation before it."""
    if scope == "whole":
        return text_segments(scorer, scorer.render(messages, False))
    out = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        full = [scorer.prefix_id, *scorer.encode(scorer.render(messages[:i + 1], False))]
        before = [scorer.prefix_id, *scorer.encode(scorer.render(messages[:i], True))]
        lo = 0
        while lo < min(len(full), len(before)) and full[lo] == before[lo]:
            lo += 1  # the turn starts where the tokens of the prompt-so-far stop matching
        lo = max(lo, 1)
        if lo < len(full):
            out.append(Segment(tuple(full), lo, len(full)))
    return out


def score_segments(lm: WindowScorer, documents: Sequence[Sequence[Segment]], max_length: int, stride: int,
                   batch_size: int = 8, on_tokens: Callable[[int], None] | None = None) -> list[tuple[float, int]]:
    """Summed NLL (nats) and scored-token count of each document, with ``lm.window_losses``.

    Windows of all documents run together, longest first, ``batch_size`` per forward pass;
    ``on_tokens`` is called with the tokens scored after each group of passes (progress).
    """
    wins: list[list[int]] = []
    first: list[int] = []
    owner: list[int] = []
    for d, segments in enumerate(documents):
        for seg in segments:
            for begin, end, f in windows(seg.lo, seg.hi, max_length, stride):
                wins.append(list(seg.ids[begin:end]))
                first.append(f)
                owner.append(d)
    order = sorted(range(len(wins)), key=lambda i: -len(wins[i]))
    sums = [0.0] * len(documents)
    counts = [0] * len(documents)
    group = batch_size * 4
    for s in range(0, len(order), group):
        idx = order[s:s + group]
        nll, n = lm.window_losses([wins[i] for i in idx], [first[i] for i in idx], batch_size)
        for i, v, c in zip(idx, nll, n):
            sums[owner[i]] += v
            counts[owner[i]] += c
        if on_tokens is not None:
            on_tokens(sum(n))
    return list(zip(sums, counts))


def score_token_texts(lm: WindowScorer, token_ids: Sequence[Sequence[int]], prefix_id: int, max_length: int,
                      stride: int | None = None, batch_size: int = 8) -> list[tuple[float, int]]:
    """Summed NLL (nats) and scored-token count of each text given as token ids (no special tokens).

    Each text is ``prefix_id`` (the document separator) followed by its ids, every id scored with
    the windowed rule of this module (``max_length`` tokens per window, ``stride`` new tokens per
    window after the first). ``stride=None`` scores only the first window: the first
    ``max_length - 1`` ids. A text without ids scores ``(0.0, 0)``. ``1 <= stride < max_length``.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, not {max_length}")
    docs = []
    for ids in token_ids:
        if stride is None:
            ids = list(ids)[:max_length - 1]
        docs.append(token_segment(prefix_id, ids))
    return score_segments(lm, docs, max_length, max_length - 1 if stride is None else stride, batch_size)


def bootstrap_ci(nll: Sequence[float], counts: Sequence[int], resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of the token-weighted perplexity, resampling documents (None below 2)."""
    from gristmill.stats import bootstrap

    if len(nll) < 2:
        return None

    def corpus_perplexity(n: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.exp(n.sum(axis=axis) / np.maximum(c.sum(axis=axis), 1))

    bounds = bootstrap(np.asarray(nll, np.float64), np.asarray(counts, np.float64), statistic=corpus_perplexity,
                       resamples=resamples, seed=seed, confidence=level).bounds
    return None if bounds is None else (bounds[0], bounds[1])


@dataclass
class DocumentPerplexity:
    """One document's score: summed NLL in nats over its scored tokens, and its perplexity."""

    index: int
    id: str
    tokens: int
    nll: float
    perplexity: float | None


@dataclass
class PerplexityResult:
    """The corpus figures and every document's score."""

    model: str
    documents: int
    scored_documents: int
    tokens: int
    mean_nll: float
    perplexity: float
    ci95: tuple[float, float] | None
    doc_perplexity_median: float | None
    max_length: int
    stride: int
    seconds: float
    tokens_per_s: float
    per_document: list[DocumentPerplexity] = field(default_factory=list, repr=False)

    def figures(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "per_document"}


def effective_window(lm: Scorer, max_length: int = DEFAULT_MAX_LENGTH, stride: int = DEFAULT_STRIDE) -> tuple[int, int]:
    """``(max_length, stride)`` fitted to the model's context (see :func:`evaluate_perplexity`)."""
    if lm.max_context is not None and max_length > lm.max_context:
        max_length = int(lm.max_context)
    if stride >= max_length:
        stride = max(1, max_length // 2)
    return max_length, stride


def evaluate_perplexity(lm: Scorer, documents: Sequence[Sequence[Segment]], ids: Sequence[str] | None = None,
                        max_length: int = DEFAULT_MAX_LENGTH, stride: int = DEFAULT_STRIDE, batch_size: int = 8,
                        on_tokens: Callable[[int], None] | None = None, seed: int = 0) -> PerplexityResult:
    """Corpus and per-document perplexity of ``lm`` (a :class:`~gristmill.models.causal_lm.CausalLM`)
    over ``documents`` (from :func:`text_segments` / :func:`chat_segments`). A document with no
    scored token gets perplexity ``None`` and does not count. Raises ``ValueError`` when no token
    is scored at all. ``seed`` seeds the bootstrap interval.

    ``max_length`` is cut to the model's context (``lm.max_context``) and ``stride`` then to half of
    it when it no longer fits; the result holds the values used."""
    max_length, stride = effective_window(lm, max_length, stride)
    t0 = time.perf_counter()
    scores = score_segments(lm, documents, max_length, stride, batch_size, on_tokens)
    seconds = time.perf_counter() - t0
    ids = list(ids) if ids is not None else [str(i) for i in range(len(documents))]
    per = [DocumentPerplexity(i, ids[i], c, s, math.exp(s / c) if c else None)
           for i, (s, c) in enumerate(scores)]
    scored = [d for d in per if d.tokens]
    total = sum(d.tokens for d in scored)
    if not total:
        raise ValueError("no token to score (every document is empty)")
    nll = sum(d.nll for d in scored)
    return PerplexityResult(
        model=lm.name, documents=len(per), scored_documents=len(scored), tokens=total,
        mean_nll=nll / total, perplexity=math.exp(nll / total),
        ci95=bootstrap_ci([d.nll for d in scored], [d.tokens for d in scored], seed=seed),
        doc_perplexity_median=float(np.median([d.perplexity for d in scored])),
        max_length=max_length, stride=stride, seconds=seconds, tokens_per_s=total / seconds if seconds > 0 else 0.0,
        per_document=per)
