from __future__ import annotations

import gzip
import json
import pickle
import random
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gristmill.ops.dedup.exact import CLUSTER, DUPLICATE_OF
from gristmill.ops.dedup.minhash import FIT_FILE, MinHashDedup, flag_probability
from gristmill.ops.text.minhash_lsh import cluster
from gristmill.ops.text.minhash_signature import (MinHasher, Shingles, _mix, jaccard, normalize_text, shingle_sets,
                                                  tokenize)
from gristmill.ops.text.minhash_state import ShardState
from gristmill.records import from_rows
from gristmill.runner import run_recipe

GUTENBERG = Path(__file__).parents[3] / ".." / "shared" / "data" / "gutenberg_sample.jsonl.gz"


@pytest.fixture(scope="module")
def book_docs() -> list[str]:
    """60 distinct ~1,500-character documents of real prose: paragraphs of the sample's first book."""
    with gzip.open(GUTENBERG, "rt", encoding="utf-8") as f:
        text = json.loads(f.readline())["text"]
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
    docs, cur = [], ""
    for p in paras:
        if "gutenberg" in p.lower() or not p:
            continue
        cur = f"{cur} {p}".strip()
        if len(cur) >= 1500:
            docs.append(cur)
            cur = ""
    assert len(docs) > 100
    return docs[20:80]


def edit_words(text: str, rate: float, seed: int, vocab: list[str] | None = None) -> str:
    """``text`` with ``rate`` of its words replaced by other words."""
    rng = random.Random(seed)
    words = text.split()
    vocab = vocab or ["zebra", "quantum", "marmalade", "vortex", "lantern", "pebble", "orbit", "cactus"]
    for i in rng.sample(range(len(words)), max(1, round(rate * len(words)))):
        words[i] = rng.choice(vocab)
    return " ".join(words)


def run_op(op: MinHashDedup, *shards):
    op.fit([op.summarize(s) for s in shards])
    return [op.process(s) for s in shards]


def rows(docs: list[str], prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", "text": t} for i, t in enumerate(docs)]


# ---- finding and keeping -------------------------------------------------------------

def test_planted_near_duplicates_are_found_across_shards(book_docs: list[str]) -> None:
    originals = from_rows(rows(book_docs, "o"))
    copies = from_rows([{"id": f"c{i}", "text": edit_words(book_docs[i], 0.01, i)} for i in (3, 17, 30, 44, 59)]
                       + [{"id": "n1", "text": "A sentence that resembles nothing else in the book at all."}])
    r1, r2 = run_op(MinHashDedup(), originals, copies)
    assert r1.rejected is None and r1.kept.num_rows == len(book_docs)
    assert r1.kept.column(CLUSTER).to_pylist() == originals.column("id").to_pylist()
    assert r2.kept.column("id").to_pylist() == ["n1"]
    got = r2.rejected.select(["id", "_reason", DUPLICATE_OF, CLUSTER]).to_pylist()
    assert got == [{"id": f"c{i}", "_reason": f"near_duplicate: of o{i} (cluster of 2)",
                    DUPLICATE_OF: f"o{i}", CLUSTER: f"o{i}"} for i in (3, 17, 30, 44, 59)]


def test_distinct_documents_are_not_merged(book_docs: list[str]) -> None:
    rng = random.Random(7)
    vocab = sorted({w for d in book_docs for w in d.split()})
    shuffled = [" ".join(rng.choice(vocab) for _ in range(200)) for _ in range(40)]
    (result,) = run_op(MinHashDedup(), from_rows(rows(book_docs, "b") + rows(shuffled, "s")))
    assert result.rejected is None
    assert result.kept.num_rows == len(book_docs) + len(shuffled)


def test_the_earliest_document_of_a_cluster_is_kept_whatever_the_shard(book_docs: list[str]) -> None:
    doc = book_docs[0]
    shards = [from_rows([{"id": "x", "text": "unrelated words here and there"},
                         {"id": "late", "text": edit_words(doc, 0.01, 1)}]),
              from_rows([{"id": "first?", "text": doc}])]
    r1, r2 = run_op(MinHashDedup(), *shards)
    assert r1.kept.column("id").to_pylist() == ["x", "late"]
    assert r2.rejected.column(DUPLICATE_OF).to_pylist() == ["late"]


def test_transitive_pairs_form_one_cluster_rooted_at_the_earliest() -> None:
    # A~B share band 0, B~C share band 1, A and C share nothing: one cluster {A, B, C}, D alone
    keys = np.array([[1, 1, 5, 7], [2, 3, 3, 8]], np.uint64)
    state = ShardState(4, 4, memory={"keys": keys, "ids": ["A", "B", "C", "D"], "sets": None})
    found = cluster([state], bands=2)
    assert found.members.tolist() == [0, 1, 2] and found.root.tolist() == [0, 0, 0]
    # across shards: the same edges, global numbering continues in shard order
    s1 = ShardState(2, 2, memory={"keys": keys[:, :2], "ids": ["A", "B"], "sets": None})
    s2 = ShardState(2, 2, memory={"keys": keys[:, 2:], "ids": ["C", "D"], "sets": None})
    assert cluster([s1, s2], bands=2).root.tolist() == [0, 0, 0]


def test_transitive_chain_joins_documents_that_are_not_similar_themselves(book_docs: list[str]) -> None:
    # B edits A's first fifth, C edits B's last fifth: A~B, B~C pass the exact check, A~C does not
    words = " ".join(book_docs[:2]).split()[:400]
    a = " ".join(words)
    alpha, omega = [f"alpha{chr(97 + i)}" for i in range(20)], [f"omega{chr(97 + i)}" for i in range(20)]
    b = " ".join(alpha + words[20:])
    c = " ".join(alpha + words[20:380] + omega)
    op = MinHashDedup(jaccard_check=True, threshold=0.85)
    sets = op.ensure_setup() or op._hasher.sketch([a, b, c], sets=True)[2]
    assert jaccard(sets.get(0), sets.get(1)) >= 0.85 and jaccard(sets.get(1), sets.get(2)) >= 0.85
    assert jaccard(sets.get(0), sets.get(2)) < 0.85
    (result,) = run_op(op, from_rows(rows([a, b, c], "t")))
    assert result.kept.column("id").to_pylist() == ["t0"]
    assert result.rejected.column(DUPLICATE_OF).to_pylist() == ["t0", "t0"]
    assert result.rejected.column("_reason").to_pylist()[0] == "near_duplicate: of t0 (cluster of 3)"


def test_jaccard_check_rejects_candidates_below_the_threshold(book_docs: list[str]) -> None:
    batch = from_rows(rows([book_docs[5], edit_words(book_docs[5], 0.03, 2)], "j"))
    sets = MinHasher(112).sketch(batch.column("text").to_pylist(), sets=True)[2]
    similarity = jaccard(sets.get(0), sets.get(1))
    assert 0.6 < similarity < 0.95
    lsh = {"bands": 28, "rows": 4}  # a pair at 0.6 is a candidate with probability 0.98
    (loose,) = run_op(MinHashDedup(jaccard_check=True, threshold=similarity - 0.01, **lsh), batch)
    (strict,) = run_op(MinHashDedup(jaccard_check=True, threshold=similarity + 0.01, **lsh), batch)
    assert loose.kept.num_rows == 1 and strict.kept.num_rows == 2


def test_character_shingles_find_near_duplicates(book_docs: list[str]) -> None:
    text = book_docs[9][:600]
    typo = text[:100] + "x" + text[101:300] + text[302:]
    (result,) = run_op(MinHashDedup(shingle="char", shingle_size=5), from_rows(rows([text, typo, book_docs[10][:600]], "c")))
    assert result.kept.column("id").to_pylist() == ["c0", "c2"]


def test_null_empty_and_punctuation_only_texts_are_never_duplicates() -> None:
    batch = from_rows(rows([None, "", "  ", "!!! ...", None, "", "!!! ..."], "e"))
    (result,) = run_op(MinHashDedup(), batch)
    assert result.rejected is None and result.kept.num_rows == 7


# ---- parameters ----------------------------------------------------------------------

def test_bands_times_rows_must_equal_num_perm() -> None:
    with pytest.raises(ValidationError, match=r"bands \* rows must equal num_perm: 14 \* 8 = 112 != 128; "
                                              r"for num_perm=128 e.g. .*bands=16 rows=8"):
        MinHashDedup(num_perm=128)
    assert MinHashDedup(num_perm=128, bands=16, rows=8).params.num_perm == 128


def test_describe_extra_prints_the_flag_probabilities() -> None:
    text = MinHashDedup().describe_extra()
    assert "14 bands x 8 rows" in text and "0.72" in text
    lines = {float(line.split()[0]): float(line.split()[1]) for line in text.splitlines()[2:]}
    assert list(lines) == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert lines[0.8] == pytest.approx(0.924, abs=1e-3) and lines[0.5] == pytest.approx(0.053, abs=1e-3)
    assert flag_probability(0.8, 14, 8) == pytest.approx(1 - (1 - 0.8 ** 8) ** 14)
    assert "[" not in text  # rich would read it as markup


def test_same_seed_same_signatures_other_seed_other_signatures(book_docs: list[str]) -> None:
    first, _ = MinHasher(112, seed=3)(book_docs[:10])
    again, _ = MinHasher(112, seed=3)(book_docs[:10])
    other, _ = MinHasher(112, seed=4)(book_docs[:10])
    assert np.array_equal(first, again)
    assert (first != other).mean() > 0.99


def test_batch_size_does_not_change_signatures(book_docs: list[str]) -> None:
    hasher = MinHasher(64)
    whole, has = hasher(book_docs)
    pieces = np.concatenate([hasher(book_docs[i:i + 7])[0] for i in range(0, len(book_docs), 7)])
    assert has.all() and np.array_equal(whole, pieces)


def test_estimated_jaccard_is_unbiased() -> None:
    """The fraction of equal signature values estimates the Jaccard similarity within sampling error."""
    rng = np.random.default_rng(0)
    for target in (0.3, 0.8):
        inter = int(2 * 400 * target / (1 + target))
        errors = []
        for seed in range(60):
            universe = rng.integers(0, 2**63, inter + 2 * (400 - inter), dtype=np.uint64)
            a = universe[:400]
            b = np.concatenate((universe[:inter], universe[400:]))
            truth = inter / universe.size
            sh = Shingles(_mix(np.concatenate((a, b))), np.array([0, 400, 800]))
            sig = MinHasher(128, seed=seed).signatures(sh)
            errors.append((sig[0] == sig[1]).mean() - truth)
        sd = np.sqrt(target * (1 - target) / 128)
        assert abs(np.mean(errors)) < 3 * sd / np.sqrt(60)
        assert 0.7 * sd < np.std(errors) < 1.3 * sd


# ---- text normalisation --------------------------------------------------------------

TRICKY = [
    "Hello, World! It's 3.14 o'clock — isn't it? 1,000,000 ways; 12:30.",
    "Café naïve résumé ÉCOLE coöperate",
    "数据清洗是训练语言模型的第一步。 emoji 👩‍👩‍👧 👍🏽 🇯🇵",
    "\u202bمرحبا بالعالم\u202c and עברית ٣٫١٤",
    "tabs\tand\nnew\r\nlines\u00a0nbsp\u2003em-space\x00nul\x1ffs",
    "e\u0301 a\u0308 \u1100\u1161 Z\u0351\u0300\u0318 İstanbul ß ﬁ",
    "",
    "   ",
]


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("lowercase", [True, False])
def test_numpy_tokens_equal_the_plain_python_normalisation(normalize: bool, lowercase: bool) -> None:
    tok = tokenize(TRICKY, lowercase, normalize)
    for d, text in enumerate(TRICKY):
        assert tok.strings(d) == normalize_text(text, lowercase, normalize).split(), text
    assert normalize_text(TRICKY[0]) == "hello world it s 0 o clock isn t it 0 ways 0 0"
    assert normalize_text(TRICKY[1]) == "cafe naive resume ecole cooperate"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text() | st.none(), min_size=1, max_size=5))
def test_numpy_tokens_equal_plain_python_on_any_text(texts: list[str | None]) -> None:
    tok = tokenize(texts)
    for d, text in enumerate(texts):
        assert tok.strings(d) == normalize_text(text or "").split()


def test_shingle_sets_are_sorted_and_distinct() -> None:
    sh = MinHasher(8, size=2).shingles(["a b a b a b", "", "c d e"])
    sets = shingle_sets(sh)
    assert [sets.get(d).size for d in range(3)] == [2, 0, 2]  # {a b, b a}, {}, {c d, d e}
    assert all(np.all(np.diff(sets.get(d).astype(np.int64)) > 0) for d in range(3))


# ---- state on disk, pickling, runs ----------------------------------------------------

def test_state_on_disk_gives_the_same_result_as_in_memory(tmp_path: Path, book_docs: list[str]) -> None:
    shards = [from_rows(rows(book_docs[:30], "a")),
              from_rows(rows([edit_words(d, 0.01, i) for i, d in enumerate(book_docs[:10])], "b"))]
    on_disk = MinHashDedup(jaccard_check=True)
    on_disk.bind(scratch=tmp_path)
    summaries = [on_disk.summarize(s) for s in shards]
    assert all(Path(s.path).parent == tmp_path for s in summaries)
    assert [s.path for s in summaries] == [on_disk.summarize(s).path for s in shards]  # same shard, same dir
    assert not list(tmp_path.glob(".*tmp*"))
    on_disk.fit(summaries)
    in_memory = MinHashDedup(jaccard_check=True)
    in_memory.fit([in_memory.summarize(s) for s in shards])
    assert on_disk.duplicate_of == in_memory.duplicate_of and len(on_disk.duplicate_of) == 10
    clone = pickle.loads(pickle.dumps(on_disk))
    assert clone.process(shards[1]).rejected.to_pylist() == on_disk.process(shards[1]).rejected.to_pylist()
    fit = json.loads((tmp_path / FIT_FILE).read_text())
    assert fit["duplicates"] == 10 and fit["state_bytes_per_document"] > 8 * 14


def test_multi_shard_run_with_workers_and_report(tmp_path: Path, book_docs: list[str]) -> None:
    docs = rows(book_docs[:40], "d")
    planted = {f"p{i}": f"d{i}" for i in (2, 11, 25, 39)}
    docs += [{"id": pid, "text": edit_words(book_docs[int(orig[1:])], 0.01, 9)} for pid, orig in planted.items()]
    docs.insert(0, {"id": "p2b", "text": edit_words(book_docs[2], 0.01, 3)})  # a second copy of d2, before it
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in docs), encoding="utf-8")
    recipe = {"name": "mh", "input": {"path": str(src), "format": "jsonl", "shard_rows": 7},
              "steps": [{"op": "dedup.minhash", "params": {"bands": 28, "rows": 4, "num_perm": 112}}],
              "output": {"format": "jsonl"}, "executor": {"workers": 2}}
    summary = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False)
    run = summary.run_dir
    step = summary.stats["steps"][0]
    assert step["dropped"] == {"near_duplicate": 5} and step["rows_out"] == len(docs) - 5
    rejected = pq.read_table(run / "rejected" / "00-dedup.minhash.parquet").to_pylist()
    expected = {**planted, "d2": "p2b"}  # p2b comes first, so it is kept for d2's cluster
    expected["p2"] = "p2b"
    assert {r["id"]: r[DUPLICATE_OF] for r in rejected} == expected
    assert all(r[CLUSTER] == r[DUPLICATE_OF] for r in rejected)
    assert {r["_reason"] for r in rejected if r[DUPLICATE_OF] == "p2b"} == {"near_duplicate: of p2b (cluster of 3)"}
    out = [json.loads(line) for line in (run / "data" / "data.jsonl").read_text().splitlines()]
    assert all(r[CLUSTER] == r["id"] for r in out) and "p2b" in {r["id"] for r in out}
    report = (run / "report.html").read_text()
    section = report[report.index('<section id="minhash"'):]
    section = section[:section.index("</section>")]
    assert "28 bands × 4 rows" in section and "0.924" not in section
    assert f"{flag_probability(0.8, 28, 4):.3f}" in section
    assert re.search(r"<td class=\"num\">3</td><td class=\"num\">1</td>", section)  # one cluster of 3
    assert "state bytes per document" in section


@pytest.mark.slow
def test_gutenberg_planted_copies_are_found_and_every_flag_is_similar() -> None:
    """1,000 real documents and 100 copies with 1% of words replaced: all copies found, and every
    dropped document really is similar (exact Jaccard >= 0.5) to the one kept for it."""
    with gzip.open(GUTENBERG, "rt", encoding="utf-8") as f:
        books = [json.loads(line)["text"] for _, line in zip(range(12), f)]
    docs = []
    for text in books:
        words = text.split()
        docs += [" ".join(words[i:i + 500]) for i in range(2000, len(words) - 2500, 500)][:90]
    docs = docs[:1000]
    rng = random.Random(1)
    picked = rng.sample(range(len(docs)), 100)
    copies = [{"id": f"copy{i}", "text": edit_words(docs[i], 0.01, i)} for i in picked]
    op = MinHashDedup()
    originals = from_rows(rows(docs, "d"))
    r1, r2 = run_op(op, originals, from_rows(copies))
    assert r2.kept.num_rows == 0
    assert r2.rejected.column(DUPLICATE_OF).to_pylist() == [f"d{i}" for i in picked]
    text_of = {f"d{i}": t for i, t in enumerate(docs)}
    hasher = MinHasher(112)
    for row in (r1.rejected.to_pylist() if r1.rejected is not None else []):
        sets = hasher.sketch([row["text"], text_of[row[DUPLICATE_OF]]], sets=True)[2]
        assert jaccard(sets.get(0), sets.get(1)) >= 0.5


def test_state_of_a_changed_shard_is_never_reused(tmp_path: Path, book_docs: list[str]) -> None:
    """Same ids, other text (or other parameters): a new state directory, not the old one."""
    op = MinHashDedup()
    op.bind(scratch=tmp_path)
    first = op.summarize(from_rows(rows(book_docs[:3], "s")))
    changed = op.summarize(from_rows(rows([book_docs[0], book_docs[1], book_docs[5]], "s")))
    other = MinHashDedup(seed=2)
    other.bind(scratch=tmp_path)
    reseeded = other.summarize(from_rows(rows(book_docs[:3], "s")))
    assert len({first.path, changed.path, reseeded.path}) == 3
    assert not np.array_equal(first.band(0), changed.band(0))
