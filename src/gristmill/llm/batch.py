"""Provider batch files: OpenAI Batch JSONL requests out, a provider's results back into the response cache.

:class:`RecordingBackend` stands in for an ``openai`` backend while
:mod:`gristmill.pipeline.batch` runs a recipe's steps to find their requests: it sends
nothing, keeps each request (the exact body the backend would send, the response-cache key of
the prompt and decoding) and answers it with a transient error, which the cache never stores.
:func:`write_requests` writes the requests one per line (``custom_id`` = the cache key,
``method``, ``url``, ``body``); :func:`collect` reads a provider's results file and stores each
answer in a response cache (``llm-cache.sqlite``, :mod:`gristmill.llm.cache`) under its
``custom_id``, so the next run answers those prompts from the cache and sends nothing for them.

What is dropped: failed results (an ``error`` object, a status other than 200, a body that is
not a completion) and ids that are no pending request are reported, not stored; a results
file with a line that is not JSON (a truncated download) is refused whole, never read as
fewer results.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.llm.backends.base import BackendSpec, BaseBackend, MalformedResponse, parse_openai_response
from gristmill.llm.cache import ResponseCache, cache_key
from gristmill.llm.types import Completion, Decoding, Prompt

BATCH_URL_PREFIX = "/v1"
NOT_SENT = "held for a provider batch (not sent)"


class BatchError(Exception):
    """The recipe or a file cannot be used for a provider batch; the message is one line."""


@dataclass
class BatchRequest:
    """One request of a batch file: ``custom_id`` is its response-cache key."""

    custom_id: str
    url: str
    body: dict[str, Any]
    step: str

    def to_json(self) -> dict[str, Any]:
        """The line of an OpenAI Batch input file (the step label is not part of it)."""
        return {"custom_id": self.custom_id, "method": "POST", "url": self.url, "body": self.body}


class RecordingBackend(BaseBackend):
    """An ``openai`` backend that sends nothing: it records each request and answers it with an error.

    ``name``, ``model`` and ``identity`` are those of the real backend the spec builds (so cache
    keys are the run's), ``check`` is its decoding check, and each request's body is the one it
    would send. The answer is a transient error completion, which the cache never stores and
    the operator turns into a rejected row, so nothing the recording sees reaches a run.
    """

    def __init__(self, spec: BackendSpec, step: str) -> None:
        from gristmill.llm.backends.openai_http import OpenAIBackend

        # the key is only needed to send: an unset api_key_env must not stop a prepare
        self.real = OpenAIBackend.from_spec(spec.model_copy(update={"api_key_env": None}))
        self.name = self.real.name
        self.model = self.real.model
        self.identity = self.real.identity
        self.step = step
        self.requests: dict[str, BatchRequest] = {}

    def check(self, decoding: Decoding) -> None:
        self.real.check(decoding)

    def generate(self, prompts: Sequence[Prompt], decoding: Decoding) -> list[Completion]:
        out = []
        for prompt in prompts:
            key = cache_key(self.name, self.identity, prompt, decoding)
            try:
                path, body = self.real.request(prompt, decoding)
            except ValueError as exc:
                raise BatchError(f"step {self.step}: {exc}") from None
            self.requests.setdefault(key, BatchRequest(key, BATCH_URL_PREFIX + path, body, self.step))
            out.append(Completion(text="", finish_reason="error", error=f"transient: {NOT_SENT}",
                                  error_kind="transient"))
        return out

    def close(self) -> None:
        self.real.close()


def write_requests(path: Path, requests: Sequence[BatchRequest]) -> None:
    """Write ``requests`` as an OpenAI Batch input file (JSONL, one request a line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in requests:
            f.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_request_ids(path: Path) -> set[str]:
    """The ``custom_id`` of every line of a batch input file; :class:`BatchError` names a bad line."""
    return {str(obj.get("custom_id")) for _, obj in _lines(path, "requests file")}


def _lines(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not a JSON object raises
    :class:`BatchError` naming it (a truncated last line included)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"{path}: cannot read the {what}: {exc}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            cut = " (truncated?)" if n == len(text.splitlines()) and not text.endswith("\n") else ""
            raise BatchError(f"{path}:{n}: not a JSON line{cut}: {exc}; nothing was collected") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
            raise BatchError(f"{path}:{n}: not a batch line (no custom_id); nothing was collected")
        yield n, obj


@dataclass
class Collected:
    """What :func:`collect` did: answers stored, answers the cache held already, and what it left out
    (``errors``: custom_id and reason of each failed result; ``unknown``: custom_ids that are no
    request of the recipe's; ``duplicates``: custom_ids seen on more than one line, first kept)."""

    stored: int = 0
    already: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def result_completion(obj: dict[str, Any]) -> Completion:
    """The completion of one Batch output line; :class:`BatchError` with the reason for a failed one
    (an ``error`` object, a status other than 200, a body that is not a completion)."""
    error = obj.get("error")
    if error:
        detail = error.get("message") or error.get("code") if isinstance(error, dict) else error
        raise BatchError(f"error: {detail}")
    response = obj.get("response")
    if not isinstance(response, dict):
        raise BatchError("no response")
    status = response.get("status_code")
    body = response.get("body")
    if status != 200:
        err = body.get("error") if isinstance(body, dict) else None
        detail = err.get("message") if isinstance(err, dict) else (err or "")
        raise BatchError(f"HTTP {status}" + (f": {str(detail)[:200]}" if detail else ""))
    try:
        return parse_openai_response(body)
    except MalformedResponse as exc:
        raise BatchError(f"malformed response: {exc}") from None


def collect(results: Path, cache_path: Path, known: set[str] | None) -> Collected:
    """Store each successful answer of ``results`` in the response cache at ``cache_path`` under its custom_id.

    The whole file is read first: a line that is not JSON (a truncated download) raises
    :class:`BatchError` naming it and nothing is stored. ``known`` is the set of custom_ids
    the recipe asks for and the cache lacks (None: trust every id); an id neither in it nor in
    the cache is reported, not stored.
    Failed results are reported with their custom_id and not stored, so a run sends those
    requests itself. An answer cut by ``max_tokens`` is stored, as a run stores it.
    """
    lines = list(_lines(results, "results file"))
    report = Collected()
    cache = ResponseCache(cache_path)
    have = cache.get_many([obj["custom_id"] for _, obj in lines])
    seen: set[str] = set()
    for _, obj in lines:
        cid = obj["custom_id"]
        if cid in seen:
            report.duplicates.append(cid)
            continue
        seen.add(cid)
        if cid in have:  # collected before (a second collect of the same file changes nothing)
            report.already += 1
            continue
        if known is not None and cid not in known:
            report.unknown.append(cid)
            continue
        try:
            completion = result_completion(obj)
        except BatchError as exc:
            report.errors.append((cid, str(exc)))
            continue
        cache.put(cid, completion)
        report.stored += 1
    return report
