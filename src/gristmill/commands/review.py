"""``gristmill review RUN_DIR``: a local web app where people check, correct and sign off a run's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gristmill import extras
from gristmill.commands.common import EXIT_INVALID, Quiet, Seed, described, err, fail, out

ReviewSeed = described(Seed, "Seed of every random choice the command makes: the acceptance sample, drawn once "
                             "(the first time a run is reviewed) and kept with the decisions.")


def review(
    run_dir: Annotated[Path, typer.Argument(help="A finished pipeline run directory (runs/<name>).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on. The default, 127.0.0.1, lets only this "
                                      "machine connect; another address exposes the review (with a warning).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: a free one).")] = 0,
    reviewer: Annotated[Optional[list[str]], typer.Option(
        "--reviewer", help="Reviewer name (repeatable: each reviewer gets a URL with a token of their own; "
                           "default: 'reviewer').")] = None,
    per_item: Annotated[Optional[int], typer.Option("--per-item", min=1, max=50, help="Reviewers wanted per row: a row "
                                                    "stays in the queue until this many gave a verdict (kept with "
                                                    "the decisions; default 1).")] = None,
    blind: Annotated[Optional[bool], typer.Option("--blind/--no-blind", help="Hide other reviewers' verdicts (kept "
                                                  "with the decisions; default: not blind).")] = None,
    sample: Annotated[Optional[int], typer.Option("--sample", min=0, max=100_000, help="Size of the acceptance "
                                                  "sample of kept rows (drawn once, the first time; default 100).")]
    = None,
    seed: ReviewSeed = None,
    margin: Annotated[Optional[float], typer.Option("--margin", min=0.0, max=1.0, help="Rows whose score lies within "
                                                    "this fraction of the score's range of a rule's threshold go to "
                                                    "the 'near a threshold' queue (default 0.05).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild the queue index (a cache; the decisions are "
                                          "never touched).")] = False,
    quiet: Quiet = False,
) -> None:
    """Review a run in the browser: queues of dropped, flagged and sampled rows; accept, reject, edit, relabel.

    Decisions go to RUN_DIR/review/decisions.sqlite (append-only); a review.apply step in the recipe puts them
    into the data on its next run."""
    extras.require("gristmill review", "starlette", "uvicorn")
    from gristmill.review.server import ReviewSetupError, is_loopback, prepare, serve

    settings: dict[str, Any] = {k: v for k, v in {"per_item": per_item, "blind": blind, "sample_size": sample,
                                                  "seed": seed, "margin": margin}.items() if v is not None}
    if not is_loopback(host):
        err.print(f"warning: --host {host} exposes the review to the network: anyone who can reach it and has a URL's "
                  "token can read the rows and change decisions, and the traffic is not encrypted",
                  highlight=False, markup=False, soft_wrap=True)
    try:
        prepared = prepare(run_dir, settings, rebuild=rebuild,
                           log=None if quiet else lambda m: err.print(m, highlight=False, markup=False))
        serve(prepared, host, port, reviewer or None,
              out=lambda line: out.print(line, highlight=False, markup=False, soft_wrap=True))
    except ReviewSetupError as exc:
        fail(str(exc), EXIT_INVALID)
    except KeyboardInterrupt:  # uvicorn handles Ctrl-C itself; this is a second one during shutdown
        pass


def register(app: typer.Typer) -> None:
    """Add ``review`` to ``app``."""
    app.command("review")(review)
