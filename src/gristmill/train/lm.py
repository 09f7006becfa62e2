"""A small decoder-only transformer trained from scratch on CPU, and its perplexity.

The model (:class:`TransformerLM`) is GPT-2 shaped: token + learned position
embeddings, pre-LayerNorm blocks of causal self-attention
(``scaled_dot_product_attention(is_causal=True)``) and a GELU MLP, a final LayerNorm, and
an output head tied to the token embedding.

:func:`train_lm` tokenizes the documents, joins them with ``<|endoftext|>`` into one
stream and trains on random windows of ``context + 1`` tokens (cross-entropy, AdamW with
no decay on norms, biases and embeddings, linear warmup then cosine decay to
``lr * min_lr_ratio``, gradient clipping). The windows of step ``s`` depend only on
``(seed, s)``, and a checkpoint (:mod:`gristmill.train.checkpoint`) holds model,
optimizer, step and the torch RNG state (dropout), so a resumed run repeats and skips no
step and ends with the same weights as an uninterrupted one (same thread count).

:func:`perplexity` and :func:`token_log_likelihoods` score each text on its own:
``<|endoftext|> text <|endoftext|>`` cut into non-overlapping windows of ``context``
scored tokens (each window sees the previous window's last token), so every token of
the text and the closing separator is scored exactly once; the opening separator is
context only.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tokenizers
import torch
import torch.nn.functional as F
from torch import nn

from gristmill.train.checkpoint import (check_compatible, clear_checkpoints, resume_point, save_checkpoint,
                                        tensor_shapes)
from gristmill.train.tokenizer import load_tokenizer, save_tokenizer, separator_id, train_tokenizer

if TYPE_CHECKING:
    from gristmill.rundir import RunDir

__all__ = ["LMConfig", "TrainedLM", "TransformerLM", "perplexity", "split_documents", "token_log_likelihoods",
           "train_lm"]

MODEL_FORMAT = "gristmill-lm"
_WEIGHTS = "model.pt"
_CONFIG = "config.json"
_CHECKPOINTS = "checkpoints"
_KEEP_CHECKPOINTS = 2
_TRAIN_LOG_EVERY = 10
_SHAPE = ("vocab_size", "context", "n_layer", "n_head", "d_model")


@dataclass
class LMConfig:
    """Size and training schedule of a from-scratch LM.

    The defaults (about 1M parameters) train in minutes on 2 CPU cores. ``vocab_size`` is
    the BPE size asked for when the tokenizer is trained here; the model always uses the
    tokenizer's actual size. ``steps`` counts optimizer steps of ``batch_size`` windows of
    ``context`` tokens. ``threads``: torch threads (None: see
    :func:`gristmill.models.runtime.set_torch_threads`). ``bf16``: run the training
    forward pass under bfloat16 autocast (about 2x faster on CPUs with bf16 support;
    weights, optimizer and every evaluation stay float32).
    """

    vocab_size: int = 2048
    context: int = 128
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    dropout: float = 0.1
    steps: int = 1500
    batch_size: int = 32
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_batches: int = 20
    checkpoint_every: int = 500
    seed: int = 0
    threads: int | None = None
    bf16: bool = False

    def __post_init__(self) -> None:
        positive = ("vocab_size", "context", "n_layer", "n_head", "d_model", "steps", "batch_size",
                    "eval_every", "eval_batches", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"LMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_head:
            raise ValueError(f"LMConfig.d_model ({self.d_model}) must be a multiple of n_head ({self.n_head})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LMConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0:
            raise ValueError(f"LMConfig.lr must be > 0, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"LMConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.warmup < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("LMConfig.warmup, weight_decay and grad_clip must be >= 0")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LMConfig":
        """The config in ``d`` (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# -- model --------------------------------------------------------------------------------------


class _Block(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
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

    def __init__(self, cfg: LMConfig) -> None:
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


# -- trained model --------------------------------------------------------------------------------


@dataclass
class TrainedLM:
    """A trained :class:`TransformerLM` (in eval mode), its tokenizer and its config."""

    model: TransformerLM
    tokenizer: tokenizers.Tokenizer
    config: LMConfig

    @property
    def sep_id(self) -> int:
        """The document separator's id (``<|endoftext|>``)."""
        return separator_id(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, special tokens dropped."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def save(self, directory: Path) -> None:
        """Write ``model.pt`` (state dict), ``tokenizer.json`` and ``config.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _atomic_save(self.model.state_dict(), directory / _WEIGHTS)
        save_tokenizer(self.tokenizer, directory)
        (directory / _CONFIG).write_text(json.dumps({"format": MODEL_FORMAT, **asdict(self.config)}, indent=2) + "\n",
                                         encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "TrainedLM":
        """Read a model written by :meth:`save`."""
        directory = Path(directory)
        meta = json.loads((directory / _CONFIG).read_text(encoding="utf-8"))
        if meta.get("format") != MODEL_FORMAT:
            raise ValueError(f"{directory / _CONFIG}: not a gristmill from-scratch LM (format {meta.get('format')!r})")
        cfg = LMConfig.from_dict(meta)
        model = TransformerLM(cfg)
        model.load_state_dict(torch.load(directory / _WEIGHTS, map_location="cpu", weights_only=True))
        model.eval()
        return cls(model, load_tokenizer(directory), cfg)

    @staticmethod
    def is_model_dir(directory: Path) -> bool:
        """Whether ``directory`` holds a model written by :meth:`save`."""
        f = Path(directory) / _CONFIG
        if not f.is_file() or not (Path(directory) / _WEIGHTS).is_file():
            return False
        try:
            return json.loads(f.read_text(encoding="utf-8")).get("format") == MODEL_FORMAT
        except (OSError, json.JSONDecodeError):
            return False


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# -- data -------------------------------------------------------------------------------------------


def split_documents(text: str, min_chars: int = 1000, max_chars: int = 2000) -> list[str]:
    """Cut a long text on blank lines into documents of ``min_chars`` to about ``max_chars`` characters.

    Paragraphs are never split (one longer than ``max_chars`` is a document of its own);
    blank paragraphs are dropped; paragraphs of a document are joined by one blank line.
    """
    docs, cur, size = [], [], 0
    for para in text.split("\n\n"):
        if not para.strip():
            continue
        if cur and size + len(para) > max_chars:
            docs.append("\n\n".join(cur))
            cur, size = [], 0
        cur.append(para)
        size += len(para) + 2
        if size >= min_chars:
            docs.append("\n\n".join(cur))
            cur, size = [], 0
    if cur:
        docs.append("\n\n".join(cur))
    return docs



def _stream(tok: tokenizers.Tokenizer, texts: Sequence[str], min_len: int) -> torch.Tensor:
    """``<sep> doc1 <sep> doc2 <sep> ...`` as one tensor, repeated until it holds ``min_len`` tokens."""
    sep = separator_id(tok)
    ids: list[int] = [sep]
    for enc in tok.encode_batch(list(texts), add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(sep)
    if len(ids) < 2:
        raise ValueError("no text to train on")
    reps = -(-min_len // len(ids))
    return torch.tensor(ids * max(1, reps), dtype=torch.long)


def _batch(stream: torch.Tensor, context: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """``batch_size`` windows of ``context + 1`` tokens; which ones depends only on ``(seed, step)``."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, len(stream) - context, (batch_size,), generator=g)
    return torch.stack([stream[s:s + context + 1] for s in starts.tolist()])


def _lr_at(cfg: LMConfig, step: int) -> float:
    """Linear warmup over ``warmup`` steps, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    min_lr = cfg.lr * cfg.min_lr_ratio
    progress = (step - cfg.warmup) / max(1, cfg.steps - 1 - cfg.warmup)
    return min_lr + 0.5 * (cfg.lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def _optimizer(model: TransformerLM, cfg: LMConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on the Linear layers' weights only (not norms, biases, embeddings/tied head)."""
    decay_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)} - {id(model.tok_emb.weight)}
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if id(p) in decay_ids else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


# -- checkpoints ------------------------------------------------------------------------------------


def _checkpoint_state(model: TransformerLM, opt: torch.optim.Optimizer, cfg: LMConfig) -> dict[str, Any]:
    """What :mod:`gristmill.train.checkpoint` saves: weights, optimizer, torch RNG, config, and the shape."""
    weights = model.state_dict()
    return {"model": weights, "optimizer": opt.state_dict(), "rng": torch.get_rng_state(), "config": asdict(cfg),
            "identity": _identity(cfg), "shapes": tensor_shapes(weights)}


def _identity(cfg: LMConfig) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in _SHAPE}


# -- evaluation -------------------------------------------------------------------------------------


def _dev_windows(stream: torch.Tensor, context: int, n: int) -> torch.Tensor:
    """``n`` windows of ``context + 1`` tokens spread evenly over ``stream`` (the same at every evaluation)."""
    last = len(stream) - context - 1
    starts = torch.linspace(0, last, n).long().tolist() if n > 1 else [0]
    return torch.stack([stream[s:s + context + 1] for s in starts])


@torch.no_grad()
def _mean_loss(model: TransformerLM, windows: torch.Tensor, batch_size: int) -> float:
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        w = windows[i:i + batch_size]
        logits = model(w[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum").item()
        count += w[:, 1:].numel()
    return total / count


def _text_windows(ids: list[int], context: int) -> list[list[int]]:
    """Non-overlapping windows of at most ``context`` scored tokens; each starts at the previous one's last token."""
    return [ids[s:s + context + 1] for s in range(0, len(ids) - 1, context)]


@torch.no_grad()
def _text_nll(lm: TrainedLM, texts: Sequence[str], batch_size: int) -> tuple[list[float], list[int]]:
    """Summed NLL (nats) and scored-token count per text (see the module docstring for what is scored)."""
    sep, ctx, pad = lm.sep_id, lm.config.context, lm.sep_id
    windows: list[tuple[int, list[int]]] = []
    for i, enc in enumerate(lm.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
        windows.extend((i, w) for w in _text_windows([sep, *enc.ids, sep], ctx))
    sums, counts = [0.0] * len(texts), [0] * len(texts)
    windows.sort(key=lambda iw: -len(iw[1]))
    was_training = lm.model.training
    lm.model.eval()
    try:
        for b in range(0, len(windows), batch_size):
            chunk = windows[b:b + batch_size]
            width = max(len(w) for _, w in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            for r, (_, w) in enumerate(chunk):
                ids[r, :len(w)] = torch.tensor(w)
            logp = torch.log_softmax(lm.model(ids[:, :-1]).float(), dim=-1)
            nll = -logp.gather(2, ids[:, 1:, None]).squeeze(2)
            for r, (i, w) in enumerate(chunk):  # right padding: causal attention keeps real positions exact
                sums[i] += float(nll[r, :len(w) - 1].double().sum())
                counts[i] += len(w) - 1
    finally:
        lm.model.train(was_training)
    return sums, counts


def perplexity(lm: TrainedLM, texts: Sequence[str], batch_size: int = 16) -> float:
    """Token-level perplexity of ``texts``: exp(total NLL / total scored tokens) over all texts."""
    sums, counts = _text_nll(lm, texts, batch_size)
    if not sum(counts):
        raise ValueError("no tokens to score")
    return math.exp(sum(sums) / sum(counts))


def token_log_likelihoods(lm: TrainedLM, texts: Sequence[str], batch_size: int = 16) -> list[float]:
    """Mean negative log-likelihood per token (nats/token) of each text, closing separator included."""
    sums, counts = _text_nll(lm, texts, batch_size)
    return [s / c for s, c in zip(sums, counts)]


# -- training ---------------------------------------------------------------------------------------


def train_lm(train_texts: Sequence[str], dev_texts: Sequence[str] | None, config: LMConfig,
             run: "RunDir | None" = None, tokenizer: tokenizers.Tokenizer | None = None, resume: bool = False,
             progress: bool = True, notify: Callable[[str], None] | None = None) -> TrainedLM:
    """Train a :class:`TransformerLM` on the documents ``train_texts``; returns it in eval mode.

    The tokenizer is trained on ``train_texts`` unless given. With ``run``, logs
    ``train`` points (loss, lr, tokens_per_s; every 10 steps, loss averaged over them) and
    ``dev`` points (loss, perplexity on ``eval_batches * batch_size`` fixed windows of
    ``dev_texts``, every ``eval_every`` steps and at the end), and writes checkpoints
    to ``run.path/checkpoints`` every ``checkpoint_every`` steps and at the end (the last
    two kept; see :mod:`gristmill.train.checkpoint`). ``resume`` continues from the newest
    complete checkpoint there (and its tokenizer), if any, telling ``notify`` where (and
    which broken checkpoints it passed over); one of another model shape raises
    :class:`~gristmill.train.checkpoint.ResumeMismatch` (a ValueError). Without ``resume``
    old checkpoints there are deleted. Empty texts are dropped. The caller's torch RNG
    state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        return _train(train_texts, dev_texts, config, run, tokenizer, resume, progress, notify)


def _train(train_texts: Sequence[str], dev_texts: Sequence[str] | None, config: LMConfig, run: "RunDir | None",
           tokenizer: tokenizers.Tokenizer | None, resume: bool, progress: bool,
           notify: Callable[[str], None] | None) -> TrainedLM:
    from gristmill.models.runtime import set_torch_threads
    from gristmill.progress import progress_bars

    set_torch_threads(config.threads)
    train_texts = [t for t in train_texts if t and t.strip()]
    dev_texts = [t for t in (dev_texts or []) if t and t.strip()]
    if not train_texts:
        raise ValueError("no training texts")
    ckpt_dir = run.path / _CHECKPOINTS if run is not None else None
    ckpt = None
    if ckpt_dir is not None and not resume:
        clear_checkpoints(ckpt_dir)
    if ckpt_dir is not None and resume:
        ckpt = resume_point(ckpt_dir, notify)
    if ckpt is not None and (ckpt_dir / "tokenizer.json").is_file():
        tokenizer = load_tokenizer(ckpt_dir)
    elif tokenizer is None:
        tokenizer = train_tokenizer(train_texts, config.vocab_size)
    cfg = replace(config, vocab_size=tokenizer.get_vocab_size())

    torch.manual_seed(cfg.seed)
    model = TransformerLM(cfg)
    opt = _optimizer(model, cfg)
    start = 0
    if ckpt is not None:
        check_compatible(ckpt, _identity(cfg), tensor_shapes(model.state_dict()))
        model.load_state_dict(ckpt.state["model"])
        opt.load_state_dict(ckpt.state["optimizer"])
        start = ckpt.step
        torch.set_rng_state(ckpt.state["rng"])
        run.forget_after(start, series=("train", "dev"))
    elif ckpt_dir is not None:
        save_tokenizer(tokenizer, ckpt_dir)

    stream = _stream(tokenizer, train_texts, cfg.context + 2)
    dev_windows = None
    if dev_texts:
        dev_windows = _dev_windows(_stream(tokenizer, dev_texts, cfg.context + 2), cfg.context,
                                   cfg.eval_batches * cfg.batch_size)

    def evaluate(step: int) -> None:
        if dev_windows is None:
            return
        model.eval()
        loss = _mean_loss(model, dev_windows, cfg.batch_size)
        model.train()
        if run is not None:
            run.log("dev", step, loss=loss, perplexity=math.exp(loss))

    tokens_per_step = cfg.batch_size * cfg.context
    model.train()
    with progress_bars(progress) as bars:
        task = bars.add_task("train", total=cfg.steps * tokens_per_step, unit="tok",
                             completed=start * tokens_per_step)
        window_loss, window_steps, window_time = 0.0, 0, 0.0
        for step in range(start, cfg.steps):
            t0 = time.perf_counter()
            batch = _batch(stream, cfg.context, cfg.batch_size, cfg.seed, step)
            lr = _lr_at(cfg, step)
            for group in opt.param_groups:
                group["lr"] = lr
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(batch[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            done = step + 1
            window_time += time.perf_counter() - t0
            window_loss += loss.item()
            window_steps += 1
            bars.update(task, advance=tokens_per_step, description=f"train loss {loss.item():.3f}")
            if done % _TRAIN_LOG_EVERY == 0 or done == cfg.steps:
                if run is not None:  # throughput of the training steps only (not evaluation, checkpoints)
                    run.log("train", done, loss=window_loss / window_steps, lr=lr,
                            tokens_per_s=window_steps * tokens_per_step / max(window_time, 1e-9))
                window_loss, window_steps, window_time = 0.0, 0, 0.0
            if done % cfg.eval_every == 0 or done == cfg.steps:
                evaluate(done)
            if ckpt_dir is not None and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
                save_checkpoint(ckpt_dir, done, _checkpoint_state(model, opt, cfg), _KEEP_CHECKPOINTS)
    model.eval()
    return TrainedLM(model, tokenizer, cfg)
