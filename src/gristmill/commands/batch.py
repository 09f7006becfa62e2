"""``gristmill batch prepare`` and ``gristmill batch collect``: a recipe's LLM requests through a provider's
batch API (OpenAI Batch JSONL), their answers back into the run's response cache.

The work is :mod:`gristmill.pipeline.batch`'s (finding the requests) and :mod:`gristmill.llm.batch`'s
(the files, the cache); these commands load the recipe, name the run directory
as ``gristmill run`` does (``runs/<recipe name>``, or ``--runs-dir`` / ``--name``), print what was
done and exit 2 on a recipe or file that cannot be used (nothing written), 1 when ``collect``
left results out (failed answers, unknown ids: the rest is stored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gristmill.commands.common import EXIT_FAILED, EXIT_INVALID, OutFile, Quiet, described, fail, out

batch_app = typer.Typer(help="Provider batch files: write a recipe's LLM requests as an OpenAI Batch JSONL, "
                        "collect the results into the run's response cache.", no_args_is_help=True)

SetOption = Annotated[Optional[list[str]], typer.Option("--set", help="Override a value: "
                                                        "steps.2.params.min_words=10")]
NameOption = Annotated[Optional[str], typer.Option("--name", help="Run name (default: the recipe's name).")]
RunsDirOption = Annotated[Path, typer.Option("--runs-dir", help="Where run directories go.")]


def _recipe_and_run(recipe: Path, set_: list[str] | None, runs_dir: Path, name: str | None) -> tuple[object, Path]:
    from gristmill.pipeline.ownership import RunDirError, run_dir_for
    from gristmill.recipe import RecipeError, load_recipe

    try:
        spec = load_recipe(recipe, set_ or [])
        return spec, run_dir_for(runs_dir, spec.name if name is None else name)
    except RecipeError as exc:
        fail(str(exc) if len(exc.errors) > 1 else f"{exc.source}: {exc.errors[0]}", EXIT_INVALID)
    except RunDirError as exc:
        fail(str(exc), EXIT_INVALID)


def prepare(recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
            out_file: described(OutFile, "Output file: the OpenAI Batch JSONL of the requests.") = None,  # type: ignore[valid-type]
            set_: SetOption = None, name: NameOption = None, runs_dir: RunsDirOption = Path("runs"),
            step: Annotated[Optional[int], typer.Option("--step", min=0, help="Prepare this LLM step (its index "
                                                        "in the recipe's steps); default: the first LLM step with "
                                                        "requests the cache does not answer.")] = None,
            quiet: Quiet = False) -> None:
    """Write the requests a run of the recipe would send (and the run's cache lacks) as an OpenAI Batch JSONL.

    custom_id is each request's response-cache key. A recipe whose later requests depend on earlier
    answers (a later LLM step, a dialogue's next turn) is prepared one stage at a time: collect the
    results, then prepare again until nothing is left.
    """
    from gristmill.llm.batch import BatchError, write_requests
    from gristmill.pipeline.batch import prepare as prepare_stage

    if out_file is None:
        fail("--out-file is required: where to write the requests", EXIT_INVALID)
    spec, run_dir = _recipe_and_run(recipe, set_, runs_dir, name)
    try:
        stage = prepare_stage(spec, run_dir, step)  # type: ignore[arg-type]
    except BatchError as exc:
        fail(str(exc), EXIT_INVALID)
    write_requests(out_file, stage.requests)
    if not stage.requests:
        where = f"step {stage.step}" if stage.step else "the recipe's LLM steps"
        out.print(f"nothing to send: every request of {where} is in {run_dir}'s response cache "
                  f"({stage.cached} cached); {out_file} is empty. Run the recipe: gristmill run {recipe}",
                  highlight=False, soft_wrap=True)
        return
    out.print(f"{len(stage.requests):,} request(s) of step {stage.step} → {out_file} "
              f"({stage.cached:,} answered by the cache)", highlight=False, soft_wrap=True)
    bodies = [r.body for r in stage.requests]
    if any("top_k" in b for b in bodies):
        out.print("  note: the bodies carry top_k, min_p and repeat_penalty (backend extra_sampling: true); "
                  "OpenAI's own API rejects them: set extra_sampling: false for it", highlight=False, soft_wrap=True)
    out.print(f"  then: gristmill batch collect RESULTS.jsonl --recipe {recipe}"
              + "".join(f" --set {s}" for s in set_ or []) + (f" --name {name}" if name else ""), highlight=False, soft_wrap=True)
    if stage.later:
        out.print(f"  later LLM steps ({', '.join(stage.later)}) and any further turns or rounds of this step "
                  "depend on these answers: after collecting, run batch prepare again for the next stage",
                  highlight=False, soft_wrap=True)


def collect(results: Annotated[Path, typer.Argument(help="The provider's results file (Batch output JSONL).")],
            recipe: Annotated[Optional[Path], typer.Option("--recipe", help="The recipe the requests were "
                                                           "prepared from: its run directory receives the answers.")
                              ] = None,
            run: Annotated[Optional[Path], typer.Option("--run", help="The run directory that receives the answers "
                                                        "(instead of --recipe; needs --requests).")] = None,
            requests: Annotated[Optional[Path], typer.Option("--requests", help="The prepared requests file: only "
                                                             "its custom_ids are accepted (default with --recipe: "
                                                             "the recipe's pending requests).")] = None,
            set_: SetOption = None, name: NameOption = None, runs_dir: RunsDirOption = Path("runs"),
            quiet: Quiet = False) -> None:
    """Store a provider's batch results in the run's response cache by custom_id; the recipe then runs
    without sending those requests. Failed results and unknown custom_ids are listed, not stored."""
    from gristmill.llm.batch import BatchError, collect as collect_results, read_request_ids
    from gristmill.pipeline.batch import prepare as prepare_stage
    from gristmill.pipeline.ownership import LLM_CACHE, RunDirError, open_run_dir

    if (recipe is None) == (run is None):
        fail("give either --recipe RECIPE or --run RUN_DIR", EXIT_INVALID)
    if run is not None and requests is None:
        fail("--run needs --requests (the prepared requests file), to know which custom_ids are this run's",
             EXIT_INVALID)
    try:
        if recipe is not None:
            spec, run_dir = _recipe_and_run(recipe, set_, runs_dir, name)
            known = (read_request_ids(requests) if requests is not None
                     else {r.custom_id for r in prepare_stage(spec, run_dir).requests})  # type: ignore[arg-type]
        else:
            run_dir, known = run, read_request_ids(requests)  # type: ignore[arg-type]
        open_run_dir(run_dir)  # type: ignore[arg-type]
        done = collect_results(results, run_dir / LLM_CACHE, known)  # type: ignore[operator]
    except (BatchError, RunDirError) as exc:
        fail(str(exc), EXIT_INVALID)
    out.print(f"{done.stored:,} answer(s) stored in {run_dir}'s response cache"
              + (f", {done.already:,} there already" if done.already else ""), highlight=False, soft_wrap=True)
    for cid, reason in done.errors:
        out.print(f"  not stored: {cid}: {reason}", highlight=False, soft_wrap=True)
    for cid in done.unknown:
        out.print(f"  not stored: {cid}: unknown custom_id (not a pending request of this recipe)", highlight=False, soft_wrap=True)
    if done.duplicates:
        out.print(f"  {len(done.duplicates)} custom_id(s) on several lines, the first kept: "
                  + ", ".join(done.duplicates[:5]), highlight=False, soft_wrap=True)
    if done.errors or done.unknown:
        fail(f"{len(done.errors)} failed result(s) and {len(done.unknown)} unknown custom_id(s) were not stored; "
             "a run sends the failed requests itself", EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add the ``batch`` command group (``prepare``, ``collect``) to ``app``."""
    batch_app.command("prepare")(prepare)
    batch_app.command("collect")(collect)
    app.add_typer(batch_app, name="batch")
