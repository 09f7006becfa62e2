"""datatrove's side of bench_quality_c4_fineweb.py; runs in benchmarks/.venv-datatrove.

    python _datatrove_c4_fineweb.py DOCS.jsonl.gz BADWORDS.txt OUT.json

Applies C4QualityFilter then C4BadWordsFilter (the word list given, no download), and
FineWebQualityFilter, to every document, one ``filter(doc)`` call at a time on one core,
and writes each document's decision (``keep`` or datatrove's reason) and the CPU seconds.
"""

from __future__ import annotations

import gzip
import json
import sys
import time

from datatrove.data import Document
from datatrove.pipeline.filters import c4_filters
from datatrove.pipeline.filters.c4_filters import C4BadWordsFilter, C4QualityFilter
from datatrove.pipeline.filters.fineweb_quality_filter import FineWebQualityFilter


def decide(result: bool | tuple[bool, str]) -> str:
    return "keep" if result is True else (result[1] if isinstance(result, tuple) else "drop")


def main() -> None:
    docs_path, badwords_path, out_path = sys.argv[1:4]
    c4_filters.cached_asset_path_or_download = lambda *a, **k: badwords_path
    with gzip.open(docs_path, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    c4, bad, fineweb = C4QualityFilter(), C4BadWordsFilter(), FineWebQualityFilter()
    out: dict = {"docs": len(docs), "cpu_seconds": {}, "wall_seconds": {}}

    def timed(name, fn):
        t, w = time.process_time(), time.perf_counter()
        out[name] = [fn(d) for d in docs]
        out["cpu_seconds"][name] = time.process_time() - t
        out["wall_seconds"][name] = time.perf_counter() - w

    def c4_one(d: dict) -> str:
        doc = Document(text=d["text"], id=d["id"])
        first = decide(c4.filter(doc))
        return first if first != "keep" else decide(bad.filter(doc))

    timed("quality.c4", c4_one)
    timed("quality.fineweb", lambda d: decide(fineweb.filter(Document(text=d["text"], id=d["id"]))))
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
