"""What a ``train sft`` run shows: answers of the tuned model to dev prompts, and its report.

The report holds the results table, the training-loss curve with a rolling 95% band, tokens/s,
the distribution of tokenized lengths, sample answers and the skipped input lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gristmill.train.chat_data import Messages
from gristmill.train.sft import SFTConfig, SFTResult

__all__ = ["generate_answers", "report_sft"]


def generate_answers(model: Any, tokenizer: Any, prompts: Sequence[Messages], max_new_tokens: int = 96,
                     batch_size: int = 8) -> list[str]:
    """Greedy answers of ``model`` to each conversation (its last assistant turn, if any, removed)."""
    import torch

    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    answers: list[str] = []
    try:
        for s in range(0, len(prompts), batch_size):
            texts = []
            for msgs in prompts[s:s + batch_size]:
                msgs = list(msgs)
                while msgs and msgs[-1]["role"] == "assistant":
                    msgs = msgs[:-1]
                texts.append(tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
            enc = tokenizer(texts, add_special_tokens=False, return_tensors="pt", padding=True)
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, use_cache=True)
            answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return [a.strip() for a in answers]


def _rolling_band(xs: Sequence[float], ys: Sequence[float], window: int) -> tuple[list[float], list[float],
                                                                                 list[float], list[float]]:
    """Rolling mean of ``ys`` and its 95% t-interval over ``window`` points (no band over one point)."""
    from gristmill.stats import t_interval

    mean, lo, hi = [], [], []
    for i in range(len(ys)):
        ci = t_interval(ys[max(0, i - window + 1):i + 1])
        mean.append(ci.estimate)
        lo.append(ci.estimate if ci.lo is None else ci.lo)
        hi.append(ci.estimate if ci.hi is None else ci.hi)
    return list(xs), mean, lo, hi


def report_sft(run: Any, result: SFTResult, config: SFTConfig, samples: Sequence[tuple[str, str]] = (), bad: Sequence[Any] = ()) -> None:
    """Report items of an SFT run: results table, loss curves with a 95% band, lengths, samples, skipped rows."""
    rows = [("train rows", result.train_rows), ("rows dropped (no assistant token within max_length)",
                                                  result.dropped_no_assistant),
            ("malformed input lines skipped", len(bad)), ("optimizer steps", result.steps),
            ("train tokens (no padding)", result.train_tokens), ("assistant tokens (loss)", result.train_label_tokens),
            ("tokens/s", round(result.tokens_per_s, 1)), ("seconds", round(result.seconds, 1)),
            ("dtype", result.dtype), ("method", config.method),
            ("trainable / total parameters", f"{result.trainable_params:,} / {result.total_params:,}"),
            ("final train loss", None if result.final_train_loss is None else round(result.final_train_loss, 4)),
            ("dev loss", None if result.dev_loss is None else round(result.dev_loss, 4)),
            ("dev perplexity", None if result.dev_perplexity is None else round(result.dev_perplexity, 3))]
    run.table("Results", ["measure", "value"], rows)
    train = run.metrics("train")
    if train:
        xs = [p["step"] for p in train]
        ys = [p["loss"] for p in train]
        window = max(2, len(ys) // 20)
        x, m, lo, hi = _rolling_band(xs, ys, window)
        series = {"train loss (per step)": (xs, ys), f"train loss (mean of {window})": (x, m)}
        dev = run.metrics("dev")
        if dev:
            series["dev loss"] = ([p["step"] for p in dev], [p["loss"] for p in dev])
        run.curve("Loss", series, xlabel="optimizer step", ylabel="nats per assistant token",
                  bands={f"train loss (mean of {window})": (x, lo, hi)},
                  note="Shaded: 95% t-interval of the rolling mean of the per-step losses.")
        run.curve("Throughput", {"tokens/s": (xs, [p.get("tokens_per_s", 0) for p in train])},
                  xlabel="optimizer step", ylabel="tokens/s (cumulative mean)")
    if result.lengths:
        run.histogram("Training row lengths", list(result.lengths), xlabel="tokens per row (after truncation)")
    if samples:
        run.samples("Answers of the fine-tuned model to dev prompts", list(samples), note="Greedy decoding.")
    if bad:
        run.table("Skipped input lines", ["file:line", "reason"], [(f"{b.file}:{b.line}", b.reason) for b in bad[:50]],
                  note=f"{len(bad)} lines skipped" + (" (first 50 shown)" if len(bad) > 50 else ""))
