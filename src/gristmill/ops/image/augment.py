"""``image.augment``: seeded copies of images, rotated, cropped, flipped, noised or elastically warped (torchvision v2)."""

from __future__ import annotations

import hashlib
import math
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from PIL import Image
from pydantic import Field, model_validator

from gristmill.images.decode import (DEFAULT_MAX_PIXELS, FORMAT, HEIGHT, IMAGE, MODE, WIDTH, ImageProblem, decode,
                                     encode, normalise_mode)
from gristmill.ops.augment import AUGMENT_OF
from gristmill.ops.base import Context, Generator, Params
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
    """Add ``copies`` transformed copies of every image: rotation, crop, flip, noise, elastic (torchvision v2).

    Each copy applies every transform in ``transforms``, in that order, with parameters drawn from a
    ``torch.Generator`` seeded by ``seed``, the row id and the copy number, so a row's copies do not
    depend on its batch, the worker or how often the step ran (the global torch random state is not
    touched):

    * ``rotate``: by an angle uniform in +-``rotate_degrees`` (``F.rotate``, bilinear, corners ``fill``);
    * ``crop``: a random crop of ``crop_scale`` to 1 of the area and aspect ratio 3/4 to 4/3, resized back
      to the original size (``F.resized_crop``, as ``RandomResizedCrop`` samples it);
    * ``flip``: mirrored left-right with probability ``flip_p`` (``F.horizontal_flip``; off by default:
      a mirrored digit is another glyph);
    * ``noise``: Gaussian noise of standard deviation ``noise_sigma`` on the 0..1 scale, clipped;
    * ``elastic``: ``F.elastic`` with a displacement field drawn as ``ElasticTransform`` draws it
      (``elastic_alpha``, ``elastic_sigma``; the blur kernel is capped at the image size).

    A copy is the original row with the image re-encoded as PNG, the header columns set, the id
    ``<id>~aug<k>``, ``augment.of`` = the original's id and ``augment.transforms`` naming what was applied
    with its parameters (``rotate(-7.3); crop(1,0,7,6)``); columns measured on the original's pixels
    (``image.quality.*``, hashes, ``dedup.cluster``, ``label_issues.*``) are null on copies. The
    originals stay (``keep_original``) with ``augment.of`` null. A row whose image does not decode gets no
    copy and is rejected as ``undecodable: <why>``. Palette and alpha images are copied in ``L`` or ``RGB``.
    """

    name = "image.augment"
    version = "1"
    requires = ("torch", "torchvision")
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

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._F: Any = None

    def reads(self) -> list[str]:
        return [ID, self.params.column]

    def writes(self) -> list[str]:
        return [AUGMENT_OF, TRANSFORMS_COLUMN]

    def setup(self, ctx: Context) -> None:
        from gristmill.images.tv import transforms_v2

        self._F = transforms_v2()

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_F": None}

    def output_schema(self, batch: pa.Table) -> pa.Schema:
        fields = list(batch.schema)
        for name, typ in ((AUGMENT_OF, pa.string()), (TRANSFORMS_COLUMN, pa.string()), (WIDTH, pa.int64()),
                          (HEIGHT, pa.int64()), (MODE, pa.string()), (FORMAT, pa.string())):
            if name not in batch.column_names:
                fields.append(pa.field(name, typ))
        return pa.schema(fields)

    def transform(self, im: Image.Image, rid: str, k: int) -> tuple[Image.Image, str]:
        """Copy ``k`` of picture ``im`` of row ``rid``, and what was done to it."""
        import torch

        self.ensure_setup()
        F, p = self._F, self.params
        g = torch.Generator().manual_seed(_seed(p.seed, rid, k))
        if im.mode not in ("L", "RGB"):
            im = normalise_mode(im, "auto")
        x = F.to_dtype(F.to_image(im), torch.float32, scale=True)
        _, h, w = x.shape
        done = []
        for name in p.transforms:
            u = torch.rand(4, generator=g).tolist()
            if name == "rotate":
                angle = (2 * u[0] - 1) * p.rotate_degrees
                x = F.rotate(x, angle, interpolation=F.InterpolationMode.BILINEAR, fill=[p.fill / 255.0])
                done.append(f"rotate({angle:.1f})")
            elif name == "crop":
                top, left, ch, cw = _crop_box(h, w, p.crop_scale, u)
                x = F.resized_crop(x, top, left, ch, cw, [h, w], antialias=True)
                done.append(f"crop({top},{left},{ch},{cw})")
            elif name == "flip":
                if u[0] < p.flip_p:
                    x = F.horizontal_flip(x)
                    done.append("flip")
            elif name == "noise":
                x = (x + torch.randn(x.shape, generator=g) * p.noise_sigma).clamp(0.0, 1.0)
                done.append(f"noise({p.noise_sigma:g})")
            elif name == "elastic":
                x = F.elastic(x, _displacement(F, g, h, w, p.elastic_alpha, p.elastic_sigma), fill=[p.fill / 255.0])
                done.append(f"elastic({p.elastic_alpha:g},{p.elastic_sigma:g})")
        arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        out = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else np.ascontiguousarray(arr), im.mode)
        return out, "; ".join(done) or "none"

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


def _displacement(F: Any, g: Any, h: int, w: int, alpha: float, sigma: float) -> Any:
    """An ``ElasticTransform`` displacement field (1 x H x W x 2) drawn from generator ``g``."""
    import torch

    fields = []
    for size in (w, h):
        d = torch.rand(1, 1, h, w, generator=g) * 2 - 1
        if sigma > 0:
            k = int(8 * sigma + 1)
            k += 1 - k % 2
            k = min(k, 2 * min(h, w) - 1)  # reflect padding needs a kernel within the picture
            if k >= 3:
                d = F.gaussian_blur(d, [k, k], [sigma, sigma])
        fields.append(d * alpha / size)
    return torch.concat(fields, 1).permute([0, 2, 3, 1])
