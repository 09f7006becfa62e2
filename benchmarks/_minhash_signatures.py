"""One system's MinHash signature throughput, for bench_minhash.py (one process, one core).

    python _minhash_signatures.py SYSTEM DOCS_JSONL_GZ RESULT_JSON [--num-perm 112] [--ngram 5] [--seed 1]

SYSTEM is one of:

* ``gristmill``: ``MinHasher`` on the raw texts, slice by slice as ``MinHasher.sketch``
  does: ``shingles`` (normalisation, tokens, word n-gram hashes) then ``signatures``
  (the permutations); numpy, run with the project's .venv;
* ``rensa``: per document ``RMinHash(num_perm, seed).update(shingles).digest()``;
* ``rensa-bulk``: ``RMinHash.digest_matrix_from_token_sets`` over all documents at once
  (rensa's fastest path for string tokens);
* ``datasketch``: per document ``MinHash(num_perm, seed).update_batch(shingle bytes)``;
* ``rensa-on-gristmill-shingles``: rensa's ``digest_matrix_from_flat_token_hashes`` on the
  64-bit shingle hashes gristmill computes (isolates the permutation step).

For rensa and datasketch the shingles are the same strings gristmill hashes: the text
normalised by ``gristmill.ops.text.minhash_signature.normalize_text`` (imported from src/,
which needs only numpy), split on spaces, every run of NGRAM words joined by a space (a
document with fewer words: all of them as one shingle; one with none: skipped). Their
time is split into shingling (Python) and hashing. The first document batch is a
warm-up (table building, imports) and is not timed; times are after reading the input.
Also recorded: the CPU seconds of the process over the same span (less sensitive to
other load on the machine than wall clock).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from gristmill.ops.text import minhash_signature as ms  # noqa: E402


def shingle_strings(text: str, n: int) -> list[str]:
    toks = ms.normalize_text(text).split()
    if len(toks) < n:
        return [" ".join(toks)] if toks else []
    return [" ".join(toks[i:i + n]) for i in range(len(toks) - n + 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("system")
    ap.add_argument("docs", type=Path)
    ap.add_argument("result", type=Path)
    ap.add_argument("--num-perm", type=int, default=112)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    with gzip.open(args.docs, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    if args.limit:
        texts = texts[:args.limit]
    n, perm, seed = args.ngram, args.num_perm, args.seed
    ms._translate_table()  # warm-up: character tables (built once per process)
    ms._classes(True)
    shingle_s = hash_s = 0.0
    signed = 0
    cpu0 = time.process_time()
    if args.system == "gristmill":
        hasher = ms.MinHasher(perm, "word", n, seed)
        hasher.sketch(texts[:50])
        cpu0 = time.process_time()
        for lo, hi in ms._slices(texts, ms._CHUNK_CHARS):  # what MinHasher.sketch does, timed in two parts
            t0 = time.perf_counter()
            sh = hasher.shingles(texts[lo:hi])
            t1 = time.perf_counter()
            hasher.signatures(sh)
            shingle_s += t1 - t0
            hash_s += time.perf_counter() - t1
            signed += int((np.diff(sh.offsets) > 0).sum())
        version = "dev"
    elif args.system == "rensa-on-gristmill-shingles":
        import rensa
        version = _version("rensa")
        hasher = ms.MinHasher(perm, "word", n, seed)
        t0 = time.perf_counter()
        parts = [hasher.shingles(texts[lo:hi]) for lo, hi in ms._slices(texts, ms._CHUNK_CHARS)]
        hashes = np.concatenate([p.hashes for p in parts])
        counts = np.concatenate([np.diff(p.offsets) for p in parts])
        offsets = np.zeros(counts.size + 1, np.uint64)
        np.cumsum(counts, out=offsets[1:])
        shingle_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, perm, seed)
        hash_s = time.perf_counter() - t0
        signed = int((counts > 0).sum())
    else:
        t0 = time.perf_counter()
        sets = [s for s in (shingle_strings(t, n) for t in texts) if s]
        shingle_s = time.perf_counter() - t0
        signed = len(sets)
        if args.system == "rensa":
            import rensa
            version = _version("rensa")
            t0 = time.perf_counter()
            for s in sets:
                m = rensa.RMinHash(num_perm=perm, seed=seed)
                m.update(s)
                m.digest()
            hash_s = time.perf_counter() - t0
        elif args.system == "rensa-bulk":
            import rensa
            version = _version("rensa")
            t0 = time.perf_counter()
            rensa.RMinHash.digest_matrix_from_token_sets(sets, perm, seed)
            hash_s = time.perf_counter() - t0
        elif args.system == "datasketch":
            from datasketch import MinHash
            version = _version("datasketch")
            template = MinHash(num_perm=perm, seed=seed)  # permutations drawn once, as datasketch recommends
            t0 = time.perf_counter()
            for s in sets:
                m = MinHash(num_perm=perm, seed=seed, permutations=template.permutations, scheme="affine32")
                m.update_batch([x.encode("utf-8") for x in s])
                m.digest()
            hash_s = time.perf_counter() - t0
        else:
            raise SystemExit(f"unknown system {args.system!r}")
    cpu = time.process_time() - cpu0
    result = {"system": args.system, "cpu_seconds": cpu, "version": version, "docs": len(texts), "signed": signed,
              "text_bytes": sum(len(t.encode("utf-8")) for t in texts), "num_perm": perm, "ngram": n,
              "shingle_seconds": shingle_s, "hash_seconds": hash_s, "seconds": shingle_s + hash_s}
    args.result.write_text(json.dumps(result, indent=2))


def _version(name: str) -> str:
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    main()
