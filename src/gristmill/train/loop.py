"""The one training loop: parameter groups, learning-rate schedule, accumulation, clipping, checkpoints.

Every trainer runs its optimizer steps through :class:`Loop`: ``train sft``
(:mod:`gristmill.train.sft`), ``train lm`` (:mod:`gristmill.train.lm`), token and sequence
classification (:func:`gristmill.train.token_classify.fit`), and the small heads and learners of
data selection (:mod:`gristmill.select.tagger`, :mod:`gristmill.select.learners`). A trainer
supplies what is its own: the micro-batches of step ``s``, the loss of one micro-batch, and a
hook after each step (logging, evaluation, early stopping); the loop owns the rest. One rule each
(where the old loops differed, the rule kept is named):

- **Weight decay** (AdamW, decoupled): on every trainable parameter of two or more dimensions
  (weight matrices, embeddings, LoRA matrices); none on one-dimensional ones (biases,
  LayerNorm / RMSNorm gains). The from-scratch LM used to exempt its embeddings as well and the
  tagger head decayed its biases; both now follow this rule (as nanoGPT does).
- **Learning rate** at optimizer step ``s`` (0-based) of ``T`` with ``W`` warmup steps:
  ``lr * (s + 1) / W`` while ``s < W``, then from ``lr`` down to ``lr * min_lr_ratio`` along a
  half cosine (``cosine``) or a straight line (``linear``) with progress ``(s - W) / (T - W)``, so
  the floor is where the step after the last would be and the last step still learns; or
  ``constant``. It is set before each step from ``s`` alone, so a schedule has no state to save.
  (The LM used to reach the floor at step ``T - 1``; classification started its warmup at 0.)
- **A step**: each micro-batch's loss is computed (under bfloat16 autocast when asked) and
  back-propagated; the trainer's loss function scales them so that their sum is the step's loss
  (e.g. summed token losses over the step's token count); then the global gradient norm is
  clipped to ``max_grad_norm`` (0: no clipping), AdamW steps and the gradients are cleared. The
  model is put in training mode before each step (an evaluation may have left it in eval mode).
- **After a step**: the trainer's ``on_step`` hook (it logs, evaluates, may ask to stop), then the
  checkpoint when one is due (every ``checkpoint_every`` steps, and after the last step with
  ``checkpoint_last``). A checkpoint thus holds everything done up to its step, evaluations
  included, and a resumed run repeats and skips no step and logs no point twice.
- **Checkpoint** (:mod:`gristmill.train.checkpoint`, atomic): the model's state dict without
  its frozen parameters (all weights, or a LoRA model's adapters), the optimizer, the torch RNG
  state (dropout), the step and the trainer's own state; its ``identity`` (model, method, shape,
  labels) and tensor shapes are checked on resume (:class:`~gristmill.train.checkpoint.ResumeMismatch`).
  A trainer whose batches are a function of the step (and its seed) therefore ends a resumed run
  with the same weights, bit for bit, as an uninterrupted one on the same thread count.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.train.checkpoint import (ResumeMismatch, check_compatible, clear_checkpoints, resume_point,
                                        save_checkpoint, tensor_shapes)
from gristmill.train.config import SCHEDULES, TrainConfig

__all__ = ["SCHEDULES", "Loop", "LoopConfig", "decays", "lr_factor", "param_groups"]

LAYOUT = 1  # the checkpoint layout written by Loop.save; a checkpoint without it is refused on resume


def decays(name: str, param: Any) -> bool:
    """Whether ``param`` gets weight decay: two or more dimensions (not a bias nor a norm's gain)."""
    return param.ndim >= 2


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups of ``model``'s trainable parameters: ``[decayed, not decayed]`` (see :func:`decays`)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if decays(name, p) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, total: int, warmup: int = 0, schedule: str = "cosine", min_ratio: float = 0.0) -> float:
    """The multiple of the peak learning rate used at optimizer step ``step`` (0-based) of ``total``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress
    return min_ratio + (1.0 - min_ratio) * shape


@dataclass
class LoopConfig:
    """How :class:`Loop` optimizes: AdamW, the schedule, clipping, precision and checkpoint cadence."""

    lr: float
    total_steps: int = 0              # the schedule's length (ignored by ``constant``)
    warmup: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = 1.0        # 0: no clipping
    bf16: bool = False                # bfloat16 autocast of the forward pass (weights stay as they are)
    checkpoint_every: int = 0         # 0: no periodic checkpoints
    keep_checkpoints: int = 2
    checkpoint_last: bool = False     # a checkpoint after the last step too

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, not {self.lr}")

    @classmethod
    def of(cls, config: TrainConfig, total_steps: int, **own: Any) -> "LoopConfig":
        """The loop settings of a trainer's ``config`` (:mod:`gristmill.train.config`) for a run of
        ``total_steps`` steps; ``own``: what the trainer decides itself (``betas``, ``checkpoint_last``,
        ``bf16`` when its precision is not autocast alone)."""
        if config.lr is None:
            raise ValueError("the config has no learning rate")
        settings: dict[str, Any] = dict(
            lr=config.lr, total_steps=total_steps, warmup=config.warmup_steps(total_steps), schedule=config.schedule,
            min_lr_ratio=config.min_lr_ratio, weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
            checkpoint_every=config.checkpoint_every, keep_checkpoints=config.keep_checkpoints)
        if "bf16" not in own:
            settings["bf16"] = config.uses_bf16()
        return cls(**{**settings, **own})


class Loop:
    """Optimizer steps over ``model`` (see the module docstring for the rules).

    ``checkpoints`` is the directory of this run's checkpoints (None: none are written) and
    ``identity`` what their tensors are made for. Call :meth:`begin` once, then :meth:`run` (or
    :meth:`train_step` directly, for a trainer that steps on demand).
    """

    def __init__(self, model: Any, config: LoopConfig, checkpoints: Path | None = None,
                 identity: Mapping[str, Any] | None = None) -> None:
        import torch

        self.model = model
        self.config = config
        self.checkpoints = Path(checkpoints) if checkpoints is not None else None
        self.identity = dict(identity or {})
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr,
                                           betas=config.betas)
        self.step = 0                 # optimizer steps done
        self.lr = self.lr_at(0)       # the learning rate of the last step taken (of the first, before any)
        self.step_seconds = 0.0       # wall time of the last step (its batches, forward, backward, update)

    def lr_at(self, step: int) -> float:
        c = self.config
        return c.lr * lr_factor(step, c.total_steps, c.warmup, c.schedule, c.min_lr_ratio)

    def train_step(self, micro_batches: Sequence[Any], loss_fn: Callable[[Any], Any]) -> float:
        """One optimizer step over ``micro_batches``; returns the step's loss (the sum of ``loss_fn``'s)."""
        import torch

        self.lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self.model.train()
        total = 0.0
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if self.config.bf16
                    else contextlib.nullcontext())
        for micro in micro_batches:
            with autocast:
                loss = loss_fn(micro)
            loss.backward()
            total += float(loss.detach())
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return total

    def run(self, batches: Callable[[int], Sequence[Any]], loss_fn: Callable[[Any], Any],
            on_step: Callable[[int, float], bool | None] | None = None,
            state: Callable[[], dict[str, Any]] | None = None, stop_after: int | None = None) -> int:
        """Step from :attr:`step` to ``config.total_steps`` (or ``stop_after``, as an interruption would).

        ``batches(s)`` gives the micro-batches of step ``s`` (0-based); ``on_step(step, loss)``
        follows each step (``step`` counts steps done) and returns True to stop training there;
        ``state()`` is the trainer's own state, saved in each checkpoint. Returns the steps done.
        """
        end = self.config.total_steps if stop_after is None else min(self.config.total_steps, stop_after)
        while self.step < end:
            t0 = time.perf_counter()
            loss = self.train_step(batches(self.step), loss_fn)
            self.step_seconds = time.perf_counter() - t0
            stop = bool(on_step(self.step, loss)) if on_step is not None else False
            if self._checkpoint_due():
                self.save(state() if state is not None else {})
            if stop:
                break
        return self.step

    def _checkpoint_due(self) -> bool:
        c = self.config
        if self.checkpoints is None:
            return False
        return bool((c.checkpoint_every and self.step % c.checkpoint_every == 0)
                    or (c.checkpoint_last and self.step == c.total_steps))

    # -- checkpoints ---------------------------------------------------------------------------------

    def _frozen(self) -> set[str]:
        return {n for n, p in self.model.named_parameters(remove_duplicate=False) if not p.requires_grad}

    def weights(self) -> dict[str, Any]:
        """What a checkpoint keeps of the model: its state dict without the frozen parameters."""
        frozen = self._frozen()
        return {n: t for n, t in self.model.state_dict().items() if n not in frozen}

    def save(self, trainer_state: Mapping[str, Any]) -> Path:
        """Write the checkpoint of the current step (see the module docstring)."""
        import torch

        if self.checkpoints is None:
            raise ValueError("this loop has no checkpoint directory")
        weights = self.weights()
        return save_checkpoint(self.checkpoints, self.step, {
            "layout": LAYOUT, "identity": self.identity, "shapes": tensor_shapes(weights), "model": weights,
            "optimizer": self.optimizer.state_dict(), "rng": torch.get_rng_state(), "trainer": dict(trainer_state),
        }, self.config.keep_checkpoints)

    def begin(self, resume: bool, notify: Callable[[str], None] | None = None) -> dict[str, Any] | None:
        """Start afresh (deleting this run's old checkpoints) or, with ``resume``, from the newest complete
        checkpoint: weights, optimizer, torch RNG and :attr:`step` restored. Returns the trainer's saved
        state when a checkpoint was loaded, else None. ``notify`` gets one line about each skipped
        checkpoint and where training resumes. A checkpoint of another model or shape, or of an older
        layout, raises :class:`~gristmill.train.checkpoint.ResumeMismatch`."""
        import torch

        if self.checkpoints is None:
            return None
        if not resume:
            clear_checkpoints(self.checkpoints)
            return None
        ckpt = resume_point(self.checkpoints, notify)
        if ckpt is None:
            return None
        check_compatible(ckpt, self.identity, tensor_shapes(self.weights()))
        st = ckpt.state
        if st.get("layout") != LAYOUT:
            raise ResumeMismatch(f"cannot resume from {ckpt.path}: it was written by an older gristmill (another "
                                 "checkpoint layout); train without --resume, or into another --out directory")
        missing, unexpected = self.model.load_state_dict(st["model"], strict=False)
        missing = set(missing) - self._frozen()
        if missing or unexpected:  # the shape check above makes this unlikely; never train on half a model
            raise ResumeMismatch(f"cannot resume from {ckpt.path}: its weights do not fit the model "
                                 f"({len(missing)} missing, {len(unexpected)} unexpected)")
        self.optimizer.load_state_dict(st["optimizer"])
        torch.set_rng_state(st["rng"])
        self.step = ckpt.step
        self.lr = self.lr_at(max(0, self.step - 1))
        return dict(st["trainer"])
