"""The datatrove side of bench_gopher.py; run with the benchmarks/.venv-datatrove python.

    python _datatrove_gopher.py run SHARDS_DIR WORK_DIR RESULT_JSON [--tasks 2] [--workers 2]
    python _datatrove_gopher.py reference DOCS_JSONL_GZ OUT_JSON [--workers 2]
    python _datatrove_gopher.py explain DOCS_JSONL_GZ IDS_JSON OUT_JSON

``run`` (timed by the caller): JsonlReader -> GopherQualityFilter -> GopherRepetitionFilter
-> JsonlWriter, each filter with an exclusion writer, so every document's decision and
datatrove's reason are on disk (WORK_DIR/output, WORK_DIR/excluded_quality,
WORK_DIR/excluded_repetition; uncompressed JSONL). RESULT_JSON gets the in-process time
(after imports), per-step seconds from datatrove's own stats, and versions.

``reference`` (not timed): for every document, the md5 of its word list from datatrove's
``split_into_words(text, "eng")`` (spaCy) and every Gopher quality and repetition value
as datatrove's code computes it (all rules, no early exit), to compare with gristmill's.

``explain`` (not timed): the same values and the word list, for the given ids.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import shutil
import sys
import time
from importlib.metadata import version
from pathlib import Path

T_START = time.perf_counter()

from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter  # noqa: E402
from datatrove.pipeline.readers import JsonlReader  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402


def run(args: argparse.Namespace) -> None:
    import_seconds = time.perf_counter() - T_START
    work = args.work_dir
    if work.exists():
        shutil.rmtree(work)

    def writer(name: str) -> JsonlWriter:
        return JsonlWriter(str(work / name), output_filename="${rank}.jsonl", compression=None)

    executor = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(args.input_dir), glob_pattern="*.jsonl.gz"),
            GopherQualityFilter(exclusion_writer=writer("excluded_quality")),
            GopherRepetitionFilter(exclusion_writer=writer("excluded_repetition")),
            writer("output"),
        ],
        tasks=args.tasks,
        workers=args.workers,
        logging_dir=str(work / "logs"),
    )
    t0 = time.perf_counter()
    executor.run()
    seconds = time.perf_counter() - t0
    steps = json.loads((work / "logs" / "stats.json").read_text())
    step_seconds = {step["name"]: step.get("time_stats", {}).get("total", 0.0) for step in steps}
    docs_in = steps[0]["stats"].get("documents", 0)
    docs_in = docs_in.get("total", 0) if isinstance(docs_in, dict) else docs_in
    docs_out = sum(1 for f in (work / "output").glob("*.jsonl") for _ in f.open("rb"))
    import spacy

    result = {
        "system": "datatrove", "version": version("datatrove"), "spacy_version": spacy.__version__,
        "python": sys.version.split()[0], "tasks": args.tasks, "workers": args.workers,
        "import_seconds": import_seconds, "seconds": seconds, "step_seconds": step_seconds,
        "docs_in": int(docs_in), "docs_out": docs_out,
    }
    args.result_json.write_text(json.dumps(result, indent=2))


def _read_docs(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def values(text: str) -> tuple[list[str], dict]:
    """datatrove's words of ``text`` and every Gopher quality / repetition value, by its own functions."""
    import numpy as np
    from datatrove.pipeline.filters.gopher_quality_filter import STOP_WORDS
    from datatrove.pipeline.filters.gopher_repetition_filter import (
        find_all_duplicate,
        find_duplicates,
        find_top_duplicate,
        get_n_grams,
    )
    from datatrove.utils.text import PUNCTUATION_SET, split_into_words

    words = split_into_words(text, "eng")
    n = len(words)
    non_symbol = [w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]
    lines = text.splitlines()
    v: dict = {
        "n_words": len(non_symbol),
        "mean_word_length": float(np.mean([len(w) for w in non_symbol])) if non_symbol else None,
        "hash_word_ratio": text.count("#") / n if n else None,
        "ellipsis_word_ratio": (text.count("...") + text.count("…")) / n if n else None,
        "bullet_lines_ratio": (sum(s.lstrip().startswith("•") or s.lstrip().startswith("-") for s in lines)
                               / len(lines) if lines else None),
        "ellipsis_lines_ratio": (sum(s.rstrip().endswith("...") or s.rstrip().endswith("…") for s in lines)
                                 / len(lines) if lines else None),
        "alpha_words_ratio": sum([any((c.isalpha() for c in w)) for w in words]) / n if n else None,
        "stop_words": len(set(STOP_WORDS).intersection(set(words))),
    }
    if text:
        paragraphs = re.compile(r"\n{2,}").split(text.strip())
        d, c = find_duplicates(paragraphs)
        v["dup_para_frac"], v["dup_para_char_frac"] = d / len(paragraphs), c / len(text)
        split_lines = re.compile("\n+").split(text)
        d, c = find_duplicates(split_lines)
        v["dup_line_frac"], v["dup_line_char_frac"] = d / len(split_lines), c / len(text)
        for k in (2, 3, 4):
            grams = get_n_grams(words, k)
            v[f"top_{k}gram"] = find_top_duplicate(grams) / len(text) if grams else None
        for k in range(5, 11):
            v[f"dup_{k}gram"] = find_all_duplicate(words, k) / len(text)
    return words, v


def _reference_row(text: str) -> tuple[str, dict]:
    words, v = values(text)
    return hashlib.md5("\x1f".join(words).encode()).hexdigest(), v


def reference(args: argparse.Namespace) -> None:
    from multiprocessing import get_context

    docs = _read_docs(args.docs)
    with get_context("fork").Pool(args.workers) as pool:
        rows = pool.map(_reference_row, [d["text"] for d in docs], chunksize=64)
    import spacy

    args.out_json.write_text(json.dumps({
        "spacy_version": spacy.__version__, "datatrove_version": version("datatrove"),
        "md5": {d["id"]: r[0] for d, r in zip(docs, rows)}, "values": {d["id"]: r[1] for d, r in zip(docs, rows)}}))


def explain(args: argparse.Namespace) -> None:
    wanted = set(json.loads(args.ids_json.read_text()))
    out = {}
    for doc in _read_docs(args.docs):
        if doc["id"] in wanted:
            words, v = values(doc["text"])
            out[doc["id"]] = {"values": v, "words": words}
    args.out_json.write_text(json.dumps(out, ensure_ascii=False))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("input_dir", type=Path)
    r.add_argument("work_dir", type=Path)
    r.add_argument("result_json", type=Path)
    r.add_argument("--tasks", type=int, default=2)
    r.add_argument("--workers", type=int, default=2)
    t = sub.add_parser("reference")
    t.add_argument("docs", type=Path)
    t.add_argument("out_json", type=Path)
    t.add_argument("--workers", type=int, default=2)
    e = sub.add_parser("explain")
    e.add_argument("docs", type=Path)
    e.add_argument("ids_json", type=Path)
    e.add_argument("out_json", type=Path)
    args = ap.parse_args()
    {"run": run, "reference": reference, "explain": explain}[args.cmd](args)


if __name__ == "__main__":
    main()
