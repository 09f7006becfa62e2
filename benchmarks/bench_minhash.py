"""MinHash: signature throughput vs rensa and datasketch, and end-to-end near-dup dedup vs datatrove.

    .venv/bin/python benchmarks/bench_minhash.py [--workers 2] [--limit N]
                                                 [--skip-throughput] [--skip-e2e] [--skip-datatrove]

Input: the Gutenberg sample cut into ~3 KB documents by bench_pipeline.prepare_input
(14,877 documents, 39.4 MB; one gzip file for gristmill, one per task for datatrove).
Parameters everywhere: 112 permutations = 14 bands x 8 rows, word 5-gram shingles, seed 1.

1. Signature throughput, one process on one core, each system in its own cold subprocess
   (_minhash_signatures.py; gristmill in .venv, the peers in benchmarks/.venv-minhash,
   created here with rensa 0.5.0 and datasketch 2.0.0). Measured after reading the input,
   including shingling: gristmill gets the raw texts; rensa and datasketch get the same
   shingle strings (gristmill's normalize_text, word 5-grams joined by spaces) built in
   Python, and that time is reported apart as "shingle s". Also shown:
   rensa's bulk API, and rensa on gristmill's own 64-bit shingle hashes (its Rust
   permutation kernel alone). Fast systems run twice and the run with the fewest CPU
   seconds counts; ratios are of CPU seconds (wall clock is shown too).
2. End to end, 2 workers: gristmill ``run_recipe`` with one ``dedup.minhash`` step (read
   JSONL, dedup, write JSONL, rejected rows and stats; no HTML report) vs datatrove 0.10.1's
   MinHash stages 1-4 (signatures, buckets, cluster, filter + write, each a
   LocalPipelineExecutor; benchmarks/.venv-datatrove, with spaCy, which datatrove's English
   word tokenizer needs). Wall clock of each cold subprocess and the in-process time after
   imports; documents removed by each and how far the removals agree.

Timings on this shared 2-core machine are noisy; compare ratios within one run.
Writes benchmarks/out/bench_minhash.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_pipeline import DOCS, OUT, ROOT, SHARDS, ensure_datatrove_venv, prepare_input, run_timed  # noqa: E402

MH_VENV = BENCH / ".venv-minhash"
MH_PACKAGES = ["rensa==0.5.0", "datasketch==2.0.0"]
NUM_PERM, BANDS, ROWS, NGRAM, SEED = 112, 14, 8, 5, 1
SYSTEMS = [  # (name, venv, runs)
    ("gristmill", "main", 2),
    ("rensa-bulk", "peer", 2),
    ("rensa", "peer", 1),
    ("datasketch", "peer", 1),
    ("rensa-on-gristmill-shingles", "peer", 2),
]


def ensure_venv(venv: Path, packages: list[str], probe: str) -> Path:
    """Create ``venv`` with ``packages`` unless ``probe`` already imports there."""
    py = venv / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", probe], capture_output=True).returncode == 0:
        return py
    print(f"creating {venv.relative_to(ROOT)} ({' '.join(packages)}) ...", flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], check=True)
    return py


def ensure_datatrove_minhash_venv() -> Path:
    """benchmarks/.venv-datatrove, plus spaCy (datatrove's English word tokenizer) if missing."""
    py = ensure_datatrove_venv()
    if subprocess.run([str(py), "-c", "import spacy"], capture_output=True).returncode:
        print("installing spacy into benchmarks/.venv-datatrove ...", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "spacy"], check=True)
    return py


def limited_docs(limit: int) -> Path:
    """The documents file, or its first ``limit`` documents."""
    if not limit:
        return DOCS
    path = OUT / f"gutenberg_docs_first{limit}.jsonl.gz"
    if not path.exists():
        with gzip.open(DOCS, "rt", encoding="utf-8") as src, gzip.open(path, "wt", encoding="utf-8") as dst:
            for _, line in zip(range(limit), src):
                dst.write(line)
    return path


def throughput(docs: Path, peer_py: Path) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for name, venv, runs in SYSTEMS:
        py = sys.executable if venv == "main" else str(peer_py)
        best = None
        for i in range(runs):
            out = OUT / f"minhash_sig_{name}_{i}.json"
            proc = run_timed([py, str(BENCH / "_minhash_signatures.py"), name, str(docs), str(out),
                              "--num-perm", str(NUM_PERM), "--ngram", str(NGRAM), "--seed", str(SEED)],
                             OUT / f"minhash_sig_{name}_{i}.log")
            r = {**json.loads(out.read_text()), "loadavg_before": proc["loadavg_before"]}
            if best is None or r["cpu_seconds"] < best["cpu_seconds"]:
                best = r
        best["docs_per_s"] = best["docs"] / best["seconds"]
        best["docs_per_cpu_s"] = best["docs"] / best["cpu_seconds"]
        best["mb_per_s"] = best["text_bytes"] / 1e6 / best["seconds"]
        best["runs"] = runs
        results[name] = best
        print(f"  {name}: {best['seconds']:.2f}s (load before {best['loadavg_before']:.1f})", flush=True)
    return results


def print_throughput(res: dict[str, dict]) -> None:
    g = res["gristmill"]
    print(f"\nSignature throughput, one core, {g['docs']} docs / {g['text_bytes'] / 1e6:.1f} MB, "
          f"{NUM_PERM} perms, word {NGRAM}-grams (shingling included)")
    print(f"{'':<30} {'---------- wall clock ----------':^42}  {'--- CPU seconds ---':^20}")
    print(f"{'system':<30} {'shingle s':>9} {'hash s':>7} {'total s':>7} {'docs/s':>8} {'MB/s':>6}  "
          f"{'CPU s':>6} {'docs/CPU s':>10} {'gristmill x':>11}")
    for name, r in res.items():
        print(f"{name:<30} {r['shingle_seconds']:>9.2f} {r['hash_seconds']:>7.2f} {r['seconds']:>7.2f} "
              f"{r['docs_per_s']:>8.0f} {r['mb_per_s']:>6.1f}  {r['cpu_seconds']:>6.2f} "
              f"{r['docs'] / r['cpu_seconds']:>10.0f} {r['cpu_seconds'] / g['cpu_seconds']:>10.2f}x")
    print("gristmill x = the system's CPU seconds / gristmill's (above 1: gristmill is faster)")


def gristmill_removed(run_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Ids gristmill removed, and every removed id's kept representative."""
    import pyarrow.parquet as pq
    path = run_dir / "rejected" / "00-dedup.minhash.parquet"
    if not path.exists():
        return [], {}
    t = pq.read_table(path, columns=["id", "_duplicate_of"]).to_pylist()
    return [r["id"] for r in t], {r["id"]: r["_duplicate_of"] for r in t}


def agreement(g_rep: dict[str, str], d_removed: list[str]) -> dict:
    """How far the two removal sets agree, allowing each system its own representative per cluster."""
    clusters: dict[str, set[str]] = {}
    for rid, rep in g_rep.items():
        clusters.setdefault(rep, {rep}).add(rid)
    in_cluster = {m for c in clusters.values() for m in c}
    d = set(d_removed)
    by_cluster = Counter()
    off = 0
    for members in clusters.values():
        removed_there = len(members & d)
        by_cluster["same count" if removed_there == len(members) - 1 else "different count"] += 1
        off += abs(len(members) - 1 - removed_there)
    outside = sorted(d - in_cluster)
    return {"gristmill_clusters": len(clusters), "clusters_by_datatrove_removals": dict(by_cluster),
            "documents_off_inside_gristmill_clusters": off,
            "datatrove_removed_outside_gristmill_clusters": len(outside), "examples_outside": outside[:20]}


def end_to_end(docs: Path, workers: int, dt_py: Path | None, limit: int) -> dict:
    recipe = {"name": "bench-minhash", "input": {"path": str(docs), "format": "jsonl"},
              "steps": [{"op": "dedup.minhash", "params": {"num_perm": NUM_PERM, "bands": BANDS, "rows": ROWS,
                                                            "shingle_size": NGRAM, "seed": SEED}}],
              "output": {"format": "jsonl"}, "executor": {"workers": workers}}
    recipe_file = OUT / "minhash_recipe.json"
    recipe_file.write_text(json.dumps(recipe, indent=2))
    out: dict = {}
    runs = []
    for i in range(2):
        res_file = OUT / f"minhash_e2e_gristmill_{i}.json"
        proc = run_timed([sys.executable, str(BENCH / "_gristmill_pipeline.py"), str(recipe_file), str(OUT / "runs"),
                          "bench-minhash", str(res_file), "--workers", str(workers)], OUT / f"minhash_e2e_gristmill_{i}.log")
        r = {**json.loads(res_file.read_text()), **proc}
        runs.append(r)
        print(f"  gristmill run {i + 1}: wall {r['wall_seconds']:.2f}s, in-process {r['seconds']:.2f}s", flush=True)
    g = min(runs, key=lambda r: r["wall_seconds"])
    removed, reps = gristmill_removed(OUT / "runs" / "bench-minhash")
    step = g["stats"]["steps"][0]
    fit_file = next((OUT / "runs" / "bench-minhash" / "cache").glob("step-00-dedup.minhash-*/scratch/minhash_fit.json"), None)
    out["gristmill"] = {k: g[k] for k in ("wall_seconds", "seconds", "cpu_seconds", "max_rss_mb", "tree_rss_mb",
                                           "docs_in", "docs_out", "loadavg_before")}
    out["gristmill"].update(removed=len(removed), step_seconds_summed=step["seconds"],
                            fit=json.loads(fit_file.read_text()) if fit_file else None, runs=len(runs))
    if dt_py is not None:
        shards = SHARDS if not limit else _limited_shards(docs, workers)
        res_file = OUT / "minhash_e2e_datatrove.json"
        proc = run_timed([str(dt_py), str(BENCH / "_datatrove_minhash.py"), str(shards), str(OUT / "datatrove_minhash_work"),
                          str(res_file), "--tasks", str(workers), "--workers", str(workers), "--buckets", str(BANDS),
                          "--rows", str(ROWS), "--ngram", str(NGRAM), "--seed", str(SEED)], OUT / "minhash_e2e_datatrove.log")
        d = {**json.loads(res_file.read_text()), **proc}
        print(f"  datatrove: wall {d['wall_seconds']:.2f}s, in-process {d['seconds']:.2f}s", flush=True)
        out["datatrove"] = {k: d[k] for k in ("wall_seconds", "seconds", "cpu_seconds", "max_rss_mb", "tree_rss_mb",
                                               "docs_in", "docs_out", "removed", "stage_seconds", "loadavg_before")}
        out["agreement"] = agreement(reps, d["removed_ids"])
    return out


def _limited_shards(docs: Path, shards: int) -> Path:
    folder = OUT / f"{docs.name.split('.')[0]}_shards"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    lines = gzip.open(docs, "rb").readlines()
    per = -(-len(lines) // shards)
    for s in range(shards):
        with gzip.open(folder / f"{s:05d}.jsonl.gz", "wb") as f:
            f.writelines(lines[s * per:(s + 1) * per])
    return folder


def print_e2e(e2e: dict) -> None:
    g, d = e2e["gristmill"], e2e.get("datatrove")
    print(f"\nEnd-to-end near-duplicate removal, {g['docs_in']} docs, 2 workers")
    print(f"{'system':<10} {'wall s':>7} {'in-proc s':>9} {'CPU s':>6} {'docs/s':>7} {'removed':>7} {'RSS tree MB':>11}")
    for name, r in (("gristmill", g), ("datatrove", d)):
        if r:
            print(f"{name:<10} {r['wall_seconds']:>7.2f} {r['seconds']:>9.2f} {r['cpu_seconds']:>6.1f} "
                  f"{r['docs_in'] / r['wall_seconds']:>7.0f} {r['removed']:>7} {r['tree_rss_mb']:>11.0f}")
    if d:
        print(f"gristmill is {d['wall_seconds'] / g['wall_seconds']:.1f}x faster wall clock, "
              f"{d['seconds'] / g['seconds']:.1f}x in-process, {d['cpu_seconds'] / g['cpu_seconds']:.1f}x per CPU second; "
              f"datatrove stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in d["stage_seconds"].items()))
        a = e2e["agreement"]
        print(f"agreement: of gristmill's {a['gristmill_clusters']} clusters, datatrove removes the same number of "
              f"documents in {a['clusters_by_datatrove_removals'].get('same count', 0)}; documents off inside them "
              f"{a['documents_off_inside_gristmill_clusters']}; removed by datatrove outside any gristmill cluster "
              f"{a['datatrove_removed_outside_gristmill_clusters']}")
    if g.get("fit"):
        f = g["fit"]
        print(f"gristmill state: {f['state_bytes_per_document']:.0f} bytes per document; fit {f['fit_seconds']:.2f}s, "
              f"{f['candidate_pairs']} candidate pairs, {f['clusters']} clusters")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N documents")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--skip-datatrove", action="store_true")
    args = ap.parse_args()
    meta = prepare_input(args.workers)
    docs = limited_docs(args.limit)
    print(f"input: {args.limit or meta['docs']} documents ({docs.relative_to(ROOT)})", flush=True)
    report: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "python": platform.python_version()},
                    "params": {"num_perm": NUM_PERM, "bands": BANDS, "rows": ROWS, "ngram": NGRAM, "seed": SEED},
                    "input": str(docs.relative_to(ROOT))}
    if not args.skip_throughput:
        peer = ensure_venv(MH_VENV, MH_PACKAGES, "import rensa, datasketch")
        report["throughput"] = throughput(docs, peer)
        print_throughput(report["throughput"])
    if not args.skip_e2e:
        dt_py = None if args.skip_datatrove else ensure_datatrove_minhash_venv()
        report["end_to_end"] = end_to_end(docs, args.workers, dt_py, args.limit)
        print_e2e(report["end_to_end"])
    dest = OUT / "bench_minhash.json"
    dest.write_text(json.dumps(report, indent=2, default=str))
    print(f"figures: {dest.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
