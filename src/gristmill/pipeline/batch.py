"""A recipe's pending LLM requests, found by running its steps with a recording backend (provider batches).

:func:`prepare` finds the requests a run of the recipe would send and its run directory's
response cache does not answer; :mod:`gristmill.llm.batch` writes them as an OpenAI Batch
JSONL and stores a provider's results back in the cache.

How the requests are found: the recipe's steps run in this process, over the same shards a
run cuts (same ingestion, same shard size, global steps fitted on every shard), and each LLM
step's backend is replaced by a :class:`~gristmill.llm.batch.RecordingBackend` behind the
run's response cache. Running the operators themselves, rather than re-deriving prompts from
their tasks, is what makes the requests exactly those of a run: whatever an operator does
between the row and the backend (several prompts per row, decoding per call, samples drawn
from the shard, a dialogue's turns) happens as it does in a run. It also decides the stages:
prompts already in the cache are answered from it, so the operator goes on to its next
requests (the next dialogue turn, the next self-instruct round, the next step), and the first
LLM step that asks for anything missing is the stage prepared. A recipe whose later requests
depend on earlier answers is prepared one stage at a time: prepare, submit, collect, prepare
again, until :func:`prepare` finds nothing to send.

What is dropped or refused: only steps with the ``openai`` backend and the response cache on
(``cache: true``) can be prepared (a local backend answers without a provider; a batch's
results reach a run only through the cache); the whole input is held in memory while
preparing; the steps after the prepared stage do not run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.llm.batch import BatchError, BatchRequest, RecordingBackend
from gristmill.llm.cache import CachedBackend
from gristmill.ops.base import GlobalOp
from gristmill.ops.generate.base import CACHE_FILE, LLMParams

if TYPE_CHECKING:
    from gristmill.recipe import Recipe


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
    return [s for s in recipe.steps if isinstance(s.op.params, LLMParams)]


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
            if isinstance(op.params, LLMParams):
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
