"""The datatrove side of bench_minhash.py's end-to-end run; run with benchmarks/.venv-datatrove.

    python _datatrove_minhash.py INPUT_DIR WORK_DIR RESULT_JSON [--tasks 2] [--workers 2]
                                 [--buckets 14] [--rows 8] [--ngram 5] [--seed 1]

datatrove's MinHash deduplication, its four stages as its example (examples/minhash_deduplication.py)
runs them, each a LocalPipelineExecutor:

1. JsonlReader(INPUT_DIR) -> MinhashDedupSignature (tasks = input files)
2. MinhashDedupBuckets (one task per bucket; ``workers`` processes)
3. MinhashDedupCluster (one task)
4. JsonlReader(INPUT_DIR) -> MinhashDedupFilter -> JsonlWriter(WORK_DIR/output, uncompressed)

MinhashConfig(n_grams, num_buckets, hashes_per_bucket, seed), 64-bit hashes (its
default). Writes RESULT_JSON with each stage's in-process seconds (after imports), the
documents read, removed and written, and the ids of the removed documents.
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

from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.dedup import (  # noqa: E402
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.dedup.minhash import MinhashConfig  # noqa: E402
from datatrove.pipeline.readers import JsonlReader  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("input_dir", type=Path)
    ap.add_argument("work_dir", type=Path)
    ap.add_argument("result_json", type=Path)
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--buckets", type=int, default=14)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import_seconds = time.perf_counter() - T_START
    work = args.work_dir
    if work.exists():
        shutil.rmtree(work)
    config = MinhashConfig(n_grams=args.ngram, num_buckets=args.buckets, hashes_per_bucket=args.rows, seed=args.seed)
    reader = lambda: JsonlReader(str(args.input_dir), glob_pattern="*.jsonl.gz")  # noqa: E731
    stages = {
        "1_signatures": LocalPipelineExecutor(
            pipeline=[reader(), MinhashDedupSignature(output_folder=str(work / "signatures"), config=config)],
            tasks=args.tasks, workers=args.workers, logging_dir=str(work / "logs" / "1")),
        "2_buckets": LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=str(work / "signatures"), output_folder=str(work / "buckets"),
                                          config=config)],
            tasks=config.num_buckets, workers=args.workers, logging_dir=str(work / "logs" / "2")),
        "3_cluster": LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"),
                                          config=config)],
            tasks=1, workers=1, logging_dir=str(work / "logs" / "3")),
        "4_filter": LocalPipelineExecutor(
            pipeline=[reader(), MinhashDedupFilter(input_folder=str(work / "remove_ids")),
                      JsonlWriter(str(work / "output"), output_filename="${rank}.jsonl", compression=None)],
            tasks=args.tasks, workers=args.workers, logging_dir=str(work / "logs" / "4")),
    }
    stage_seconds = {}
    t0 = time.perf_counter()
    for name, stage in stages.items():
        t = time.perf_counter()
        stage.run()
        stage_seconds[name] = time.perf_counter() - t
    seconds = time.perf_counter() - t0

    kept = [json.loads(line)["id"] for f in sorted((work / "output").glob("*.jsonl")) for line in f.open()]
    import gzip
    ids = [json.loads(line)["id"] for f in sorted(args.input_dir.glob("*.jsonl.gz")) for line in gzip.open(f, "rt")]
    kept_set = set(kept)
    removed = [i for i in ids if i not in kept_set]
    result = {
        "system": "datatrove", "version": version("datatrove"), "python": sys.version.split()[0],
        "tasks": args.tasks, "workers": args.workers, "import_seconds": import_seconds,
        "seconds": seconds, "stage_seconds": stage_seconds,
        "docs_in": len(ids), "docs_out": len(kept), "removed": len(removed), "removed_ids": removed,
        "config": str(config),
    }
    args.result_json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
