"""image.dedup: byte copies and perceptual near copies clustered, the earliest kept; hashes equal imagehash's."""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image

from gristmill import registry
from gristmill.images import hashing
from gristmill.ops.base import StepResult

from .pictures import batch, encode, photo, table_of


def run(tables, **params: object) -> list[StepResult]:
    op = registry.create("image.dedup", params)
    op.ensure_setup()
    op.fit([op.summarize(t) for t in tables])
    return [op.process(t) for t in tables], op


def test_batch_hashes_are_imagehash_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    pictures = [photo(i, (int(rng.integers(9, 80)), int(rng.integers(9, 80)))) for i in range(40)]
    pictures += [Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), "L") for _ in range(40)]
    assert [hashing.hex64(h) for h in hashing.phash(pictures)] == [str(imagehash.phash(p)) for p in pictures]
    assert [hashing.hex64(h) for h in hashing.dhash(pictures)] == [str(imagehash.dhash(p)) for p in pictures]


def test_close_pairs_equal_a_brute_force_loop() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 2**63, 300, dtype=np.uint64)
    a[50:60] = a[0] ^ np.uint64(0b111)  # ten within 3 bits of row 0
    b = rng.integers(0, 2**63, 300, dtype=np.uint64)
    b[50:60] = b[0]
    for require in ("all", "any"):
        i, j = hashing.close_pairs([a, b], [3, 3], require)
        want = [(x, y) for x in range(300) for y in range(x + 1, 300)
                if ((bin(int(a[x] ^ a[y])).count("1") <= 3) + (bin(int(b[x] ^ b[y])).count("1") <= 3))
                >= (2 if require == "all" else 1)]
        assert sorted(zip(i.tolist(), j.tolist())) == want


def test_copies_and_near_copies_across_shards() -> None:
    base = [photo(i) for i in range(6)]
    originals = [encode(p) for p in base]
    near = encode(base[2].resize((96, 64)).resize((48, 32)))  # resized there and back: other bytes, same look
    jpeg = encode(base[4], "JPEG", quality=70)
    shard1 = table_of(originals[:4], prefix="a")
    shard2 = table_of([originals[1], near, jpeg, originals[5]], prefix="b")
    (r1, r2), op = run([shard1, shard2])
    assert r1.rejected is None and r1.kept.column("dedup.cluster").to_pylist() == ["a0", "a1", "a2", "a3"]
    rejected = {r["id"]: r for r in r2.rejected.to_pylist()}
    assert rejected["b0"]["_reason"] == "duplicate: of a1" and rejected["b0"]["_duplicate_of"] == "a1"
    assert rejected["b1"]["_reason"].startswith("near_duplicate: of a2 (cluster of 2, phash/dhash distance ")
    assert rejected["b1"]["_distance"] <= 8
    assert r2.kept.column("id").to_pylist() == ["b2", "b3"]  # the JPEG of a picture seen only here, and a new one
    assert len(r2.kept.column("image.phash")[0].as_py()) == 16
    summary = op.run_summary()
    assert summary["duplicates"] == 2 and summary["exact_duplicates"] == 1 and summary["clusters"] == 2
    assert {c["kept"] for c in summary["clusters_shown"]} == {"a1", "a2"}


def test_distinct_pictures_stay_and_distance_zero_is_strict() -> None:
    tables = [table_of([encode(photo(i)) for i in range(12)])]
    (result,), _ = run(tables)
    assert result.rejected is None
    (result,), _ = run([table_of([encode(photo(0)), encode(photo(0).resize((47, 31)).resize((48, 32)))])],
                       max_distance=0)
    assert result.rejected is None or result.rejected.num_rows <= 1


def test_undecodable_rows_are_compared_by_bytes_only() -> None:
    (result,), op = run([batch()])
    rejected = {r["id"]: r["_reason"] for r in (result.rejected.to_pylist() if result.rejected else [])}
    # flat pictures (one colour) share their hashes whatever the colour: the palette, 1-bit and EXIF ones
    flat = "near_duplicate: of good-palette (cluster of 3, phash/dhash distance 0)"
    assert rejected == {"good-copy": "duplicate: of good-gray", "good-1bit": flat, "good-exif": flat}
    kept = {r["id"]: r for r in result.kept.to_pylist()}
    assert kept["truncated"]["image.phash"] is None and kept["missing"]["dedup.cluster"] == "missing"


def test_exact_only_hashes_nothing() -> None:
    (result,), op = run([batch()], exact_only=True)
    assert "image.phash" not in result.kept.column_names and result.rejected.num_rows == 1
