"""Supervised fine-tuning of a causal LM on chat rows, with LoRA (peft) or all weights.

:func:`train_sft` tokenizes conversations with the model's chat template (loss on
assistant tokens only, see :mod:`gristmill.train.chat_data`), drops those left with no
assistant token after truncation to ``max_length`` (counted in the result), and trains
through :class:`gristmill.train.loop.Loop`: AdamW (no decay on biases and norm gains),
linear warmup then cosine, linear or no decay (to 0), gradient accumulation and gradient-norm
clipping. Batches group rows of similar length (shuffled pools of 50
batches, sorted by length, cut into batches, batch order shuffled) and pad to the longest
row of the batch. The loss of an optimizer step is the mean over every assistant token of
its micro-batches.

Precision: ``bfloat16`` loads a LoRA model's frozen base weights in bf16 (adapters stay
float32); full fine-tuning keeps float32 weights and runs forward/backward under bf16
autocast. ``auto`` picks bf16 when the CPU supports it.

Checkpoints (``<run>/checkpoints/step-NNNNNN/``, written atomically by
:mod:`gristmill.train.checkpoint`) hold the trainable weights, optimizer, step and RNG
state; with ``resume`` training continues from the newest complete one at the same step
with the same batch order (a checkpoint made for another model, method, LoRA rank or
target modules is refused). The batch order is a function of the seed and the
epoch only, so a resumed run sees exactly the batches the uninterrupted run would.

Outputs: ``adapter/`` (LoRA only, peft format) and ``merged/`` (the adapter merged into a
float32 copy of the base, or the fully fine-tuned model), each loadable with its tokenizer.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.train.chat_data import IGNORE, Messages, TokenizedChat, tokenize_chat
from gristmill.train.config import SFTConfig, resolve_dtype
from gristmill.train.loop import Loop, LoopConfig

__all__ = ["SFTConfig", "SFTResult", "load_model_and_tokenizer", "resolve_dtype", "split_dev", "train_sft"]


@dataclass
class SFTResult:
    """What a run did: steps, tokens, speed, losses, where the model went, rows dropped."""

    steps: int
    train_tokens: int                 # tokens fed forward (padding excluded)
    train_label_tokens: int           # assistant tokens the loss was taken on
    tokens_per_s: float
    seconds: float
    final_train_loss: float | None
    dev_loss: float | None
    dev_perplexity: float | None
    train_rows: int
    dropped_no_assistant: int
    dtype: str
    trainable_params: int
    total_params: int
    adapter_dir: Path | None = None
    merged_dir: Path | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)                 # tokens per training row
    model: Any = field(default=None, repr=False, compare=False)      # the trained model, for callers to evaluate
    tokenizer: Any = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """The scalar fields, JSON-ready (paths as strings)."""
        skip = {"losses", "lengths", "model", "tokenizer"}
        return {k: (str(getattr(self, k)) if isinstance(getattr(self, k), Path) else getattr(self, k))
                for k in self.__dataclass_fields__ if k not in skip}


def load_model_and_tokenizer(model: str | Path | None, dtype: str = "float32") -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a transformers directory or a ``.gguf`` file.

    A GGUF is dequantized on load (its quantization config removed, so it can be trained
    and saved). ``None`` loads the packaged SmolLM2-135M-Instruct.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gristmill.models.causal_lm import hf_dir
    from gristmill.models.locate import offline

    offline()
    path = Path(model) if model is not None else hf_dir()
    torch_dtype = getattr(torch, dtype)
    if path.suffix == ".gguf":
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        lm = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch_dtype)
        if getattr(lm, "hf_quantizer", None) is not None:
            lm.hf_quantizer.remove_quantization_config(lm)
    else:
        tokenizer = AutoTokenizer.from_pretrained(path)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return lm, tokenizer


def split_dev(rows: Sequence[Any], fraction: float, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """Rows shuffled with ``seed`` and cut into (train, dev); dev has ``round(fraction * n)`` rows, at least 1
    when ``fraction > 0`` and there are at least 2 rows."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_dev = round(fraction * len(rows))
    if fraction > 0 and len(rows) >= 2:
        n_dev = max(1, n_dev)
    n_dev = min(n_dev, max(0, len(rows) - 1))
    dev = [rows[i] for i in sorted(order[:n_dev])]
    train = [rows[i] for i in sorted(order[n_dev:])]
    return train, dev


def tokenize_rows(tokenizer: Any, rows: Sequence[Messages], max_length: int) -> tuple[list[TokenizedChat], int]:
    """Tokenized rows that keep at least one assistant token after truncation, and how many were dropped
    (no assistant token left, or assistant turns the chat template does not render as prefixes)."""
    kept, dropped = [], 0
    for msgs in rows:
        try:
            tc = tokenize_chat(tokenizer, msgs, max_length)
        except ValueError:  # the template cannot place this conversation's assistant turns
            dropped += 1
            continue
        if tc.n_labels == 0:
            dropped += 1
        else:
            kept.append(tc)
    return kept, dropped


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                  pool_batches: int = 50) -> list[list[int]]:
    """Row indices of each batch of one epoch, grouped by length; a function of (seed, epoch) only."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * pool_batches
    batches = []
    for s in range(0, len(order), pool):
        chunk = sorted(order[s:s + pool], key=lambda i: -lengths[i])
        batches += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(rows: Sequence[TokenizedChat], pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` tensors of a batch."""
    import torch

    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r.input_ids)
        ids[i, :n] = torch.tensor(r.input_ids)
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(r.labels)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _wrap(model: Any, config: SFTConfig) -> Any:
    if config.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in config.target_modules if t not in names]
    if missing:
        raise ValueError(f"target module(s) {', '.join(missing)} not in the model (it has e.g. "
                         f"{', '.join(sorted(n for n in names if n.endswith('proj'))[:8])})")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def dev_loss(model: Any, rows: Sequence[TokenizedChat], pad_id: int, batch_size: int, autocast: bool) -> float | None:
    """Mean loss (nats per assistant token) over ``rows``; None when there are none."""
    import torch

    if not rows:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i].input_ids))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        for s in range(0, len(order), batch_size):
            batch = collate([rows[i] for i in order[s:s + batch_size]], pad_id)
            n = int((batch["labels"][:, 1:] != IGNORE).sum())
            if not n:
                continue
            out = model(**batch, num_items_in_batch=torch.tensor(n))
            total += float(out.loss) * n
            count += n
    model.train(was_training)
    return total / count if count else None


def _identity(config: SFTConfig) -> dict[str, Any]:
    """The settings that fix what a checkpoint's tensors mean (a resume with others is refused)."""
    model = str(Path(config.model).resolve()) if config.model else "SmolLM2-135M-Instruct (packaged)"
    ident: dict[str, Any] = {"model": model, "method": config.method}
    if config.method == "lora":
        ident.update(lora_r=config.lora_r, target_modules=list(config.target_modules))
    return ident


def train_sft(train_rows: Sequence[Messages], dev_rows: Sequence[Messages], config: SFTConfig,
              run: Any | None = None, progress: Any | None = None, resume: bool = False,
              stop_after: int | None = None, notify: Callable[[str], None] | None = None) -> SFTResult:
    """Fine-tune ``config.model`` on ``train_rows``; evaluate on ``dev_rows``; save into ``run``.

    ``run`` is a :class:`~gristmill.rundir.RunDir` (metrics, checkpoints, adapter/, merged/;
    without one nothing is saved). ``progress`` is a rich Progress (or None). With
    ``resume``, training continues from the run's newest complete checkpoint (broken ones
    are skipped; one made for another model or model shape raises
    :class:`~gristmill.train.checkpoint.ResumeMismatch`, a ValueError); without it the
    run's old checkpoints are deleted. ``notify`` gets one line about each skipped
    checkpoint and where training resumes. ``stop_after`` ends the run after that many
    optimizer steps (as an interruption would: no final evaluation, no saved model), for
    tests of resumption.
    """
    import torch

    from gristmill.models.runtime import set_torch_threads

    set_torch_threads(config.threads)
    dtype = resolve_dtype(config.dtype)
    load_dtype = "bfloat16" if (dtype == "bfloat16" and config.method == "lora") else "float32"
    autocast = dtype == "bfloat16" and config.method == "full"
    torch.manual_seed(config.seed)
    model, tokenizer = load_model_and_tokenizer(config.model, load_dtype)
    model.config.use_cache = False
    model = _wrap(model, config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    n_total = sum(p.numel() for p in model.parameters())

    train, dropped = tokenize_rows(tokenizer, train_rows, config.max_length)
    dev, dev_dropped = tokenize_rows(tokenizer, dev_rows, config.max_length)
    if not train:
        raise ValueError(f"no training row has an assistant token within max_length={config.max_length} "
                         f"({dropped} dropped)")
    pad_id = tokenizer.pad_token_id
    lengths = [len(r.input_ids) for r in train]
    batches_per_epoch = math.ceil(len(train) / config.batch_size)
    steps_per_epoch = max(1, batches_per_epoch // config.grad_accum)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))

    def micro_batches(step: int) -> list[list[int]]:
        """Row indices of the micro-batches of optimizer step ``step`` (0-based)."""
        out = []
        for k in range(step * config.grad_accum, (step + 1) * config.grad_accum):
            epoch, b = divmod(k, steps_per_epoch * config.grad_accum)
            epoch_list = _epoch_cache.get(epoch)
            if epoch_list is None:
                epoch_list = _epoch_cache[epoch] = epoch_batches(lengths, config.batch_size, config.seed, epoch)
            out.append(epoch_list[b % len(epoch_list)])
        return out

    _epoch_cache: dict[int, list[list[int]]] = {}
    loop = Loop(model, LoopConfig.of(config, total_steps, bf16=autocast),
                checkpoints=run.path / "checkpoints" if run is not None else None, identity=_identity(config))
    losses: list[tuple[int, float]] = []
    tokens = label_tokens = 0
    saved = loop.begin(resume, notify)
    if saved is not None:
        losses = [tuple(x) for x in saved["losses"]]
        tokens, label_tokens = saved["tokens"], saved["label_tokens"]
        run.forget_after(loop.step)
    start = loop.step

    if run is not None:
        run.result(train_rows=len(train), dev_rows=len(dev), dropped_no_assistant=dropped + dev_dropped,
                   total_steps=total_steps, trainable_params=n_trainable, total_params=n_total, dtype=dtype)
    total_tokens = sum(sum(len(train[i].input_ids) for i in b) for s in range(total_steps) for b in micro_batches(s))
    done_tokens = sum(sum(len(train[i].input_ids) for i in b) for s in range(start) for b in micro_batches(s))
    task = progress.add_task("train", total=total_tokens, completed=done_tokens, unit="tok") if progress else None

    def batches(step: int) -> list[tuple[dict[str, Any], Any]]:
        """The step's micro-batches, each with the step's assistant-token count (the loss divides by it)."""
        mbs = [collate([train[i] for i in b], pad_id) for b in micro_batches(step)]
        n_items = sum(int((m["labels"][:, 1:] != IGNORE).sum()) for m in mbs)
        current.update(items=n_items, tokens=sum(int(m["attention_mask"].sum()) for m in mbs))
        return [(m, torch.tensor(max(1, n_items))) for m in mbs]

    def loss_fn(micro: tuple[dict[str, Any], Any]) -> Any:
        batch, n_items = micro
        return model(**batch, num_items_in_batch=n_items).loss

    dev_points: list[tuple[int, float]] = []
    current = {"items": 0, "tokens": 0}
    counted = {"tokens": 0}  # tokens fed forward by this process (tokens_per_s)
    t0 = time.perf_counter()

    def on_step(done: int, step_loss: float) -> None:
        nonlocal tokens, label_tokens
        tokens += current["tokens"]
        counted["tokens"] += current["tokens"]
        label_tokens += current["items"]
        losses.append((done, step_loss))
        if run is not None and (done % config.log_every == 0 or done == total_steps):
            run.log("train", done, loss=step_loss, lr=loop.lr,
                    tokens_per_s=counted["tokens"] / max(time.perf_counter() - t0, 1e-9))
        if progress is not None:
            progress.update(task, advance=current["tokens"], description=f"train loss {step_loss:.3f}")
        if config.eval_every and done % config.eval_every == 0 and done < total_steps:
            dl = dev_loss(model, dev, pad_id, config.batch_size, autocast)
            if dl is not None:
                dev_points.append((done, dl))
                if run is not None:
                    run.log("dev", done, loss=dl, perplexity=math.exp(min(dl, 50)))

    end = loop.run(batches, loss_fn, on_step, state=lambda: {"losses": losses, "tokens": tokens,
                                                              "label_tokens": label_tokens}, stop_after=stop_after)
    run_tokens = counted["tokens"]
    seconds = time.perf_counter() - t0
    tps = run_tokens / seconds if seconds > 0 else 0.0
    result = SFTResult(steps=end, train_tokens=tokens, train_label_tokens=label_tokens, tokens_per_s=tps,
                       seconds=seconds, final_train_loss=losses[-1][1] if losses else None, dev_loss=None,
                       dev_perplexity=None, train_rows=len(train), dropped_no_assistant=dropped + dev_dropped,
                       dtype=dtype, trainable_params=n_trainable, total_params=n_total, losses=list(losses),
                       lengths=lengths, model=model, tokenizer=tokenizer)
    if end < total_steps:
        return result
    dl = dev_loss(model, dev, pad_id, config.batch_size, autocast)
    if dl is not None:
        result.dev_loss, result.dev_perplexity = dl, math.exp(min(dl, 50))
        if run is not None:
            run.log("dev", end, loss=dl, perplexity=result.dev_perplexity)
    if run is not None:
        result.adapter_dir, result.merged_dir = _save_models(model, tokenizer, config, run.path)
        run.result(**result.summary())
    return result


def _save_models(model: Any, tokenizer: Any, config: SFTConfig, run_path: Path) -> tuple[Path | None, Path | None]:
    """Save ``adapter/`` (LoRA) and ``merged/`` under ``run_path``; the merge is done on a float32 base."""
    import torch

    adapter_dir = merged_dir = None
    if config.method == "lora":
        adapter_dir = run_path / "adapter"
        model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        if config.save_merged:
            from peft import PeftModel

            base, _ = load_model_and_tokenizer(config.model, "float32")
            merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
            merged_dir = run_path / "merged"
            merged.save_pretrained(merged_dir)
            tokenizer.save_pretrained(merged_dir)
    else:
        merged_dir = run_path / "merged"
        model.to(torch.float32).save_pretrained(merged_dir)
        tokenizer.save_pretrained(merged_dir)
    return adapter_dir, merged_dir
