"""The dialogue statistics of a run of recipes/dialogue.yaml, as experiments/results/dialogue_stats.json.

Reads a finished run directory (``gristmill run recipes/dialogue.yaml`` writes ``runs/dialogue``)
through :class:`~gristmill.pipeline.run_reader.RunReader` and writes the figures of the report's
Dialogues section (:func:`gristmill.report.dialogue.dialogue_stats`: dialogues, turns, turns per
dialogue, words per user / assistant turn, distinct-1/2 of each side, the generation step's rejects
by rule and by reason), with the generation step's rows, seconds and LLM usage, the model, and the
first kept dialogue as an example. Nothing is generated here.

Run: ``.venv/bin/python experiments/dialogue_stats.py [--run runs/dialogue] [--out PATH] [--note TEXT]``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from gristmill.pipeline.run_reader import RunReader
from gristmill.report.dialogue import OP, conversations, dialogue_stats

HERE = Path(__file__).resolve().parent


def collect(run_dir: Path) -> dict[str, Any]:
    """The figures of ``run_dir`` (see the module docstring)."""
    run = RunReader(run_dir)
    step = next((s for s in run.steps if s.get("op") == OP), {})
    recipe = next((s for s in (run.recipe or {}).get("steps", []) if s.get("op") == OP), {})
    params = recipe.get("params") or {}
    convs = conversations(run)
    return {
        "experiment": "dialogue_stats",
        "recipe": run.stats.get("recipe"),
        "run_seconds": run.stats.get("seconds"),
        "cores": os.cpu_count(),
        "model": {"backend": (params.get("backend") or {}).get("type"),
                  "model": (params.get("backend") or {}).get("model") or "SmolLM2-135M-Instruct (packaged GGUF)",
                  "decoding": params.get("decoding")},
        "params": {k: params.get(k) for k in ("max_turns", "min_turns", "end_marker", "user_max_tokens",
                                              "persona_column", "document_column")},
        "step": {k: step.get(k) for k in ("step", "rows_in", "rows_out", "dropped", "seconds", "llm")},
        "output_rows": run.output.get("rows"),
        **dialogue_stats(run),
        "example": convs[0] if convs else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/dialogue"), help="run directory of recipes/dialogue.yaml")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "dialogue_stats.json")
    ap.add_argument("--note", default=None, help="a note kept with the figures (e.g. how long the uncached run took)")
    args = ap.parse_args()
    figures = collect(args.run)
    if args.note:
        figures["note"] = args.note
    args.out.write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in figures.items() if k != "example"}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
