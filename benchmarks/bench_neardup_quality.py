"""Near-duplicate quality: precision / recall / F1 per edit rate on planted copies of Gutenberg text.

    .venv/bin/python benchmarks/bench_neardup_quality.py [--base 100] [--distractors 400] [--seed 1] [--skip-semantic]

The labelled set
----------------
The pool is the Gutenberg sample cut into ~3 KB documents (bench_pipeline.prepare_input),
without: documents mentioning "Gutenberg" (licence boilerplate repeated in every book),
the second copy of the one book the sample holds twice, documents under 100 words, and
every document in a natural near-duplicate cluster (dedup.minhash with 28 bands x 4 rows
and an exact Jaccard check at 0.4 on the pool), so that the only near-duplicates are
the planted ones. From the pool, ``base`` documents are drawn, and ``distractors`` others.

For each edit rate r in 1%, 5%, 10%, 20%, 30%, one corpus = distractors + base documents +
four copies of every base document, one per edit (seeded, on whitespace words):

* substitute: round(r * words) random positions get a random word of the pool's vocabulary
  (drawn by frequency);
* delete: round(r * words) random words are removed;
* insert: round(r * words) random vocabulary words are inserted at random positions;
* reorder: round(r * sentences) (at least one) random sentences are moved to random positions.

Scoring
-------
The truth: each base document and its four copies form one group. A method's clusters
give predicted pairs (two documents in one cluster); only pairs with at least one copy
count, since pairs among base and distractor documents are not labelled. Precision =
true predicted pairs / predicted pairs, recall = true predicted pairs / true pairs (10 per
group), F1 their harmonic mean; "recall by edit" is the share of copies clustered with
their base document. "J" is the mean exact Jaccard similarity (word 5-gram sets) between
a base document and its copies.

Methods, all with 112 permutations = 14 bands x 8 rows and word 5-grams where it applies:
dedup.minhash (defaults), dedup.minhash with jaccard_check (threshold 0.7), datasketch
2.0.0 MinHashLSH(params=(14, 8)) on the same shingles (benchmarks/.venv-minhash), and
dedup.semantic with its defaults when src/gristmill/ops/dedup/semantic.py exists.
Writes benchmarks/out/bench_neardup_quality.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_minhash import MH_PACKAGES, MH_VENV, ensure_venv  # noqa: E402
from bench_pipeline import DOCS, OUT, ROOT, prepare_input  # noqa: E402

from gristmill import registry  # noqa: E402
from gristmill.ops.base import GlobalOp  # noqa: E402
from gristmill.ops.dedup.minhash import MinHashDedup  # noqa: E402
from gristmill.ops.text.minhash_signature import MinHasher, jaccard  # noqa: E402
from gristmill.records import from_rows  # noqa: E402

RATES = (0.01, 0.05, 0.10, 0.20, 0.30)
EDITS = ("substitute", "delete", "insert", "reorder")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def load_pool(min_words: int = 100) -> list[dict]:
    """Pool documents: no licence boilerplate, no repeated book, no natural near-duplicates."""
    prepare_input(2)
    seen_books: dict[str, str] = {}
    pool = []
    with gzip.open(DOCS, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            position, book, _ = row["id"].split("-", 2)
            if seen_books.setdefault(book, position) != position:
                continue
            if "gutenberg" in row["text"].lower() or len(row["text"].split()) < min_words:
                continue
            pool.append(row)
    op = MinHashDedup(bands=28, rows=4, jaccard_check=True, threshold=0.4)
    table = from_rows(pool)
    op.fit([op.summarize(table)])
    natural = set(op.duplicate_of) | set(op.duplicate_of.values())
    print(f"pool: {len(pool)} documents, {len(natural)} removed as natural near-duplicates", flush=True)
    return [r for r in pool if r["id"] not in natural]


def edit(text: str, kind: str, rate: float, rng: random.Random, vocab: list[str]) -> str:
    """A copy of ``text`` with edits of ``kind`` at ``rate`` (see the module docstring)."""
    if kind == "reorder":
        sentences = _SENTENCE.split(" ".join(text.split()))
        k = min(len(sentences) - 1, max(1, round(rate * len(sentences)))) if len(sentences) > 1 else 0
        for _ in range(k):
            s = sentences.pop(rng.randrange(len(sentences)))
            sentences.insert(rng.randrange(len(sentences) + 1), s)
        return " ".join(sentences)
    words = text.split()
    k = max(1, round(rate * len(words)))
    if kind == "substitute":
        for i in rng.sample(range(len(words)), k):
            words[i] = rng.choice(vocab)
    elif kind == "delete":
        for i in sorted(rng.sample(range(len(words)), k), reverse=True):
            del words[i]
    elif kind == "insert":
        for _ in range(k):
            words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
    return " ".join(words)


def build(base: list[dict], distractors: list[dict], rate: float, seed: int,
          vocab: list[str]) -> tuple[list[dict], dict[str, str]]:
    """One corpus and its truth: the id of each planted document's group (the base id)."""
    rng = random.Random(f"{seed}-{rate}")
    rows = list(distractors) + list(base)
    group = {b["id"]: b["id"] for b in base}
    for b in base:
        for kind in EDITS:
            cid = f"copy-{kind}-{b['id']}"
            rows.append({"id": cid, "text": edit(b["text"], kind, rate, rng, vocab)})
            group[cid] = b["id"]
    return rows, group


def clusters_of_op(op: GlobalOp, shards: list[list[dict]], scratch: Path) -> dict[str, str]:
    """id -> cluster (the kept id) from a dedup operator run over ``shards`` with ``scratch`` as its state dir."""
    tables = [from_rows(rows) for rows in shards]
    op.bind(scratch=scratch)
    op.ensure_setup()
    op.fit([op.summarize(t) for t in tables])
    out = {}
    for table in tables:
        result = op.process(table)
        for part in (result.kept, result.rejected):
            if part is None:
                continue
            ids = part.column("id").to_pylist()
            if "dedup.cluster" in part.column_names:
                out.update(zip(ids, part.column("dedup.cluster").to_pylist()))
            elif "_duplicate_of" in part.column_names:
                out.update({i: d or i for i, d in zip(ids, part.column("_duplicate_of").to_pylist())})
            else:
                out.update({i: i for i in ids})
    return out


def clusters_of_datasketch(rows: list[dict], peer_py: Path) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "docs.jsonl", Path(tmp) / "out.json"
        src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        subprocess.run([str(peer_py), str(BENCH / "_datasketch_lsh.py"), str(src), str(dst)], check=True)
        return json.loads(dst.read_text())["cluster"]


def score(cluster: dict[str, str], group: dict[str, str]) -> dict:
    """Pair precision / recall / F1 over pairs with at least one copy, and copy recall by edit."""
    members: dict[str, list[str]] = {}
    for doc, c in cluster.items():
        members.setdefault(c, []).append(doc)
    predicted = 0
    for docs in members.values():
        k, copies = len(docs), sum(d.startswith("copy-") for d in docs)
        predicted += k * (k - 1) // 2 - (k - copies) * (k - copies - 1) // 2
    by_group: dict[str, list[str]] = {}
    for doc, g in group.items():
        by_group.setdefault(g, []).append(doc)
    true_pairs = hits = 0
    for docs in by_group.values():
        for i, a in enumerate(docs):
            for b in docs[i + 1:]:
                true_pairs += 1
                hits += cluster.get(a, a) == cluster.get(b, b)
    precision = hits / predicted if predicted else 1.0
    recall = hits / true_pairs if true_pairs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    found = Counter()
    for doc, g in group.items():
        if doc.startswith("copy-") and cluster.get(doc, doc) == cluster.get(g, g):
            found[doc.split("-")[1]] += 1
    n_base = len(by_group)
    return {"precision": precision, "recall": recall, "f1": f1, "predicted_pairs": predicted,
            "true_pairs": true_pairs, "hits": hits, "recall_by_edit": {e: found[e] / n_base for e in EDITS}}


def mean_jaccard(rows: list[dict], group: dict[str, str]) -> dict[str, float]:
    text = {r["id"]: r["text"] for r in rows}
    copies = [d for d in group if d.startswith("copy-")]
    hasher = MinHasher(8)
    out: dict[str, list[float]] = {e: [] for e in EDITS}
    for d in copies:
        sets = hasher.sketch([text[d], text[group[d]]], sets=True)[2]
        out[d.split("-")[1]].append(jaccard(sets.get(0), sets.get(1)))
    return {e: sum(v) / len(v) for e, v in out.items()}


def semantic_op() -> GlobalOp | None:
    try:
        return registry.create("dedup.semantic")
    except ModuleNotFoundError as exc:
        print(f"dedup.semantic: skipped, its module is not there yet ({exc})", flush=True)
    except Exception as exc:  # noqa: BLE001 - report any failure to build it, do not hide it
        print(f"dedup.semantic: skipped, it could not be created: {type(exc).__name__}: {exc}", flush=True)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=int, default=100)
    ap.add_argument("--distractors", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-semantic", action="store_true")
    args = ap.parse_args()
    peer = ensure_venv(MH_VENV, MH_PACKAGES, "import rensa, datasketch")
    pool = load_pool()
    rng = random.Random(args.seed)
    picked = rng.sample(pool, args.base + args.distractors)
    base, distractors = picked[:args.base], picked[args.base:]
    vocab = [w for r in pool for w in r["text"].split()]

    # two shards per corpus: the documents every rate shares, then the copies; one scratch
    # directory per method for all rates, so an operator that caches per shard (dedup.semantic's
    # embeddings) computes the shared shard once
    work = Path(tempfile.mkdtemp(prefix="neardup-", dir=OUT))
    methods = {
        "dedup.minhash": lambda shards, d: clusters_of_op(MinHashDedup(), shards, d),
        "dedup.minhash+check0.7": lambda shards, d: clusters_of_op(MinHashDedup(jaccard_check=True, threshold=0.7), shards, d),
        "datasketch MinHashLSH": lambda shards, d: clusters_of_datasketch(shards[0] + shards[1], peer),
    }
    sem = None if args.skip_semantic else semantic_op()
    if sem is not None:
        methods["dedup.semantic"] = lambda shards, d: clusters_of_op(semantic_op(), shards, d)
    results: dict = {"params": vars(args), "pool": len(pool), "rates": {}}
    for rate in RATES:
        rows, group = build(base, distractors, rate, args.seed, vocab)
        entry = {"documents": len(rows), "mean_jaccard": mean_jaccard(rows, group), "methods": {}}
        print(f"rate {rate:.0%}: {len(rows)} documents", flush=True)
        shared = len(distractors) + len(base)
        for name, fn in methods.items():
            t0 = time.perf_counter()
            scratch = work / name
            scratch.mkdir(exist_ok=True)
            cluster = fn([rows[:shared], rows[shared:]], scratch)
            entry["methods"][name] = {**score(cluster, group), "seconds": time.perf_counter() - t0}
            print(f"  {name}: F1 {entry['methods'][name]['f1']:.3f} ({entry['methods'][name]['seconds']:.1f}s)", flush=True)
        results["rates"][f"{rate:.2f}"] = entry

    print(f"\n{args.base} base documents x 4 edited copies + {args.distractors} distractors per rate; "
          f"pairs with a planted copy")
    head = f"{'rate':>5} {'method':<24} {'P':>6} {'R':>6} {'F1':>6} {'F1/ds':>6}  " + " ".join(f"{e[:6]:>6}" for e in EDITS)
    print(head + "   (recall of copies by edit)")
    for rate, entry in results["rates"].items():
        ds = entry["methods"]["datasketch MinHashLSH"]["f1"]
        for name, m in entry["methods"].items():
            ratio = f"{m['f1'] / ds:6.2f}" if ds else "     -"
            print(f"{float(rate):>5.0%} {name:<24} {m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f} {ratio}  "
                  + " ".join(f"{m['recall_by_edit'][e]:>6.2f}" for e in EDITS))
        print(f"{'':>5} {'mean exact Jaccard':<24} {'':>20}  " + " ".join(f"{entry['mean_jaccard'][e]:>6.2f}" for e in EDITS))
    if sem is None:
        print("\ndedup.semantic was not measured (see above).")
    shutil.rmtree(work, ignore_errors=True)
    dest = OUT / "bench_neardup_quality.json"
    dest.write_text(json.dumps(results, indent=2))
    print(f"figures: {dest.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
