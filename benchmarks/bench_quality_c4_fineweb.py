"""quality.c4 and quality.fineweb: gristmill vs datatrove on the same documents, in the same run.

    .venv/bin/python benchmarks/bench_quality_c4_fineweb.py [--limit N] [--repeats 3] [--skip-datatrove]

What is measured
----------------
The Project Gutenberg sample read by gristmill's reader with ``chunk_chars=3000``
(15,557 documents of at most 3,000 characters), with CRLF turned into LF (what
``clean.normalize`` does first: datatrove's FineWeb filter splits lines on "\\n" only,
so on CRLF text no line would end in punctuation and every document would drop).

* gristmill: ``quality.c4`` (defaults: bad-word list on, text not rewritten) and
  ``quality.fineweb`` (defaults), each ``process``-ing 2,000-row batches (the default
  shard size) in this process, on one core; best of ``--repeats`` runs.
* datatrove 0.10.1 (benchmarks/.venv-datatrove, made by bench_pipeline.py; spaCy is
  needed for its English tokenizer): ``C4QualityFilter`` then ``C4BadWordsFilter`` on the
  rewritten text, with gristmill's shipped LDNOOBW list (the same commit datatrove
  downloads), and ``FineWebQualityFilter``, one ``filter(doc)`` call per document in a
  subprocess, on one core, once (it is slow).

Reported: CPU seconds (process_time) and documents per CPU second for each side and
their ratio (the machine is shared: CPU time is the steadier figure), drops by rule on
both sides, and the keep/drop agreement, with every disagreement listed. Figures go to
benchmarks/out/bench_quality_c4_fineweb.json.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
SOURCE = ROOT / ".." / "shared" / "data" / "gutenberg_sample.jsonl.gz"
DT_PYTHON = BENCH / ".venv-datatrove" / "bin" / "python"
BATCH_ROWS = 2000
# datatrove's reason -> gristmill's rule name, where they differ.
RULE_NAMES = {"list_ratio": "newline_ratio", "document_removed_with_badwords": "bad_words"}


def load_docs(limit: int | None) -> list[dict]:
    from gristmill.io import open_reader
    from gristmill.io.base import BadRecord, ReaderOptions

    rows = []
    for r in open_reader(SOURCE, ReaderOptions(chunk_chars=3000)):
        if isinstance(r, BadRecord):
            continue
        rows.append({"id": r["id"], "text": r["text"].replace("\r\n", "\n")})
        if limit and len(rows) >= limit:
            break
    return rows


def run_gristmill(docs: list[dict], repeats: int) -> dict:
    import pyarrow as pa

    from gristmill import registry

    table = pa.table({"id": [d["id"] for d in docs], "text": [d["text"] for d in docs]})
    batches = [table.slice(i, BATCH_ROWS) for i in range(0, table.num_rows, BATCH_ROWS)]
    out = {}
    for name in ("quality.c4", "quality.fineweb"):
        op = registry.create(name)
        op.ensure_setup()
        best_cpu = best_wall = float("inf")
        for _ in range(repeats):
            t, w = time.process_time(), time.perf_counter()
            results = [op.process(b) for b in batches]
            best_cpu = min(best_cpu, time.process_time() - t)
            best_wall = min(best_wall, time.perf_counter() - w)
        decisions = {}
        for res in results:
            decisions.update(dict.fromkeys(res.kept.column("id").to_pylist(), "keep"))
            if res.rejected is not None:
                ids, reasons = res.rejected.column("id").to_pylist(), res.rejected.column("_reason").to_pylist()
                decisions.update((i, r.split(":", 1)[0]) for i, r in zip(ids, reasons))
        out[name] = {"cpu_seconds": best_cpu, "wall_seconds": best_wall,
                     "decisions": [decisions[d["id"]] for d in docs],
                     "reasons": {i: r for res in results if res.rejected is not None
                                 for i, r in zip(res.rejected.column("id").to_pylist(),
                                                 res.rejected.column("_reason").to_pylist())}}
    return out


def run_datatrove(docs: list[dict]) -> dict:
    from gristmill.ops.text.bad_words import bad_words

    OUT.mkdir(parents=True, exist_ok=True)
    docs_path, words_path, out_path = OUT / "c4fw_docs.jsonl.gz", OUT / "c4fw_badwords.txt", OUT / "c4fw_datatrove.json"
    with gzip.open(docs_path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    words_path.write_text("\n".join(bad_words()) + "\n", encoding="utf-8")
    subprocess.run([str(DT_PYTHON), str(BENCH / "_datatrove_c4_fineweb.py"), str(docs_path), str(words_path),
                    str(out_path)], check=True)
    return json.loads(out_path.read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--repeats", type=int, default=3, help="gristmill runs per operator (best is reported)")
    ap.add_argument("--skip-datatrove", action="store_true", help="time gristmill only")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))

    docs = load_docs(args.limit)
    n = len(docs)
    print(f"{n:,} documents, {sum(len(d['text']) for d in docs) / 1e6:.1f} M characters")
    mine = run_gristmill(docs, args.repeats)
    theirs = None if args.skip_datatrove else run_datatrove(docs)
    report: dict = {"documents": n, "operators": {}}
    for name in ("quality.c4", "quality.fineweb"):
        g = mine[name]
        row = {"gristmill_cpu_s": round(g["cpu_seconds"], 3), "gristmill_wall_s": round(g["wall_seconds"], 3),
               "gristmill_docs_per_cpu_s": round(n / g["cpu_seconds"]),
               "gristmill_drops": dict(collections.Counter(x for x in g["decisions"] if x != "keep").most_common())}
        print(f"\n{name}: gristmill {g['cpu_seconds']:.2f} CPU s ({n / g['cpu_seconds']:,.0f} docs/s), "
              f"{g['wall_seconds']:.2f} s wall; kept {g['decisions'].count('keep'):,}; drops {row['gristmill_drops']}")
        if theirs is not None:
            d_dec = [RULE_NAMES.get(x, x) for x in theirs[name]]
            cpu = theirs["cpu_seconds"][name]
            agree = [(a == "keep") == (b == "keep") for a, b in zip(g["decisions"], d_dec)]
            row.update({"datatrove_cpu_s": round(cpu, 3), "datatrove_docs_per_cpu_s": round(n / cpu, 1),
                        "speedup": round(cpu / g["cpu_seconds"], 1),
                        "datatrove_drops": dict(collections.Counter(x for x in d_dec if x != "keep").most_common()),
                        "decision_agreement": sum(agree) / n,
                        "same_rule": sum(a == b for a, b in zip(g["decisions"], d_dec)) / n,
                        "disagreements": [{"id": docs[i]["id"], "gristmill": g["reasons"].get(docs[i]["id"], "keep"),
                                           "datatrove": d_dec[i]} for i, ok in enumerate(agree) if not ok]})
            print(f"  datatrove {cpu:.1f} CPU s ({n / cpu:,.1f} docs/s): gristmill is {row['speedup']}x; "
                  f"datatrove drops {row['datatrove_drops']}")
            print(f"  keep/drop agreement {100 * row['decision_agreement']:.3f}% "
                  f"({len(row['disagreements'])} documents), same rule {100 * row['same_rule']:.3f}%")
            for dis in row["disagreements"]:
                print(f"    {dis['id']}: gristmill {dis['gristmill']!r}, datatrove {dis['datatrove']!r}")
        report["operators"][name] = row
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_quality_c4_fineweb.json").write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
