"""image.quality (score-then-decide on pixel statistics) and image.resize."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from gristmill import registry
from gristmill.images import measure
from gristmill.records import rule_of

from .pictures import batch, encode, photo, table_of


def quality(table, **params: object):
    op = registry.create("image.quality", params)
    op.ensure_setup()
    return op.process(table)


def test_measures_on_known_pictures() -> None:
    flat = np.full((10, 10), 128.0)
    assert measure.laplacian_variance(flat) == 0.0 and measure.contrast(flat) == 0.0 and measure.entropy(flat) == 0.0
    assert measure.brightness(flat) == pytest.approx(128 / 255)
    halves = np.zeros((10, 10))
    halves[:, 5:] = 255
    assert measure.entropy(halves) == pytest.approx(1.0) and measure.contrast(halves) == pytest.approx(0.5)
    assert measure.laplacian_variance(np.zeros((2, 5))) is None
    sharp = np.asarray(photo(1, (64, 64)).convert("L"), float)
    blurred = np.asarray(photo(1, (64, 64)).convert("L").filter(ImageFilter.GaussianBlur(3)), float)
    assert measure.laplacian_variance(blurred) < measure.laplacian_variance(sharp) / 4


def test_rules_in_order_and_undecodable_rows() -> None:
    images = [encode(photo(0)), encode(photo(0).filter(ImageFilter.GaussianBlur(4))), encode(Image.new("L", (40, 40))),
              encode(Image.new("L", (40, 40), 255)), encode(photo(1, (100, 20))), encode(photo(2, (12, 12))),
              encode(Image.new("L", (40, 40), 128)), b"not an image"]
    result = quality(table_of(images), min_side=16)
    assert result.kept.column("id").to_pylist() == ["r0", "r1"]
    blur = quality(table_of(images[:2]), min_blur=50.0)
    assert blur.kept.column("id").to_pylist() == ["r0"] and rule_of(blur.rejected.column("_reason")[0].as_py()) == \
        "min_blur"
    reasons = {r["id"]: r["_reason"] for r in result.rejected.to_pylist()}
    assert reasons["r2"] == "min_brightness: 0 < 0.01" and reasons["r3"] == "max_brightness: 1 > 0.99"
    assert reasons["r4"] == "max_aspect: 5 > 4" and reasons["r5"] == "min_side: 12 < 16"
    assert rule_of(reasons["r6"]) == "min_contrast"
    assert reasons["r7"].startswith("undecodable: not_image")
    scores = result.rejected.to_pylist()[-1]
    assert scores["image.quality.blur"] is None  # an undecodable row has null scores
    assert [r.name for r in registry.create("image.quality").rules()] == [
        "min_side", "max_aspect", "min_blur", "min_brightness", "max_brightness", "min_contrast", "min_entropy"]


def test_drop_false_writes_scores_on_every_row() -> None:
    result = quality(batch(), drop=False)
    assert result.rejected is None and result.kept.num_rows == batch().num_rows
    entropy = dict(zip(result.kept.column("id").to_pylist(), result.kept.column("image.quality.entropy").to_pylist()))
    assert entropy["good-jpeg"] > 3 and entropy["good-1bit"] == 0.0 and entropy["truncated"] is None


def resize(table, **params: object):
    op = registry.create("image.resize", params)
    op.ensure_setup()
    return op.process(table).kept


def test_resize_to_a_size_and_down_to_a_side() -> None:
    table = table_of([encode(photo(0, (48, 32))), encode(photo(1, (8, 8))), b"junk"])
    out = resize(table, width=16, height=16, fit="pad")
    rows = out.to_pylist()
    assert [(r["image.width"], r["image.height"], r["image.resized_from"]) for r in rows] == [
        (16, 16, "48x32"), (16, 16, "8x8"), (None, None, None)]
    assert Image.open(io.BytesIO(rows[0]["image"])).size == (16, 16) and rows[2]["image"] == b"junk"
    padded = np.asarray(Image.open(io.BytesIO(rows[0]["image"])))
    assert (padded[0] == 0).all()  # the letterbox rows are the pad colour
    out = resize(table, max_side=24, format="jpeg", quality=80).to_pylist()
    assert (out[0]["image.width"], out[0]["image.height"], out[0]["image.format"]) == (24, 16, "JPEG")
    assert out[1]["image.resized_from"] is None and out[1]["image"] == table.column("image")[1].as_py()
    crop = resize(table, width=10, height=20, fit="crop").to_pylist()
    assert (crop[0]["image.width"], crop[0]["image.height"]) == (10, 20)


def test_resize_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="width and height go together"):
        registry.create("image.resize", {"width": 3})
    with pytest.raises(ValueError, match="either width and height, or max_side"):
        registry.create("image.resize", {"width": 3, "height": 3, "max_side": 5})
