"""The contracts of generation: decoding settings, completions, the backend protocol, tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field

Message = dict[str, str]            # {"role": "system" | "user" | "assistant", "content": str}
Prompt = Union[str, list[Message]]  # raw text (completion) or chat messages (chat template applied by the backend)


class Decoding(BaseModel):
    """Decoding settings; ``temperature == 0`` means greedy. Unsupported settings raise in the backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_tokens: int = Field(256, ge=1, description="Most new tokens per completion.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature; 0 = greedy.")
    top_k: int = Field(0, ge=0, description="Sample from the k most likely tokens (0 = off).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass (1 = off).")
    min_p: float = Field(0.0, ge=0, le=1, description="Drop tokens below min_p x the top probability (0 = off).")
    repetition_penalty: float = Field(1.0, gt=0, description="Penalty on tokens already generated (1 = off).")
    no_repeat_ngram_size: int = Field(0, ge=0, description="Forbid repeating n-grams of this size (0 = off).")
    num_beams: int = Field(1, ge=1, description="Beam search width (1 = off); not every backend has it.")
    stop: tuple[str, ...] = Field((), description="Stop strings.")
    seed: int = Field(0, description="Sampling seed; same inputs and seed give the same output.")


ErrorKind = Literal["transient", "permanent", "malformed"]
# How each kind of failure starts its message (and so the reject reason after ``backend: ``).
ERROR_PREFIX: dict[str, str] = {"transient": "transient: ", "permanent": "permanent: ",
                                "malformed": "malformed response: "}


@dataclass
class Completion:
    """One backend answer. ``finish_reason`` is 'stop', 'length' (cut by max_tokens) or 'error'.

    A failed request has ``finish_reason='error'``, the message in ``error`` (starting with
    its kind, e.g. ``transient: connection refused (...)``) and ``error_kind``:

    * ``transient``: the server was unreachable, timed out, or answered 429 or 5xx -- worth
      asking again later; a rerun of the run retries it;
    * ``permanent``: the request itself failed (HTTP 400, a prompt too long for the context);
    * ``malformed``: the server answered something that is not a completion (no JSON, empty
      ``choices``, no ``message``/``content``, wrong types).
    """

    text: str
    finish_reason: Literal["stop", "length", "error"] = "stop"
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None
    cached: bool = False
    seconds: float = 0.0
    error_kind: ErrorKind | None = None

    @property
    def transient(self) -> bool:
        """A failure worth retrying later (never true of an answer)."""
        return self.finish_reason == "error" and self.error_kind == "transient"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """Turns prompts into completions; errors are returned per prompt, never raised for one bad prompt."""

    name: str   # backend type, e.g. "llama_cpp"
    model: str  # model identity used in cache keys (path or name)

    def generate(self, prompts: Sequence[Prompt], decoding: Decoding) -> list[Completion]: ...


class ParseError(ValueError):
    """A completion that cannot be turned into rows; the message is the reject reason."""


@dataclass
class TaskOutput:
    """What a task made of one completion: new rows and/or a reject reason with the raw text."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
