"""datasketch's MinHashLSH clusters for bench_neardup_quality.py; run with benchmarks/.venv-minhash.

    python _datasketch_lsh.py DOCS_JSONL RESULT_JSON [--num-perm 112] [--bands 14] [--rows 8] [--ngram 5] [--seed 1]

Each document's shingles are gristmill's (``normalize_text``, word n-grams joined by a
space; imported from src/, which needs only numpy), hashed by datasketch's MinHash
(its default scheme, seed ``seed``); MinHashLSH(num_perm, params=(bands, rows)) indexes
them; every document's query results are candidate pairs; connected components (union-find,
the earliest document as root) are the clusters. Writes {"cluster": {id: root id}, "seconds": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from datasketch import MinHash, MinHashLSH  # noqa: E402

from gristmill.ops.text.minhash_signature import normalize_text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("docs", type=Path)
    ap.add_argument("result", type=Path)
    ap.add_argument("--num-perm", type=int, default=112)
    ap.add_argument("--bands", type=int, default=14)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    docs = [json.loads(line) for line in args.docs.open(encoding="utf-8")]
    t0 = time.perf_counter()
    template = MinHash(num_perm=args.num_perm, seed=args.seed)
    lsh = MinHashLSH(num_perm=args.num_perm, params=(args.bands, args.rows))
    sketches = {}
    for i, d in enumerate(docs):
        toks = normalize_text(d["text"] or "").split()
        if not toks:
            continue
        n = args.ngram
        shingles = [" ".join(toks[j:j + n]) for j in range(len(toks) - n + 1)] if len(toks) >= n else [" ".join(toks)]
        m = MinHash(num_perm=args.num_perm, seed=args.seed, permutations=template.permutations, scheme="affine32")
        m.update_batch([s.encode("utf-8") for s in shingles])
        lsh.insert(i, m)
        sketches[i] = m
    parent = list(range(len(docs)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, m in sketches.items():
        for j in lsh.query(m):
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    seconds = time.perf_counter() - t0
    cluster = {d["id"]: docs[find(i)]["id"] for i, d in enumerate(docs)}
    args.result.write_text(json.dumps({"cluster": cluster, "seconds": seconds}))


if __name__ == "__main__":
    main()
