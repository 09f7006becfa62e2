"""image.augment: seeded copies, provenance columns, per-row determinism."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from gristmill import registry

from .pictures import batch, encode, photo, table_of


def augment(table, **params: object):
    op = registry.create("image.augment", params)
    op.ensure_setup()
    return op.process(table)


def test_copies_carry_provenance_and_depend_only_on_seed_and_id() -> None:
    table = table_of([encode(photo(i, (20, 16))) for i in range(3)], labels=["x", "y", "z"])
    table = table.append_column("image.quality.blur", [[1.0, 2.0, 3.0]])
    result = augment(table, copies=2, transforms=["rotate", "crop", "flip", "noise", "elastic"], seed=3,
                     elastic_alpha=5.0, elastic_sigma=1.0)
    rows = result.kept.to_pylist()
    assert [r["id"] for r in rows] == ["r0", "r0~aug1", "r0~aug2", "r1", "r1~aug1", "r1~aug2", "r2", "r2~aug1",
                                       "r2~aug2"]
    copy = rows[1]
    assert copy["augment.of"] == "r0" and copy["label"] == "x" and copy["image.quality.blur"] is None
    assert copy["augment.transforms"].startswith("rotate(") and "elastic(5,1)" in copy["augment.transforms"]
    assert (copy["image.width"], copy["image.height"], copy["image.format"]) == (20, 16, "PNG")
    assert Image.open(io.BytesIO(copy["image"])).size == (20, 16)
    assert rows[0]["augment.of"] is None and rows[0]["image"] == table.column("image")[0].as_py()
    assert copy["image"] != rows[2]["image"]  # two copies differ
    alone = augment(table.slice(1, 1), copies=2, transforms=["rotate", "crop", "flip", "noise", "elastic"], seed=3,
                    elastic_alpha=5.0, elastic_sigma=1.0).kept.to_pylist()
    assert [r["image"] for r in alone] == [r["image"] for r in rows[3:6]]  # the batch does not matter
    other = augment(table, copies=2, seed=4).kept.to_pylist()
    assert other[1]["image"] != copy["image"]


def test_the_global_random_state_is_untouched() -> None:
    np.random.seed(11)
    expected = np.random.random(3)
    np.random.seed(11)
    augment(table_of([encode(photo(0))]), copies=3, transforms=["rotate", "crop", "flip", "noise", "elastic"])
    assert np.array_equal(np.random.random(3), expected)


def test_elastic_moves_pixels_by_about_alpha_over_two() -> None:
    im = Image.fromarray(np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1)), "L")
    small = augment(table_of([encode(im)]), transforms=["elastic"], elastic_alpha=1.0, elastic_sigma=2.0,
                    keep_original=False).kept.to_pylist()[0]
    large = augment(table_of([encode(im)]), transforms=["elastic"], elastic_alpha=30.0, elastic_sigma=2.0,
                    keep_original=False).kept.to_pylist()[0]
    moved = [np.abs(np.asarray(Image.open(io.BytesIO(r["image"])), float) - np.asarray(im, float)).mean()
             for r in (small, large)]
    assert moved[0] < 4 < moved[1]


def test_rotation_moves_pixels_and_noise_only_noise() -> None:
    im = Image.fromarray(np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1)), "L")
    rows = augment(table_of([encode(im)]), transforms=["noise"], noise_sigma=0.02, keep_original=False).kept.to_pylist()
    noisy = np.asarray(Image.open(io.BytesIO(rows[0]["image"])), float)
    assert 0 < np.abs(noisy - np.asarray(im, float)).mean() < 12
    rows = augment(table_of([encode(im)]), transforms=["rotate"], rotate_degrees=90).kept.to_pylist()
    assert rows[1]["augment.transforms"].startswith("rotate(")


def test_undecodable_rows_are_rejected_and_modes_kept() -> None:
    result = augment(batch())
    rejected = {r["id"] for r in result.rejected.to_pylist()}
    assert {"missing", "zero_size", "not_image", "truncated", "corrupt", "decompression_bomb"} <= rejected
    modes = {r["id"]: r["image.mode"] for r in result.kept.to_pylist() if r["augment.of"]}
    assert modes["good-gray~aug1"] == "L" and modes["good-jpeg~aug1"] == "RGB" and modes["good-palette~aug1"] == "RGB"
