"""The gristmill side of bench_pipeline.py; run with the project's .venv python.

    python _gristmill_pipeline.py RECIPE_JSON RUNS_DIR NAME RESULT_JSON [--workers 2]

Runs the recipe through ``gristmill.runner.run_recipe`` (without the HTML report, which
datatrove has no counterpart for) and writes RESULT_JSON with the
in-process time (measured after imports), gristmill's own ``stats["seconds"]``, and the
documents read and written.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

T_START = time.perf_counter()

import gristmill  # noqa: E402
from gristmill.runner import run_recipe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe_json", type=Path)
    ap.add_argument("runs_dir", type=Path)
    ap.add_argument("name")
    ap.add_argument("result_json", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    import_seconds = time.perf_counter() - T_START

    recipe = json.loads(args.recipe_json.read_text())
    extra = {"report": False} if "report" in inspect.signature(run_recipe).parameters else {}
    t0 = time.perf_counter()
    summary = run_recipe(recipe, args.runs_dir, args.name, workers=args.workers, progress=False, fresh=True, **extra)
    seconds = time.perf_counter() - t0

    stats = summary.stats
    result = {
        "system": "gristmill",
        "version": getattr(gristmill, "__version__", "dev"),
        "python": sys.version.split()[0],
        "workers": args.workers,
        "import_seconds": import_seconds,
        "seconds": seconds,
        "stats_seconds": stats.get("seconds"),
        "docs_in": stats["input"]["rows"],
        "docs_out": stats["output"]["rows"],
        "stats": stats,
    }
    args.result_json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
