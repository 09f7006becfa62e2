"""Provider batch files: a recipe's LLM requests as an OpenAI Batch JSONL, and the results back into the cache.

:func:`prepare` finds the requests a run of the recipe would send and has not answered yet;
:func:`write_requests` writes them one per line (``custom_id``, ``method``, ``url``, ``body``);
:func:`collect` reads a provider's results file and stores each answer in the run's response
cache (``llm-cache.sqlite``, :mod:`gristmill.llm.cache`) under its ``custom_id``, so the next
``gristmill run`` answers those prompts from the cache and sends nothing for them.

How the requests are found: the recipe's steps run in this process, over the same shards
a run cuts (same ingestion, same shard size, global steps fitted on every shard), and
each LLM step's backend is replaced by a :class:`RecordingBackend` behind the run's
response cache. The recorder sends nothing: it keeps each request the operator makes (the
exact body :meth:`OpenAIBackend.request <gristmill.llm.backends.openai_http.OpenAIBackend.request>`
builds, the cache key of the prompt and decoding) and answers it with a transient error.
Running the operators themselves, rather than re-deriving prompts from their tasks, is what
makes the requests exactly those of a run: whatever an operator does between the row and the
backend (several prompts per row, decoding per call, samples drawn from the shard, a
dialogue's turns) happens as it does in a run. It also decides the stages: prompts already in
the cache are answered from it, so the operator goes on to its next requests (the next
dialogue turn, the next self-instruct round, the next step), and the first LLM step that
asks for anything missing is the stage prepared. A recipe whose later requests depend on
earlier answers is prepared one stage at a time: prepare, submit, collect, prepare again,
until :func:`prepare` finds nothing to send.

What is dropped or refused: only steps with the ``openai`` backend and the response cache
on (``cache: true``) can be prepared (the embedded backends answer locally; a batch's
results reach a run only through the cache); the rows of the whole input are held in memory
while preparing; the steps after the prepared stage do not run.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.llm.backends.base import BackendSpec, BaseBackend, MalformedResponse, parse_openai_response
from gristmill.llm.cache import CachedBackend, ResponseCache, cache_key
from gristmill.llm.types import Completion, Decoding, Prompt
from gristmill.ops.base import GlobalOp
from gristmill.ops.generate.base import CACHE_FILE, _LLMMixin
from gristmill.recipe import Recipe

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


@dataclass
class PreparedStage:
    """What :func:`prepare` found: the requests of one stage, or none when every answer is cached.

    ``step`` is the label of the step whose requests these are (None when there are none);
    ``cached`` counts the requests of the steps run that the cache answered; ``later`` lists
    the LLM steps after ``step``, which wait for this stage's answers.
    """

    requests: list[BatchRequest] = field(default_factory=list)
    step: str | None = None
    cached: int = 0
    later: list[str] = field(default_factory=list)


def llm_steps(recipe: Recipe) -> list[Any]:
    """The recipe's steps whose operator sends LLM requests (generators, judges)."""
    return [s for s in recipe.steps if isinstance(s.op, _LLMMixin)]


def _check_step(step: Any) -> None:
    params = step.op.params
    if params.backend.type != "openai":
        raise BatchError(f"step {step.label} uses the {params.backend.type} backend: provider batch files are for "
                         "steps with backend type openai (a local backend answers without a provider)")
    if not params.cache:
        raise BatchError(f"step {step.label} has cache: false: a batch's results reach a run only through the "
                         "response cache")


def _shards(recipe: Recipe, where: Path) -> list[Any]:
    """The input cut into the run's shards (same reader, options and shard size), as tables."""
    from gristmill.pipeline import store
    from gristmill.pipeline.ingest import ingest, payload_columns

    shards = ingest(recipe.input_paths, recipe.input_options, recipe.shard_rows, where,
                    strict=recipe.spec.strict, payload=payload_columns(s.op for s in recipe.steps))
    return [store.read_table(s.path / "data.parquet") for s in shards]


def prepare(recipe: Recipe, run_dir: Path, step: int | None = None) -> PreparedStage:
    """The requests of the recipe's next stage that ``run_dir``'s response cache does not answer.

    Runs the steps in this process (see the module docstring) up to the first LLM step that
    asks for a request not in the cache, or up to step index ``step`` when given (every LLM
    step before it must then be answered by the cache already, else :class:`BatchError`).
    Nothing is written to ``run_dir``: when it has no cache yet, a temporary one stands in.
    Raises :class:`BatchError` for an LLM step that cannot be batched (its backend, ``cache:
    false``) once the steps reach it, for a ``step`` that is not an LLM step, and for a
    recipe without LLM steps.
    """
    llm = llm_steps(recipe)
    if not llm:
        raise BatchError("the recipe has no LLM step: there is nothing to send to a provider")
    if step is not None and step not in {s.index for s in llm}:
        names = ", ".join(f"{s.index} ({s.label})" for s in llm)
        raise BatchError(f"--step {step} is not an LLM step of the recipe; its LLM steps: {names}")
    stage = PreparedStage()
    with tempfile.TemporaryDirectory(prefix="gristmill-batch-") as tmp:
        cache_dir = run_dir if (run_dir / CACHE_FILE).is_file() else Path(tmp) / "run"
        cache_dir.mkdir(exist_ok=True)
        parts = _shards(recipe, Path(tmp) / "input")
        for s in recipe.steps:
            op = s.op
            recorder: RecordingBackend | None = None
            if isinstance(op, _LLMMixin):
                _check_step(s)
                recorder = RecordingBackend(op.params.backend, s.label)
                op.make_backend = lambda ctx, r=recorder: CachedBackend(r, cache_dir / CACHE_FILE)  # type: ignore
            op.bind(cache_dir=cache_dir, workers=1)
            if isinstance(op, GlobalOp):
                (Path(tmp) / f"scratch-{s.index}").mkdir()
                op.bind(scratch=Path(tmp) / f"scratch-{s.index}")
            op.ensure_setup()
            if isinstance(op, GlobalOp):
                for part in parts:
                    op.check_columns(part)
                op.fit([op.summarize(part) for part in parts])
            parts = [op.process(part).kept for part in parts]
            if recorder is None:
                continue
            stage.cached += int((op.take_usage() or {}).get("cached", 0))
            recorder.close()
            if recorder.requests and step is not None and s.index < step:
                raise BatchError(f"step {s.label} has {len(recorder.requests)} request(s) not in the cache: "
                                 f"step {step}'s requests depend on them; prepare and collect them first "
                                 "(gristmill batch prepare without --step)")
            if recorder.requests or s.index == step:
                stage.requests = list(recorder.requests.values())
                stage.step = s.label
                stage.later = [t.label for t in llm if t.index > s.index]
                return stage
    return stage


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


def collect(results: Path, run_dir: Path, known: set[str] | None) -> Collected:
    """Store each successful answer of ``results`` in ``run_dir``'s response cache under its custom_id.

    The whole file is read first: a line that is not JSON (a truncated download) raises
    :class:`BatchError` naming it and nothing is stored. ``known`` is the set of custom_ids
    the recipe asks for and the cache lacks (None: trust every id); an id neither in it nor in
    the cache is reported, not stored.
    Failed results are reported with their custom_id and not stored, so a run sends those
    requests itself. An answer cut by ``max_tokens`` is stored, as a run stores it.
    """
    lines = list(_lines(results, "results file"))
    report = Collected()
    cache = ResponseCache(run_dir / CACHE_FILE)
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
