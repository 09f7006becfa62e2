"""Training throughput of ``train_sft`` against a bare torch loop on the same batches.

Both train SmolLM2-135M-Instruct with the same LoRA (r 8, alpha 16, dropout 0.05 on
q/k/v/o), in the same dtype, on batches of 8 rows x 256 tokens (rows long enough to be
cut to exactly 256, so no padding), with the same torch thread count. Each measurement
runs ``warmup`` optimizer steps and then times ``steps`` more; the two are alternated
``repeats`` times in one process and the median tokens/s of each is reported, with their
ratio (goal: ``train_sft`` at >= 90% of the bare loop).

``train_sft`` is timed from the progress updates it makes after each optimizer step
(so its tokenization and model loading are outside the timed window, as the bare
loop's are).

Run: .venv/bin/python benchmarks/bench_sft.py [--steps 20 --warmup 3 --repeats 3 --threads 1 --dtype bfloat16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

BATCH, LENGTH = 8, 256


class StepClock:
    """A stand-in progress object that records when each optimizer step finished and its tokens."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []

    def add_task(self, *args, **kwargs) -> int:
        self.marks = [(time.perf_counter(), 0)]
        return 0

    def update(self, task, advance: int = 0, **kwargs) -> None:
        self.marks.append((time.perf_counter(), advance))

    def rate(self, warmup: int) -> float:
        t0 = self.marks[warmup][0]
        t1 = self.marks[-1][0]
        tokens = sum(a for _, a in self.marks[warmup + 1:])
        return tokens / (t1 - t0)


def make_rows(n: int) -> list[list[dict[str, str]]]:
    """Chat rows each longer than LENGTH tokens (the assistant turn reaches past the cut)."""
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing".split()
    rows = []
    for i in range(n):
        answer = " ".join(words[(i + k) % len(words)] for k in range(400))
        rows.append([{"role": "user", "content": f"Write a long sentence number {i}."},
                     {"role": "assistant", "content": answer}])
    return rows


def run_train_sft(rows, steps: int, warmup: int, threads: int, dtype: str) -> float:
    from gristmill.train.sft import SFTConfig, train_sft

    clock = StepClock()
    config = SFTConfig(max_steps=warmup + steps, batch_size=BATCH, max_length=LENGTH, threads=threads, dtype=dtype,
                       warmup_ratio=0.0, seed=0)
    train_sft(rows, [], config, progress=clock)
    return clock.rate(warmup)


def run_bare(rows, steps: int, warmup: int, threads: int, dtype: str) -> float:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gristmill.models.causal_lm import hf_dir
    from gristmill.train.chat_data import tokenize_chat

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(hf_dir())
    model = AutoModelForCausalLM.from_pretrained(hf_dir(), dtype=getattr(torch, dtype))
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    data = [tokenize_chat(tok, r, LENGTH) for r in rows]
    ids = torch.tensor([d.input_ids for d in data])
    labels = torch.tensor([d.labels for d in data])
    mask = torch.ones_like(ids)
    times = [time.perf_counter()]
    for step in range(warmup + steps):
        s = (step * BATCH) % len(data)
        out = model(input_ids=ids[s:s + BATCH], attention_mask=mask[s:s + BATCH], labels=labels[s:s + BATCH])
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter())
    return steps * BATCH * LENGTH / (times[-1] - times[warmup])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    rows = make_rows(BATCH * (args.warmup + args.steps))
    ours, bare = [], []
    for r in range(args.repeats):
        for name, fn, acc in (("bare", run_bare, bare), ("train_sft", run_train_sft, ours)) if r % 2 else \
                (("train_sft", run_train_sft, ours), ("bare", run_bare, bare)):
            rate = fn(rows, args.steps, args.warmup, args.threads, args.dtype)
            acc.append(rate)
            print(f"repeat {r + 1} {name:>9}: {rate:7.1f} tokens/s", flush=True)
    m_ours, m_bare = statistics.median(ours), statistics.median(bare)
    # each repeat runs the two back to back, so its ratio is less affected by load drifting between repeats
    pair = [o / b for o, b in zip(ours, bare)]
    print(f"median of {args.repeats}: train_sft {m_ours:.1f} tokens/s, bare loop {m_bare:.1f} tokens/s, "
          f"ratio {m_ours / m_bare:.3f}; per-repeat ratios {', '.join(f'{r:.3f}' for r in pair)} "
          f"(median {statistics.median(pair):.3f})  (batch {BATCH} x {LENGTH}, LoRA r8 q/k/v/o, {args.dtype}, "
          f"{args.threads} thread(s), {args.steps} steps after {args.warmup} warmup)")
    if args.json:
        args.json.write_text(json.dumps({"train_sft": ours, "bare": bare, "median_train_sft": m_ours,
                                         "median_bare": m_bare, "ratio": m_ours / m_bare,
                                         "pair_ratios": pair, "median_pair_ratio": statistics.median(pair), **vars(args),
                                         "json": str(args.json)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
