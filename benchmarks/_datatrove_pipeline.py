"""The datatrove side of bench_pipeline.py; run with the benchmarks/.venv-datatrove python.

    python _datatrove_pipeline.py INPUT_DIR WORK_DIR RESULT_JSON [--tasks 2] [--workers 2]

Three LocalPipelineExecutor stages, because datatrove's exact dedup is three steps
(signatures, find duplicates, filter):

1. JsonlReader(INPUT_DIR) -> FTFYFormatter(normalization="NFKC") -> LambdaFilter(length)
   -> JsonlWriter(WORK_DIR/filtered, uncompressed) -> ExactDedupSignature
2. ExactFindDedups (one task: finder_workers=1)
3. JsonlReader(WORK_DIR/filtered) -> ExactDedupFilter -> JsonlWriter(WORK_DIR/output, uncompressed)

Writes RESULT_JSON with the in-process time of each stage (measured after imports),
documents read / kept / written, and the datatrove and ftfy versions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from importlib.metadata import version
from pathlib import Path

T_START = time.perf_counter()

import ftfy  # noqa: E402
from datatrove.data import Document  # noqa: E402
from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.dedup import (  # noqa: E402
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.filters import LambdaFilter  # noqa: E402
from datatrove.pipeline.formatters import FTFYFormatter  # noqa: E402
from datatrove.pipeline.readers import JsonlReader  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402

MIN_WORDS = 50
MAX_CHARS = 100_000


def doc_text(doc: Document) -> str:
    """What exact dedup hashes: the whole normalized text (xxhash64)."""
    return doc.text


def length_ok(doc: Document) -> bool:
    """Same bounds as gristmill's filter.length: >= MIN_WORDS whitespace words, <= MAX_CHARS chars."""
    return len(doc.text) <= MAX_CHARS and len(doc.text.split()) >= MIN_WORDS


def step_stats(stats_file: Path) -> list[dict]:
    """The per-step stats datatrove saves in a stage's logging dir."""
    return json.loads(stats_file.read_text())


def stat_value(step: dict, key: str) -> int:
    value = step.get("stats", {}).get(key, 0)
    if isinstance(value, dict):
        return int(value.get("total", 0))
    return int(value)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("input_dir", type=Path)
    ap.add_argument("work_dir", type=Path)
    ap.add_argument("result_json", type=Path)
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    import_seconds = time.perf_counter() - T_START

    work = args.work_dir
    if work.exists():
        shutil.rmtree(work)
    dedup_config = ExactDedupConfig(content_getter=doc_text)

    stage1 = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(args.input_dir), glob_pattern="*.jsonl.gz"),
            FTFYFormatter(normalization="NFKC"),
            LambdaFilter(length_ok),
            JsonlWriter(str(work / "filtered"), output_filename="${rank}.jsonl", compression=None),
            ExactDedupSignature(str(work / "sigs"), config=dedup_config, finder_workers=1),
        ],
        tasks=args.tasks,
        workers=args.workers,
        logging_dir=str(work / "logs" / "1_signatures"),
    )
    stage2 = LocalPipelineExecutor(
        pipeline=[ExactFindDedups(str(work / "sigs"), str(work / "dups"), config=dedup_config)],
        tasks=1,
        workers=1,
        logging_dir=str(work / "logs" / "2_find_dups"),
    )
    stage3 = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(work / "filtered"), glob_pattern="*.jsonl"),
            ExactDedupFilter(str(work / "dups"), config=dedup_config),
            JsonlWriter(str(work / "output"), output_filename="${rank}.jsonl", compression=None),
        ],
        tasks=args.tasks,
        workers=args.workers,
        logging_dir=str(work / "logs" / "3_filter"),
    )

    stage_seconds = {}
    t0 = time.perf_counter()
    for name, stage in (("signatures", stage1), ("find_dups", stage2), ("filter_write", stage3)):
        t = time.perf_counter()
        stage.run()
        stage_seconds[name] = time.perf_counter() - t
    seconds = time.perf_counter() - t0

    s1 = step_stats(work / "logs" / "1_signatures" / "stats.json")
    s2 = step_stats(work / "logs" / "2_find_dups" / "stats.json")
    s3 = step_stats(work / "logs" / "3_filter" / "stats.json")
    # seconds inside each step, summed over tasks (datatrove's own time_stats)
    step_seconds = {f"{stage}:{step['name']}": step.get("time_stats", {}).get("total", 0.0)
                    for stage, steps in (("1", s1), ("2", s2), ("3", s3)) for step in steps}
    docs_in = stat_value(s1[0], "documents")
    after_length = stat_value(s1[2], "forwarded")
    docs_out = sum(1 for f in (work / "output").glob("*.jsonl") for _ in f.open("rb"))
    result = {
        "system": "datatrove",
        "version": version("datatrove"),
        "ftfy_version": ftfy.__version__,
        "python": sys.version.split()[0],
        "tasks": args.tasks,
        "workers": args.workers,
        "import_seconds": import_seconds,
        "seconds": seconds,
        "stage_seconds": stage_seconds,
        "step_seconds": step_seconds,
        "docs_in": docs_in,
        "after_length_filter": after_length,
        "dedup_dropped": stat_value(s3[1], "dropped"),
        "docs_out": docs_out,
        "output_bytes": sum(f.stat().st_size for f in (work / "output").glob("*.jsonl")),
    }
    args.result_json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
