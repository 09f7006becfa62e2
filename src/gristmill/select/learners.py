"""A :class:`~gristmill.select.bandit.Learner` for instruction data: a small causal LM fine-tuned as it goes.

:class:`CausalLMLearner` fully fine-tunes (no LoRA) a transformers causal LM on
``instruction + "\\n\\n" + response`` texts, loss on the response tokens only, one step of
:class:`gristmill.train.loop.Loop` per batch (AdamW at a constant learning rate, weight decay
0.01 on the weight matrices, not on biases and norm gains; no clipping); its dev
loss is the mean response-token NLL on the dev pairs. The default model for ``gristmill
select`` is SmolLM2-135M-Instruct in float32 (on this CPU bf16 training steps measured
~2x *slower*; an AdamW step on one 48-token pair takes ~5 s on a loaded 2-core machine,
so a budget of a few hundred rows costs minutes to tens of minutes); tests pass a tiny
randomly initialised Llama.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["CausalLMLearner"]


class CausalLMLearner:
    """Fine-tune ``model`` on the pool's pairs batch by batch; measure loss on the dev pairs."""

    def __init__(self, model: Any, tokenizer: Any, pool: Sequence[tuple[str, str]],
                 dev: Sequence[tuple[str, str]], lr: float = 5e-5, max_tokens: int = 256,
                 dev_batch_size: int = 16) -> None:
        from gristmill.train.loop import Loop, LoopConfig

        self.model = model
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.dev_batch_size = dev_batch_size
        self.pool = [self._encode(i, r) for i, r in pool]
        self.dev = [self._encode(i, r) for i, r in dev]
        self.loop = Loop(model, LoopConfig(lr=lr, schedule="constant", weight_decay=0.01, max_grad_norm=0.0))

    def _encode(self, instruction: str, response: str) -> tuple[list[int], int]:
        """Token ids and the index of the first response token (the prompt is cut from the left if long)."""
        tok = self.tokenizer
        prompt = tok(instruction + "\n\n" if instruction else "", add_special_tokens=False)["input_ids"]
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        resp = (tok(response, add_special_tokens=False)["input_ids"] + eos)[: self.max_tokens - 1]
        prompt = [self._prefix_id(), *prompt][-(self.max_tokens - len(resp)):]
        return prompt + resp, len(prompt)

    def _prefix_id(self) -> int:
        """The document separator (``<|endoftext|>``) when the vocabulary has one, else BOS / EOS / 0."""
        tok = self.tokenizer
        eot = tok.convert_tokens_to_ids("<|endoftext|>")
        if isinstance(eot, int) and eot != tok.unk_token_id:
            return eot
        for t in (tok.bos_token_id, tok.eos_token_id):
            if t is not None:
                return int(t)
        return 0

    def _loss(self, items: Sequence[tuple[list[int], int]]) -> tuple[Any, int]:
        """Summed response-token NLL of ``items`` and how many tokens it covers."""
        import torch

        width = max(len(ids) for ids, _ in items)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(items), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for r, (seq, first) in enumerate(items):
            ids[r, :len(seq)] = torch.tensor(seq)
            mask[r, :len(seq)] = 1
            labels[r, first:len(seq)] = torch.tensor(seq[first:])
        logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                ignore_index=-100, reduction="sum")
        return nll, int((target != -100).sum())

    def _mean_loss(self, items: Sequence[tuple[list[int], int]]) -> Any:
        nll, n = self._loss(items)
        return nll / max(n, 1)

    def train_step(self, batch: Sequence[int]) -> float:
        return self.loop.train_step([[self.pool[i] for i in batch]], self._mean_loss)

    def dev_loss(self) -> float:
        import torch

        self.model.eval()
        total, count = 0.0, 0
        with torch.inference_mode():
            for s in range(0, len(self.dev), self.dev_batch_size):
                nll, n = self._loss(self.dev[s:s + self.dev_batch_size])
                total, count = total + float(nll), count + n
        return total / max(count, 1)
