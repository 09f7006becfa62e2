"""One extraction run over a WARC, in a cold process; called by bench_extract.py.

    python _extract_runners.py gristmill  WARC OUT.jsonl RESULT.json [--extractor trafilatura]
    python _extract_runners.py datatrove  WARC OUT.jsonl RESULT.json [--timeout 10]

Each writes one JSON line per extracted page, ``{"url", "text"}``, with the same writer (json.dumps,
one write per line), and a result file: seconds of the loop (read, extract, write; imports excluded),
import seconds, pages written, CPU seconds of the loop (this process and its children: datatrove's
sandbox child is reaped before the clock stops, so its CPU is counted) and of the imports. Everything both systems import lazily (warcio, trafilatura, cchardet,
magic) is imported before the clock starts.

- gristmill: ``open_reader(WARC)`` (gristmill.io.warc): warcio records, charset, trafilatura
  ``extract(favor_precision=True, include_comments=False, deduplicate=<LRU>)``, page metadata
  (title, declared language, date), licence hints, SHA-256, the provenance columns.
- datatrove: ``WarcReader`` (warcio, cchardet, python-magic) -> ``Trafilatura`` (its defaults:
  favour_precision, deduplicate; each page sent to a sandbox child process) as its pipeline
  steps chain them (``extractor.run(reader.run())``), without an executor.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from pathlib import Path


def cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_gristmill(warc: Path, out: Path, extractor: str) -> dict:
    t0 = time.perf_counter()
    import trafilatura  # noqa: F401 - imported before the clock starts, as for datatrove
    import warcio.archiveiterator  # noqa: F401

    from gristmill.io import ReaderOptions, open_reader
    from gristmill.io.html import Extractor

    Extractor(extractor)  # the extractor's own imports (resiliparse)
    reader = open_reader(warc, ReaderOptions(extractor=extractor))
    imports, import_cpu = time.perf_counter() - t0, cpu()
    c0, t0 = cpu(), time.perf_counter()
    n = bad = 0
    with open(out, "w", encoding="utf-8") as f:
        for item in reader:
            if isinstance(item, dict):
                f.write(json.dumps({"url": item["url"], "text": item["text"]}, ensure_ascii=False) + "\n")
                n += 1
            else:
                bad += 1
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": cpu() - c0, "import_seconds": imports,
            "import_cpu_seconds": import_cpu, "pages": n, "bad": bad, "skipped": dict(reader.skipped)}


def run_datatrove(warc: Path, out: Path, timeout: float) -> dict:
    t0 = time.perf_counter()
    import cchardet  # noqa: F401 - what WarcReader and Trafilatura import lazily, before the clock starts
    import magic  # noqa: F401
    import trafilatura  # noqa: F401 - the sandbox child is forked from this process: it inherits it
    import warcio.archiveiterator  # noqa: F401
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader

    reader = WarcReader(str(warc.parent), glob_pattern=warc.name)
    extractor = Trafilatura(timeout=timeout)
    imports, import_cpu = time.perf_counter() - t0, cpu()
    c0, t0 = cpu(), time.perf_counter()
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for doc in extractor.run(reader.run()):
            f.write(json.dumps({"url": doc.metadata["url"], "text": doc.text}, ensure_ascii=False) + "\n")
            n += 1
    seconds = time.perf_counter() - t0
    for child in multiprocessing.active_children():  # reap the sandbox child, so that its CPU is counted
        child.join(5)
    stats = {k: v.total if hasattr(v, "total") else v for k, v in extractor.stats.get_repr_dict().items()} \
        if hasattr(extractor.stats, "get_repr_dict") else {}
    return {"seconds": seconds, "cpu_seconds": cpu() - c0, "import_seconds": imports, "import_cpu_seconds": import_cpu,
            "pages": n,
            "extractor_stats": {k: str(v) for k, v in stats.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("system", choices=["gristmill", "datatrove"])
    ap.add_argument("warc", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("result", type=Path)
    ap.add_argument("--extractor", default="trafilatura")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    if args.system == "gristmill":
        result = run_gristmill(args.warc, args.out, args.extractor)
    else:
        result = run_datatrove(args.warc, args.out, args.timeout)
    args.result.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
