"""A scripted backend for tests: answers come from a list, a dict or a function, never a model.

* a list is answered in order, cycling (the n-th prompt this backend sees gets item n mod len);
* a dict maps a substring of the prompt to its answer (the first key found, in dict order);
  a prompt no key matches gets an error completion, as a failed request would;
* a callable ``f(prompt_text, decoding) -> answer``.

An answer is a string, a :class:`Completion` (to script ``finish_reason``/tokens), or an
exception instance (an error completion, as is an exception the callable raises). String
answers are cut at the decoding's stop strings and at ``max_tokens`` whitespace tokens
(``finish_reason='length'``); tokens are counted as whitespace-separated words. Every
prompt seen is kept in ``calls``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from gristmill.llm.backends.base import BackendSpec, BaseBackend, cut_at_stop, error_completion, prompt_text
from gristmill.llm.types import Completion, Decoding, Prompt

Answer = Any  # str | Completion | BaseException


class MockBackend(BaseBackend):
    """Deterministic scripted completions; see the module docstring for the forms of ``responses``."""

    name = "mock"

    def __init__(self, responses: Sequence[Answer] | Mapping[str, Answer] | Callable[[str, Decoding], Answer]
                 | None = None, model: str = "mock") -> None:
        if responses is None:
            responses = ["ok"]
        if isinstance(responses, (str, bytes)):
            responses = [responses]
        if isinstance(responses, Sequence) and not responses:
            raise ValueError("mock backend: an empty response list")
        self.responses = responses
        self.model = model
        self.calls: list[Prompt] = []

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> MockBackend:
        return cls(responses=spec.responses, model=spec.model or "mock")

    def _answer(self, prompt: Prompt, decoding: Decoding) -> Answer:
        text = prompt_text(prompt)
        r = self.responses
        if callable(r):
            try:
                return r(text, decoding)
            except Exception as exc:  # noqa: BLE001 - a failing script is a failed request
                return exc
        if isinstance(r, Mapping):
            for key, value in r.items():
                if key in text:
                    return value
            return LookupError(f"mock: no scripted response matches prompt {text[:60]!r}")
        return r[(len(self.calls) - 1) % len(r)]

    def stream(self, prompts: Sequence[Prompt], decoding: Decoding) -> Iterator[tuple[int, Completion]]:
        self.check(decoding)
        for i, prompt in enumerate(prompts):
            self.calls.append(prompt)
            answer = self._answer(prompt, decoding)
            if isinstance(answer, BaseException):
                yield i, error_completion(answer)
            elif isinstance(answer, Completion):
                yield i, dataclasses.replace(answer)
            else:
                yield i, self._complete(str(answer), prompt, decoding)

    @staticmethod
    def _complete(text: str, prompt: Prompt, decoding: Decoding) -> Completion:
        text, stopped = cut_at_stop(text, decoding.stop)
        words = text.split()
        finish = "stop"
        if len(words) > decoding.max_tokens and not stopped:
            words = words[:decoding.max_tokens]
            text, finish = " ".join(words), "length"
        return Completion(text=text, finish_reason=finish, tokens_in=len(prompt_text(prompt).split()),
                          tokens_out=len(words))
