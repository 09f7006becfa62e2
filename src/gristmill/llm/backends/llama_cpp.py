"""Embedded llama.cpp backend (llama-cpp-python): the default, no keys, no servers.

Two engines behind one backend, picked by ``batch_size``:

* ``batch_size == 1``: one prompt at a time through ``Llama.create_completion`` — the
  plain llama-cpp-python path.
* ``batch_size > 1`` (default 8): continuous batching — up to ``batch_size`` sequences
  share one llama.cpp context, each with its own KV-cache sequence and its own sampler
  chain; every step decodes one token for every running sequence in a single
  ``llama_decode`` call, and a finished sequence's slot takes the next prompt at once.
  On a small model on CPU a step costs little more for 8 sequences than for one, so
  aggregate tokens/s is several times single-stream (see benchmarks/bench_generate.py).

Message prompts are rendered with the chat template stored in the GGUF (the one
``create_chat_completion`` uses); both engines tokenize the same way and use the same
sampler chain as llama-cpp-python (repetition penalty over the last 64 tokens, top-k,
top-p, min-p, temperature, then a draw seeded with ``decoding.seed``; greedy when
``temperature == 0``). Identical prompts, settings and seed give identical text. Beam
search and no-repeat-n-gram are not in llama.cpp: asking for them raises
:class:`UnsupportedDecoding` naming the transformers backend.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.llm.backends.base import (BackendSpec, BaseBackend, default_threads, error_completion, find_smollm2_gguf,
                                         parse_openai_response, refuse_transformers_only)
from gristmill.llm.types import Completion, Decoding, Prompt

PENALTY_LAST_N = 64  # llama-cpp-python's default window for the repetition penalty


@dataclass
class _Seq:
    """One running sequence of the batched engine."""

    index: int
    seq_id: int
    prompt: list[int]
    sampler: Any
    t0: float
    fed: int = 0                        # prompt tokens already decoded
    out: list[int] = field(default_factory=list)
    text: bytes = b""
    logit_row: int = -1                 # row of this sequence's logits in the last batch


class LlamaCppBackend(BaseBackend):
    """llama.cpp in this process; see the module docstring."""

    name = "llama_cpp"

    def __init__(self, model: str | Path | None = None, n_ctx: int = 2048, threads: int | None = None,
                 batch_size: int = 8) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = Path(model) if model else find_smollm2_gguf()
        if not path.is_file():
            raise FileNotFoundError(f"llama_cpp backend: no GGUF file at {path}")
        self.path = path
        self.model = path.name
        self.identity = f"{path.name}:{path.stat().st_size}"
        self.threads = threads or default_threads()
        self.n_ctx = n_ctx
        self.batch_size = batch_size
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=self.threads,
                         n_threads_batch=self.threads, verbose=False)
        template = self.llm.metadata.get("tokenizer.chat_template")
        self._chat = None
        if template:
            m = self.llm._model
            eos, bos = m.token_eos(), m.token_bos()
            self._chat = Jinja2ChatFormatter(template=template,
                                             eos_token=m.token_get_text(eos) if eos >= 0 else "",
                                             bos_token=m.token_get_text(bos) if bos >= 0 else "")
        self._engine: _BatchEngine | None = None

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> LlamaCppBackend:
        return cls(spec.model, n_ctx=spec.n_ctx, threads=spec.threads, batch_size=spec.batch_size or 8)

    def check(self, decoding: Decoding) -> None:
        refuse_transformers_only(decoding, "llama_cpp", "in llama.cpp")

    def render(self, prompt: Prompt) -> str:
        """The prompt as text: messages go through the GGUF's chat template."""
        if isinstance(prompt, str):
            return prompt
        if self._chat is None:
            raise ValueError(f"{self.model} has no chat template; pass text prompts")
        return self._chat(messages=prompt).prompt

    def tokenize(self, prompt: Prompt) -> list[int]:
        """Prompt tokens, with BOS when the model wants it and special tokens parsed."""
        return self.llm.tokenize(self.render(prompt).encode("utf-8"), add_bos=True, special=True)

    def sampler(self, d: Decoding) -> Any:
        """A fresh sampler chain for ``d``, the same chain llama-cpp-python builds."""
        from llama_cpp._internals import LlamaSampler
        s = LlamaSampler()
        s.add_penalties(n_vocab=self.llm.n_vocab(), penalty_last_n=PENALTY_LAST_N,
                        penalty_repeat=d.repetition_penalty, penalty_freq=0.0, penalty_present=0.0)
        if d.temperature == 0:
            s.add_greedy()
        else:
            s.add_top_k(d.top_k)
            s.add_typical(1.0, 1)
            s.add_top_p(d.top_p, 1)
            s.add_min_p(d.min_p, 1)
            s.add_temp(d.temperature)
            s.add_dist(d.seed & 0xFFFFFFFF)
        return s

    def _single(self, tokens: list[int], d: Decoding) -> Completion:
        t0 = time.perf_counter()
        self.llm.reset()
        r = self.llm.create_completion(tokens, max_tokens=d.max_tokens, temperature=d.temperature, top_k=d.top_k,
                                       top_p=d.top_p, min_p=d.min_p, typical_p=1.0,
                                       repeat_penalty=d.repetition_penalty, stop=list(d.stop) or None,
                                       seed=d.seed & 0xFFFFFFFF)
        c = parse_openai_response(r)  # llama-cpp-python answers in the OpenAI shape
        c.seconds = time.perf_counter() - t0
        return c

    def stream(self, prompts: Sequence[Prompt], decoding: Decoding) -> Iterator[tuple[int, Completion]]:
        self.check(decoding)
        tokenized: list[tuple[int, list[int]]] = []
        for i, p in enumerate(prompts):
            try:
                tokens = self.tokenize(p)
                if not tokens:
                    raise ValueError("empty prompt")
                if len(tokens) + decoding.max_tokens > self.n_ctx:
                    raise ValueError(f"prompt of {len(tokens)} tokens + max_tokens {decoding.max_tokens} "
                                     f"exceeds n_ctx {self.n_ctx}")
            except ValueError as exc:
                yield i, error_completion(exc)
            else:
                tokenized.append((i, tokens))
        if self.batch_size == 1 or len(tokenized) == 1:
            for i, tokens in tokenized:
                try:
                    yield i, self._single(tokens, decoding)
                except Exception as exc:  # noqa: BLE001 - recorded per prompt
                    yield i, error_completion(exc)
            return
        done: set[int] = set()
        try:
            if self._engine is None:
                self._engine = _BatchEngine(self)
            for i, c in self._engine.run(tokenized, decoding):
                done.add(i)
                yield i, c
        except Exception as exc:  # noqa: BLE001 - the engine broke: fail what is left, start afresh next call
            if self._engine is not None:
                self._engine.close()
                self._engine = None
            for i, _ in tokenized:
                if i not in done:
                    yield i, error_completion(exc)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self.llm.close()


class _BatchEngine:
    """Continuous batching over one multi-sequence llama.cpp context."""

    def __init__(self, backend: LlamaCppBackend) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaBatch, LlamaContext

        self.lib = llama_cpp
        self.backend = backend
        self.n_seq = backend.batch_size
        model = backend.llm._model
        # the single-stream context's settings (flash attention etc.), with room for n_seq sequences
        params = llama_cpp.llama_context_params.from_buffer_copy(backend.llm.context_params)
        params.n_ctx = backend.n_ctx * self.n_seq
        params.n_seq_max = self.n_seq
        params.n_batch = params.n_ubatch = max(512, self.n_seq)
        params.n_threads = params.n_threads_batch = backend.threads
        params.no_perf = True
        self.n_batch = params.n_batch
        self.ctx = LlamaContext(model=model, params=params, verbose=False)
        self.batch = LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        self.vocab = llama_cpp.llama_model_get_vocab(model.model)
        self.model = model
        self._buf = ctypes.create_string_buffer(256)

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()

    def _fill(self, running: list[_Seq]) -> list[_Seq]:
        """Put one step's tokens into the batch: a token per generating sequence, then prompt chunks."""
        b = self.batch.batch
        n = 0
        in_batch = []
        for s in running:
            s.logit_row = -1
            if s.fed == len(s.prompt) and n < self.n_batch:
                b.token[n], b.pos[n], b.n_seq_id[n] = s.out[-1], len(s.prompt) + len(s.out) - 1, 1
                b.seq_id[n][0], b.logits[n] = s.seq_id, True
                s.logit_row = n
                n += 1
                in_batch.append(s)
        for s in running:
            if s.fed < len(s.prompt) and n < self.n_batch:
                take = min(len(s.prompt) - s.fed, self.n_batch - n)
                for k in range(take):
                    b.token[n], b.pos[n], b.n_seq_id[n] = s.prompt[s.fed + k], s.fed + k, 1
                    b.seq_id[n][0], b.logits[n] = s.seq_id, False
                    n += 1
                s.fed += take
                if s.fed == len(s.prompt):
                    b.logits[n - 1] = True
                    s.logit_row = n - 1
                in_batch.append(s)
        b.n_tokens = n
        return in_batch

    def _piece(self, tok: int) -> bytes:
        n = self.lib.llama_token_to_piece(self.vocab, tok, self._buf, len(self._buf), 0, False)
        return self._buf.raw[:n] if n >= 0 else self.model.detokenize([tok])

    def _step(self, s: _Seq, d: Decoding) -> Completion | None:
        """Sample the next token of ``s``; its completion when it is finished."""
        lib = self.lib
        tok = lib.llama_sampler_sample(s.sampler.sampler, self.ctx.ctx, s.logit_row)
        finish = None
        if lib.llama_vocab_is_eog(self.vocab, tok):
            finish = "stop"
        else:
            s.out.append(tok)
            s.text += self._piece(tok)
            if d.stop:
                text = s.text.decode("utf-8", errors="ignore")
                cut = min((i for i in (text.find(x) for x in d.stop if x) if i >= 0), default=-1)
                if cut >= 0:
                    s.text = text[:cut].encode("utf-8")
                    finish = "stop"
            if finish is None and len(s.out) >= d.max_tokens:
                finish = "length"
        if finish is None:
            return None
        return Completion(text=s.text.decode("utf-8", errors="ignore"), finish_reason=finish,
                          tokens_in=len(s.prompt), tokens_out=len(s.out), seconds=time.perf_counter() - s.t0)

    def run(self, todo: list[tuple[int, list[int]]], d: Decoding) -> Iterator[tuple[int, Completion]]:
        lib = self.lib
        queue = deque(todo)
        free = list(range(self.n_seq))[::-1]
        running: list[_Seq] = []
        lib.llama_memory_clear(self.ctx.memory, True)
        try:
            while queue or running:
                while queue and free:
                    i, tokens = queue.popleft()
                    running.append(_Seq(i, free.pop(), tokens, self.backend.sampler(d), time.perf_counter()))
                stepped = self._fill(running)
                rc = lib.llama_decode(self.ctx.ctx, self.batch.batch)
                if rc != 0:
                    # the batch failed as a whole: fail its sequences, keep serving the rest
                    for s in stepped:
                        running.remove(s)
                        yield s.index, error_completion(f"llama_decode returned {rc}")
                        self._release(s, free)
                    continue
                for s in stepped:
                    if s.logit_row < 0:
                        continue
                    done = self._step(s, d)
                    if done is not None:
                        running.remove(s)
                        self._release(s, free)
                        yield s.index, done
        finally:
            for s in running:
                self._release(s, free)

    def _release(self, s: _Seq, free: list[int]) -> None:
        self.lib.llama_memory_seq_rm(self.ctx.memory, s.seq_id, -1, -1)
        s.sampler.close()
        free.append(s.seq_id)

