"""transformers backend: batched generation with any local causal LM (a directory or a GGUF file).

Prompts are decoded ``batch_size`` at a time with left padding, longest first so a batch
holds similar lengths. It has every decoding setting, beam search and no-repeat-n-gram
included. A GGUF file is dequantized once into a transformers directory in the model cache
(:func:`gristmill.models.causal_lm.hf_dir`, the ``gguf`` package) and loaded from there in
``dtype`` (bfloat16 by default: on CPUs with AVX512-BF16 it is the fastest here).

Determinism: each batch seeds torch with ``decoding.seed`` before generating, so the same
prompts in the same batches give the same outputs. A prompt's output can still change
when its batch-mates change (padding changes the arithmetic slightly, and sampling draws
from one generator for the batch); greedy bf16 outputs can differ from float32 ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gristmill.llm.backends.base import (BackendSpec, BaseBackend, cut_at_stop, default_threads, error_completion,
                                         find_smollm2_gguf)
from gristmill.llm.types import Completion, Decoding, Prompt


class TransformersBackend(BaseBackend):
    """Batched ``model.generate`` on CPU (or whatever device torch picks); see the module docstring."""

    name = "transformers"

    def __init__(self, model: str | Path | None = None, gguf_file: str | None = None, dtype: str = "bfloat16",
                 batch_size: int = 16, threads: int | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from gristmill.models.causal_lm import hf_dir

        path = Path(model) if model else find_smollm2_gguf()
        if gguf_file is not None:
            path = path / gguf_file
        name = path.name
        if path.suffix == ".gguf":  # dequantized once into a cached transformers directory
            path = hf_dir(path)
        torch.set_num_threads(threads or default_threads())
        self.torch = torch
        self.batch_size = batch_size
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.lm = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
        self.lm.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = name  # the name; the torch module is ``self.lm``
        self.identity = f"{self.model}:{dtype}"

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> TransformersBackend:
        return cls(spec.model, gguf_file=spec.gguf_file, dtype=spec.dtype, batch_size=spec.batch_size or 16,
                   threads=spec.threads)

    def _text(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)

    def _gen_kwargs(self, d: Decoding) -> dict[str, Any]:
        sample = d.temperature > 0
        kw: dict[str, Any] = {
            "max_new_tokens": d.max_tokens, "do_sample": sample, "num_beams": d.num_beams,
            "repetition_penalty": d.repetition_penalty, "pad_token_id": self.tokenizer.pad_token_id,
            # transformers defaults top_k to 50; 0 means off here
            "top_k": d.top_k if sample and d.top_k else None,
            "top_p": d.top_p if sample else None, "min_p": d.min_p if sample and d.min_p else None,
            "temperature": d.temperature if sample else None,
        }
        if d.no_repeat_ngram_size:
            kw["no_repeat_ngram_size"] = d.no_repeat_ngram_size
        if d.stop:
            kw["stop_strings"] = list(d.stop)
            kw["tokenizer"] = self.tokenizer
        return kw

    def _batch(self, texts: list[str], d: Decoding) -> list[Completion]:
        torch = self.torch
        t0 = time.perf_counter()
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(d.seed)
        with torch.inference_mode():
            out = self.lm.generate(**enc, **self._gen_kwargs(d))
        new = out[:, enc["input_ids"].shape[1]:]
        seconds = (time.perf_counter() - t0) / len(texts)
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id, *self._eos_ids()}
        result = []
        for row, n_in in zip(new.tolist(), enc["attention_mask"].sum(dim=1).tolist()):
            ended = next((k for k, t in enumerate(row) if t in eos), None)
            tokens = row if ended is None else row[:ended]
            text, stopped = cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), d.stop)
            finish = "length" if ended is None and not stopped and len(tokens) >= d.max_tokens else "stop"
            result.append(Completion(text=text, finish_reason=finish, tokens_in=int(n_in),
                                     tokens_out=len(tokens), seconds=seconds))
        return result

    def _eos_ids(self) -> list[int]:
        eos = getattr(self.lm.generation_config, "eos_token_id", None)
        return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)

    def stream(self, prompts: Sequence[Prompt], decoding: Decoding) -> Iterator[tuple[int, Completion]]:
        self.check(decoding)
        texts = [self._text(p) for p in prompts]
        lengths = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            try:
                done = self._batch([texts[i] for i in idx], decoding)
            except Exception as exc:  # noqa: BLE001 - a failed batch is recorded per prompt
                done = [error_completion(exc)] * len(idx)
            yield from zip(idx, done)
