"""``train lm``: a small decoder-only transformer trained from scratch on CPU, and its perplexity.

The model is :class:`gristmill.train.gpt.TransformerLM` (GPT-2 shaped, about 1M parameters by
default). :func:`train_lm` tokenizes the documents, joins them with ``<|endoftext|>`` into one
stream and trains on random windows of ``context + 1`` tokens (cross-entropy) through
:class:`gristmill.train.loop.Loop`: AdamW (betas 0.9/0.95; no decay on biases and norm gains),
linear warmup then cosine decay (``schedule``) to ``lr * min_lr_ratio``, gradient clipping; the
settings are an :class:`~gristmill.train.config.LMConfig`. The windows of step
``s`` depend only on ``(seed, s)``, and a checkpoint holds model, optimizer, step and the torch
RNG state (dropout), so a resumed run repeats and skips no step and ends with the same weights as
an uninterrupted one (same thread count).

:func:`perplexity` and :func:`token_log_likelihoods` score each text on its own with the one
windowed rule of :mod:`gristmill.evaluate.perplexity`: ``<|endoftext|> text`` (the separator is
context only), windows of the default length fitted to the model's context (``context`` tokens,
``context // 2`` new ones per window after the first, for contexts up to 512), every token of
the text scored once. The figure is the one ``gristmill eval perplexity --model RUN`` gives
with its defaults; the dev points logged during training use the same rule.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tokenizers
import torch
import torch.nn.functional as F

from gristmill.evaluate.perplexity import TrainedLMScorer, effective_window, score_segments, token_segment
from gristmill.train.checkpoint import complete_checkpoints
from gristmill.train.config import LMConfig
from gristmill.train.gpt import TransformerLM
from gristmill.train.loop import Loop, LoopConfig
from gristmill.train.tokenizer import load_tokenizer, save_tokenizer, separator_id, train_tokenizer

if TYPE_CHECKING:
    from gristmill.rundir import RunDir

__all__ = ["LMConfig", "TrainedLM", "TransformerLM", "perplexity", "split_documents", "token_log_likelihoods",
           "train_lm"]

MODEL_FORMAT = "gristmill-lm"
_WEIGHTS = "model.pt"
_CONFIG = "config.json"
_CHECKPOINTS = "checkpoints"
_TRAIN_LOG_EVERY = 10


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


# -- perplexity -------------------------------------------------------------------------------------


@torch.no_grad()
def _ids_nll(lm: TrainedLM, token_ids: Sequence[Sequence[int]], batch_size: int) -> tuple[list[float], list[int]]:
    """Summed NLL (nats) and scored-token count of each text given as ids (see the module docstring)."""
    scorer = TrainedLMScorer(lm, "train lm")
    max_length, stride = effective_window(scorer)
    was_training = lm.model.training
    lm.model.eval()
    try:
        scores = score_segments(scorer, [token_segment(lm.sep_id, ids) for ids in token_ids], max_length, stride,
                                batch_size)
    finally:
        lm.model.train(was_training)
    return [s for s, _ in scores], [c for _, c in scores]


def _text_nll(lm: TrainedLM, texts: Sequence[str], batch_size: int) -> tuple[list[float], list[int]]:
    """Summed NLL (nats) and scored-token count per text (see the module docstring for what is scored)."""
    ids = [enc.ids for enc in lm.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    return _ids_nll(lm, ids, batch_size)


def perplexity(lm: TrainedLM, texts: Sequence[str], batch_size: int = 16) -> float:
    """Token-level perplexity of ``texts``: exp(total NLL / total scored tokens) over all texts."""
    sums, counts = _text_nll(lm, texts, batch_size)
    if not sum(counts):
        raise ValueError("no tokens to score")
    return math.exp(sum(sums) / sum(counts))


def token_log_likelihoods(lm: TrainedLM, texts: Sequence[str], batch_size: int = 16) -> list[float]:
    """Mean negative log-likelihood per token (nats/token) of each text (NaN for a text without tokens)."""
    sums, counts = _text_nll(lm, texts, batch_size)
    return [s / c if c else math.nan for s, c in zip(sums, counts)]


def _dev_ids(tok: tokenizers.Tokenizer, texts: Sequence[str], budget: int) -> list[list[int]]:
    """The ids of the first ``texts`` (whole, in order, at least one) holding up to ``budget`` tokens."""
    out: list[list[int]] = []
    total = 0
    for enc in tok.encode_batch(list(texts), add_special_tokens=False):
        if out and total + len(enc.ids) > budget:
            break
        out.append(enc.ids)
        total += len(enc.ids)
    return out


# -- checkpoints ------------------------------------------------------------------------------------


def _identity(cfg: LMConfig) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in LMConfig.SHAPE}


def _loop_config(cfg: LMConfig) -> LoopConfig:
    return LoopConfig.of(cfg, cfg.steps, betas=(0.9, 0.95), checkpoint_last=True)


# -- training ---------------------------------------------------------------------------------------


def train_lm(train_texts: Sequence[str], dev_texts: Sequence[str] | None, config: LMConfig,
             run: "RunDir | None" = None, tokenizer: tokenizers.Tokenizer | None = None, resume: bool = False,
             progress: bool = True, notify: Callable[[str], None] | None = None) -> TrainedLM:
    """Train a :class:`TransformerLM` on the documents ``train_texts``; returns it in eval mode.

    The tokenizer is trained on ``train_texts`` unless given. With ``run``, logs
    ``train`` points (loss, lr, tokens_per_s; every 10 steps, loss averaged over them) and
    ``dev`` points (loss, perplexity: :func:`perplexity` of the first ``dev_texts``, whole, up
    to ``eval_batches * batch_size * context`` tokens, which is all of a small dev set; every
    ``eval_every`` steps and at the end), and writes checkpoints to ``run.path/checkpoints``
    every ``checkpoint_every`` steps and at the end (the last two kept; see
    :mod:`gristmill.train.checkpoint`). ``resume`` continues from the newest complete
    checkpoint there (and its tokenizer), if any, telling ``notify`` where (and which broken
    checkpoints it passed over); one of another model shape raises
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
    if (resume and ckpt_dir is not None and (ckpt_dir / "tokenizer.json").is_file()
            and complete_checkpoints(ckpt_dir)):
        tokenizer = load_tokenizer(ckpt_dir)  # the checkpoints' own (written when their run began)
    elif tokenizer is None:
        tokenizer = train_tokenizer(train_texts, config.vocab_size)
    cfg = replace(config, vocab_size=tokenizer.get_vocab_size())

    torch.manual_seed(cfg.seed)
    model = TransformerLM(cfg)
    lm = TrainedLM(model, tokenizer, cfg)
    loop = Loop(model, _loop_config(cfg), ckpt_dir, _identity(cfg))
    if loop.begin(resume, notify) is not None:
        run.forget_after(loop.step, series=("train", "dev"))
    elif ckpt_dir is not None:
        save_tokenizer(tokenizer, ckpt_dir)
    start = loop.step

    stream = _stream(tokenizer, train_texts, cfg.context + 2)
    dev_ids = _dev_ids(tokenizer, dev_texts, cfg.eval_batches * cfg.batch_size * cfg.context) if run is not None else []

    def loss_fn(batch: torch.Tensor) -> torch.Tensor:
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        return loss / cfg.grad_accum if cfg.grad_accum > 1 else loss

    def batches(step: int) -> list[torch.Tensor]:  # micro-batch k of step s: the windows of draw s * grad_accum + k
        return [_batch(stream, cfg.context, cfg.batch_size, cfg.seed, step * cfg.grad_accum + k)
                for k in range(cfg.grad_accum)]

    tokens_per_step = cfg.batch_size * cfg.context * cfg.grad_accum
    window = {"loss": 0.0, "steps": 0, "seconds": 0.0}
    with progress_bars(progress) as bars:
        task = bars.add_task("train", total=cfg.steps * tokens_per_step, unit="tok",
                             completed=start * tokens_per_step)

        def on_step(done: int, loss: float) -> None:
            window["loss"] += loss
            window["steps"] += 1
            window["seconds"] += loop.step_seconds
            bars.update(task, advance=tokens_per_step, description=f"train loss {loss:.3f}")
            if run is None:
                return
            if done % _TRAIN_LOG_EVERY == 0 or done == cfg.steps:  # throughput of the training steps only
                run.log("train", done, loss=window["loss"] / window["steps"], lr=loop.lr,
                        tokens_per_s=window["steps"] * tokens_per_step / max(window["seconds"], 1e-9))
                window.update(loss=0.0, steps=0, seconds=0.0)
            if dev_ids and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps):
                sums, counts = _ids_nll(lm, dev_ids, cfg.batch_size)
                dev_loss = sum(sums) / max(1, sum(counts))
                run.log("dev", done, loss=dev_loss, perplexity=math.exp(dev_loss))

        loop.run(batches, loss_fn, on_step,
                 state=lambda: {"config": asdict(cfg)})
    model.eval()
    return lm
