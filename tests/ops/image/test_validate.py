"""image.validate: every broken kind dropped with its rule; EXIF orientation and modes normalised."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from gristmill import registry
from gristmill.records import rule_of

from .pictures import batch, encode, photo, tricky


def run(**params: object):
    op = registry.create("image.validate", params)
    op.ensure_setup()
    return op.process(batch())


def test_each_broken_image_is_dropped_by_its_rule() -> None:
    result = run()
    rejected = {r["id"]: rule_of(r["_reason"]) for r in result.rejected.to_pylist()}
    broken = {rid for rid, _, _ in tricky() if not rid.startswith("good")}
    assert rejected == {rid: rid for rid in broken}
    assert sorted(result.kept.column("id").to_pylist()) == sorted(rid for rid, _, _ in tricky()
                                                                  if rid.startswith("good"))
    reasons = {r["id"]: r["_reason"] for r in result.rejected.to_pylist()}
    assert reasons["decompression_bomb"] == "decompression_bomb: 40000x40000 = 1,600,000,000 pixels > 89,478,485"
    assert reasons["unsupported_mode"].startswith("unsupported_mode: LAB")


def test_exif_orientation_and_modes_are_normalised() -> None:
    kept = {r["id"]: r for r in run().kept.to_pylist()}
    exif = kept["good-exif"]
    assert (exif["image.width"], exif["image.height"], exif["image.format"]) == (4, 6, "PNG")
    assert exif["image.rewritten"] == "exif"
    assert Image.open(io.BytesIO(exif["image"])).size == (4, 6)
    assert kept["good-palette"]["image.mode"] == "RGB" and kept["good-palette"]["image.rewritten"] == "mode P->RGB"
    red = Image.open(io.BytesIO(kept["good-palette"]["image"])).getpixel((0, 0))
    assert red == (255, 0, 0)
    assert kept["good-16bit"]["image.mode"] == "L"
    assert kept["good-1bit"]["image.mode"] == "L"
    gray = kept["good-gray"]
    assert gray["image.rewritten"] is None and gray["image"] == dict((r, d) for r, d, _ in tricky())["good-gray"]
    assert kept["good-jpeg"]["image.format"] == "JPEG" and kept["good-jpeg"]["image.mode"] == "RGB"


def test_keep_mode_rgb_mode_and_no_exif() -> None:
    kept = {r["id"]: r for r in run(mode="RGB", exif=False).kept.to_pylist()}
    assert {r["image.mode"] for r in kept.values()} == {"RGB"}
    assert (kept["good-exif"]["image.width"], kept["good-exif"]["image.height"]) == (6, 4)
    kept = {r["id"]: r for r in run(mode="keep").kept.to_pylist()}
    assert kept["good-palette"]["image.mode"] == "P" and kept["good-16bit"]["image.mode"] == "I;16"


def test_limits_are_parameters() -> None:
    result = run(max_pixels=None, modes=["L", "RGB"])
    rules = {r["id"]: rule_of(r["_reason"]) for r in result.rejected.to_pylist()}
    assert rules["good-palette"] == rules["good-16bit"] == rules["good-1bit"] == "unsupported_mode"
    assert rules["decompression_bomb"] == "unsupported_mode"  # no pixel limit: its mode (1) refuses it, undecoded


def test_drop_false_keeps_every_row_with_its_error() -> None:
    result = run(drop=False)
    assert result.rejected is None and result.kept.num_rows == len(tricky())
    errors = dict(zip(result.kept.column("id").to_pylist(), result.kept.column("image.error").to_pylist()))
    assert errors["good-gray"] is None and errors["truncated"].startswith("truncated")


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_a_jpeg_cut_anywhere_is_truncated(cut: float) -> None:
    data = encode(photo(7, (64, 64)), "JPEG")
    op = registry.create("image.validate")
    assert rule_of(str(op.check(data[: int(len(data) * cut)]).error)) in ("truncated", "corrupt")
    assert op.check(data).error is None
