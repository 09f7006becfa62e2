"""``image.resize``: scale images to a size, or down to a longest side; re-encoded, the header columns rewritten."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pyarrow as pa
from PIL import Image, ImageOps
from pydantic import Field, model_validator

from gristmill.images.decode import (DEFAULT_MAX_PIXELS, FORMAT, HEIGHT, IMAGE, MODE, WIDTH, ImageProblem, decode,
                                     encode, read_header)
from gristmill.ops.base import Mapper, Params
from gristmill.records import column_list, set_column

__all__ = ["ImageResize"]

RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
RESIZED = "image.resized_from"


class ImageResize(Mapper):
    """Resize every image to ``width`` x ``height`` (stretch, pad or crop to fit), or shrink it to ``max_side``.

    With ``width`` and ``height``: ``fit: stretch`` scales to exactly that size (the aspect ratio may
    change), ``pad`` scales to fit inside and pads with ``pad_color`` (centred), ``crop`` scales to cover
    and cuts the centre. With ``max_side``: an image whose longer side is larger is scaled down to it,
    keeping its aspect ratio; smaller images are left as they are (bytes untouched). A resized image is
    re-encoded (``format``: PNG by default, or JPEG at ``quality``) and ``image.width`` / ``.height`` /
    ``.format`` / ``.mode`` rewritten; ``image.resized_from`` holds the size it had (``28x28``), null on
    rows left as they were. A row whose image does not decode passes unchanged (a mapper drops nothing:
    run ``image.validate`` first).
    """

    name = "image.resize"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"column": "text", "width": 16, "height": 16}

    class Params(Params):
        column: str = Field(IMAGE, description="Binary column holding the encoded image bytes.")
        width: int | None = Field(None, ge=1, le=65535, description="Target width (with height).")
        height: int | None = Field(None, ge=1, le=65535, description="Target height (with width).")
        max_side: int | None = Field(None, ge=1, le=65535, description="Shrink images whose longer side exceeds this "
                                     "(instead of width and height).")
        fit: Literal["stretch", "pad", "crop"] = Field("stretch", description="How width x height is reached: "
                                                       "stretch, pad (letterbox) or crop (centre).")
        pad_color: int = Field(0, ge=0, le=255, description="Gray level of the padding (fit: pad).")
        resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = Field(
            "lanczos", description="Resampling filter (nearest keeps hard edges of tiny pictures).")
        format: Literal["png", "jpeg"] = Field("png", description="Encoding of resized images.")
        quality: int = Field(95, ge=1, le=100, description="JPEG quality (format: jpeg).")
        max_pixels: int | None = Field(DEFAULT_MAX_PIXELS, ge=1, description="Images above this many pixels pass "
                                       "unchanged (never decoded).")

        @model_validator(mode="after")
        def _one_target(self) -> ImageResize.Params:
            both = self.width is not None and self.height is not None
            if (self.width is None) != (self.height is None):
                raise ValueError("width and height go together")
            if both == (self.max_side is not None):
                raise ValueError("set either width and height, or max_side")
            return self

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [self.params.column, WIDTH, HEIGHT, MODE, FORMAT, RESIZED]

    def resize(self, im: Image.Image) -> Image.Image | None:
        """The resized picture, or None when it stays as it is."""
        p = self.params
        method = RESAMPLE[p.resample]
        if p.max_side is not None:
            if max(im.size) <= p.max_side:
                return None
            scale = p.max_side / max(im.size)
            return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), method)
        size = (int(p.width), int(p.height))  # type: ignore[arg-type]
        if im.size == size:
            return None
        if p.fit == "crop":
            return ImageOps.fit(im, size, method)
        if p.fit == "pad":
            fill: Any = p.pad_color if im.mode in ("L", "1", "I", "F", "P") else (p.pad_color,) * len(im.getbands())
            return ImageOps.pad(im, size, method, color=fill)
        return im.resize(size, method)

    def map(self, batch: pa.Table) -> pa.Table:
        p = self.params
        values = column_list(batch, p.column)
        if not values:
            return batch
        out, resized_from = list(values), [None] * len(values)
        header = {c: column_list(batch, c) for c in (WIDTH, HEIGHT, MODE, FORMAT)}
        changed = False  # the image column is rewritten only when an image changed (its type stays otherwise)
        for i, v in enumerate(values):
            try:
                im, _ = decode(v, p.max_pixels)
            except ImageProblem:
                continue
            new = self.resize(im)
            if new is None:
                continue
            out[i] = encode(new, p.format.upper(), p.quality)
            resized_from[i] = f"{im.width}x{im.height}"  # type: ignore[call-overload]
            for col, value in read_header(out[i]).columns().items():
                header[col][i] = value
            changed = True
        batch = set_column(batch, RESIZED, pa.array(resized_from, pa.string()))
        if changed:
            batch = set_column(batch, p.column, pa.array(out, pa.binary()))
        for col, typ in ((WIDTH, pa.int64()), (HEIGHT, pa.int64()), (MODE, pa.string()), (FORMAT, pa.string())):
            batch = set_column(batch, col, pa.array(header[col], typ))
        return batch
