"""``image.augment``: seeded copies of images, rotated, cropped, flipped, noised or elastically warped."""

from __future__ import annotations

import hashlib
import math
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from PIL import Image, ImageOps
from pydantic import Field, model_validator

from gristmill.images.decode import (DEFAULT_MAX_PIXELS, FORMAT, HEIGHT, IMAGE, MODE, WIDTH, ImageProblem, decode,
                                     encode, normalise_mode)
from gristmill.ops.augment import AUGMENT_OF
from gristmill.ops.base import Generator, Params
from gristmill.records import ID, Reason

__all__ = ["AUGMENT_OF", "TRANSFORMS", "ImageAugment"]

TRANSFORMS_COLUMN = "augment.transforms"
TRANSFORMS = ("rotate", "crop", "flip", "noise", "elastic")
# columns measured on the original picture: null on a copy (its own pixels differ)
STALE_PREFIXES = ("image.quality.", "image.phash", "image.dhash", "image.error", "image.rewritten",
                  "image.resized_from", "label_issues.", "dedup.cluster")


def _seed(*parts: Any) -> int:
    """A 63-bit seed that depends only on ``parts`` (not on Python's hash randomisation)."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


class ImageAugment(Generator):
    """Add ``copies`` transformed copies of every image: rotation, crop, flip, noise, elastic distortion.

    The transforms are torchvision's ``RandomRotation``, ``RandomResizedCrop``, ``RandomHorizontalFlip``,
    ``GaussianNoise`` and ``ElasticTransform`` (transforms v2), with their parameters and sampling, done
    with Pillow and numpy: PyPI's torchvision wheels are CUDA builds that do not load beside the CPU torch
    this project installs (and, installed, break ``transformers``' pipelines), and these five need no model.
    Each copy applies every transform in ``transforms``, in that order, with parameters drawn from a numpy
    generator seeded by ``seed``, the row id and the copy number, so a row's copies do not depend on its
    batch, the worker or how often the step ran (no global random state is touched):

    * ``rotate``: by an angle uniform in +-``rotate_degrees``, counter-clockwise for positive angles,
      bilinear, the uncovered corners ``fill``;
    * ``crop``: a random box of ``crop_scale`` to 1 of the area and aspect ratio 3/4 to 4/3 (log-uniform,
      as ``RandomResizedCrop`` samples it), resized back to the original size (bilinear, antialiased);
    * ``flip``: mirrored left-right with probability ``flip_p`` (off by default: a mirrored digit is
      another glyph);
    * ``noise``: Gaussian noise of standard deviation ``noise_sigma`` on the 0..1 scale, clipped;
    * ``elastic``: ``ElasticTransform``'s field: uniform -1..1 per pixel and axis, Gaussian-blurred with
      ``elastic_sigma`` (kernel ``8 sigma + 1``, capped at the image size), scaled by ``elastic_alpha`` / size
      in the grid's -1..1 units, i.e. ``alpha / 2`` pixels per unit of the blurred field; sampled bilinearly.

    A copy is the original row with the image re-encoded as PNG, the header columns set, the id
    ``<id>~aug<k>``, ``augment.of`` = the original's id and ``augment.transforms`` naming what was applied
    with its parameters (``rotate(-7.3); crop(1,0,7,6)``); columns measured on the original's pixels
    (``image.quality.*``, hashes, ``dedup.cluster``, ``label_issues.*``) are null on copies. The
    originals stay (``keep_original``) with ``augment.of`` null. A row whose image does not decode gets no
    copy and is rejected as ``undecodable: <why>``. Palette and alpha images are copied in ``L`` or ``RGB``.
    """

    name = "image.augment"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"column": "text"}  # the conformance batch is text: all undecodable

    class Params(Params):
        column: str = Field(IMAGE, description="Binary column holding the encoded image bytes.")
        copies: int = Field(1, ge=1, le=100, description="Transformed copies per image.")
        transforms: list[Literal["rotate", "crop", "flip", "noise", "elastic"]] = Field(
            ["rotate", "crop", "noise"], min_length=1, description="Transforms each copy applies, in this order.")
        rotate_degrees: float = Field(15.0, ge=0, le=180, description="Largest rotation either way, in degrees.")
        crop_scale: float = Field(0.8, gt=0, le=1, description="Smallest share of the area a crop keeps.")
        flip_p: float = Field(0.5, ge=0, le=1, description="Probability that a copy is mirrored (transform flip).")
        noise_sigma: float = Field(0.05, ge=0, le=1, description="Standard deviation of the Gaussian noise (0..1 scale).")
        elastic_alpha: float = Field(50.0, ge=0, description="Magnitude of the elastic displacements "
                                     "(torchvision's ElasticTransform alpha).")
        elastic_sigma: float = Field(5.0, ge=0, description="Smoothness of the elastic displacements (sigma).")
        fill: int = Field(0, ge=0, le=255, description="Gray level of the area a rotation uncovers.")
        seed: int = Field(0, description="Seed of the random choices (combined with each row id and copy number).")
        keep_original: bool = Field(True, description="Output the input rows as well as the copies.")
        max_pixels: int | None = Field(DEFAULT_MAX_PIXELS, ge=1, description="Images above this many pixels get no "
                                       "copy and are rejected (never decoded).")

        @model_validator(mode="after")
        def _unique(self) -> ImageAugment.Params:
            if len(set(self.transforms)) != len(self.transforms):
                raise ValueError(f"transforms repeats a transform: {self.transforms}")
            return self

    def reads(self) -> list[str]:
        return [ID, self.params.column]

    def writes(self) -> list[str]:
        return [AUGMENT_OF, TRANSFORMS_COLUMN]

    def output_schema(self, batch: pa.Table) -> pa.Schema:
        fields = list(batch.schema)
        for name, typ in ((AUGMENT_OF, pa.string()), (TRANSFORMS_COLUMN, pa.string()), (WIDTH, pa.int64()),
                          (HEIGHT, pa.int64()), (MODE, pa.string()), (FORMAT, pa.string())):
            if name not in batch.column_names:
                fields.append(pa.field(name, typ))
        return pa.schema(fields)

    def transform(self, im: Image.Image, rid: str, k: int) -> tuple[Image.Image, str]:
        """Copy ``k`` of picture ``im`` of row ``rid``, and what was done to it."""
        p = self.params
        rng = np.random.default_rng(_seed(p.seed, rid, k))
        if im.mode not in ("L", "RGB"):
            im = normalise_mode(im, "auto")
        w, h = im.size
        fill: Any = p.fill if im.mode == "L" else (p.fill,) * 3
        done = []
        for name in p.transforms:
            u = rng.random(4).tolist()
            if name == "rotate":
                angle = (2 * u[0] - 1) * p.rotate_degrees
                im = im.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=fill)
                done.append(f"rotate({angle:.1f})")
            elif name == "crop":
                top, left, ch, cw = _crop_box(h, w, p.crop_scale, u)
                im = im.resize((w, h), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))
                done.append(f"crop({top},{left},{ch},{cw})")
            elif name == "flip":
                if u[0] < p.flip_p:
                    im = ImageOps.mirror(im)
                    done.append("flip")
            elif name == "noise":
                a = np.asarray(im, np.float64) / 255.0
                a = np.clip(a + rng.normal(0.0, p.noise_sigma, a.shape), 0.0, 1.0)
                im = Image.fromarray(np.rint(a * 255).astype(np.uint8), im.mode)
                done.append(f"noise({p.noise_sigma:g})")
            elif name == "elastic":
                im = _elastic(im, rng, p.elastic_alpha, p.elastic_sigma, p.fill)
                done.append(f"elastic({p.elastic_alpha:g},{p.elastic_sigma:g})")
        return im, "; ".join(done) or "none"

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        p = self.params
        rows: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        stale = [c for c in batch.column_names if c.startswith(STALE_PREFIXES)]
        for row in batch.to_pylist():
            rid = str(row.get(ID))
            try:
                im, _ = decode(row.get(p.column), p.max_pixels)
            except ImageProblem as exc:
                failures.append({**row, "_reason": Reason("undecodable", str(exc.reason))})
                continue
            if p.keep_original:
                rows.append({**row, AUGMENT_OF: row.get(AUGMENT_OF), TRANSFORMS_COLUMN: row.get(TRANSFORMS_COLUMN)})
            for k in range(1, p.copies + 1):
                new, what = self.transform(im, rid, k)
                copy = {**row, **dict.fromkeys(stale), ID: f"{rid}~aug{k}", p.column: encode(new), WIDTH: new.width,
                        HEIGHT: new.height, MODE: new.mode, FORMAT: "PNG", AUGMENT_OF: rid, TRANSFORMS_COLUMN: what}
                rows.append(copy)
        return rows, failures


def _crop_box(h: int, w: int, scale: float, u: list[float]) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a crop of ``scale``..1 of the area, aspect 3/4..4/3 (log-uniform)."""
    area = h * w * (scale + (1 - scale) * u[0])
    ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[1])
    cw = min(w, max(1, round(math.sqrt(area * ratio))))
    ch = min(h, max(1, round(math.sqrt(area / ratio))))
    top = min(h - ch, int(u[2] * (h - ch + 1)))
    left = min(w - cw, int(u[3] * (w - cw + 1)))
    return top, left, ch, cw


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """``a`` (H x W) blurred by a Gaussian of ``sigma`` (kernel ``8 sigma + 1``, odd, capped at the size;
    reflected edges), as torchvision's ``gaussian_blur`` does for the elastic field."""
    k = int(8 * sigma + 1)
    k += 1 - k % 2
    k = min(k, 2 * min(a.shape) - 1)
    if sigma <= 0 or k < 3:
        return a
    x = np.arange(k) - k // 2
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    pad = k // 2
    for axis in (0, 1):
        padded = np.pad(a, [(pad, pad) if i == axis else (0, 0) for i in range(2)], mode="reflect")
        a = sum(kernel[i] * np.take(padded, np.arange(i, i + a.shape[axis]), axis=axis) for i in range(k))
    return a


def _elastic(im: Image.Image, rng: np.random.Generator, alpha: float, sigma: float, fill: int) -> Image.Image:
    """``im`` warped by an ``ElasticTransform`` displacement field, sampled bilinearly (``fill`` outside)."""
    w, h = im.size
    src = np.asarray(im, np.float64)
    if src.ndim == 2:
        src = src[:, :, None]
    dx = _blur(rng.random((h, w)) * 2 - 1, sigma) * alpha / 2.0  # pixels: alpha / w grid units x w / 2
    dy = _blur(rng.random((h, w)) * 2 - 1, sigma) * alpha / 2.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = xx + dx, yy + dy
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[:, :, None], (y - y0)[:, :, None]
    padded = np.pad(src, ((1, 1), (1, 1), (0, 0)), constant_values=fill)

    def at(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return padded[np.clip(r + 1, 0, h + 1), np.clip(c + 1, 0, w + 1)]

    out = (at(y0, x0) * (1 - fx) * (1 - fy) + at(y0, x0 + 1) * fx * (1 - fy) + at(y0 + 1, x0) * (1 - fx) * fy
           + at(y0 + 1, x0 + 1) * fx * fy)
    out = np.rint(np.clip(out, 0, 255)).astype(np.uint8)
    return Image.fromarray(out[:, :, 0] if out.shape[2] == 1 else out, im.mode)
