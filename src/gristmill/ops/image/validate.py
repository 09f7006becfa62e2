"""``image.validate``: decode every image with Pillow; drop the ones that do not decode, with the reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field

from gristmill.images.decode import (DEFAULT_MAX_PIXELS, FORMAT, HEIGHT, IMAGE, MODE, SUPPORTED_MODES, WIDTH,
                                     ImageProblem, decode, encode, normalise_mode, orientation, read_header)
from gristmill.ops.base import Filter, FilterParams
from gristmill.records import Reason, column_list

__all__ = ["ERROR", "ImageValidate"]

ERROR = "image.error"
CHANGED = "image.rewritten"


@dataclass
class _Outcome:
    data: bytes | None  # new bytes when the picture was rewritten
    header: dict[str, Any]
    error: Reason | None
    changed: str | None


class ImageValidate(Filter):
    """Decode every image fully; drop truncated, corrupt, empty, non-image, oversized and unsupported ones.

    Each image (bytes in ``column``) is read as :func:`gristmill.images.decode.decode` does: its header
    first (``missing``, ``zero_size``, ``not_image``, ``corrupt`` when it does not parse), then its pixel
    count against ``max_pixels`` (``decompression_bomb``, checked before a pixel is decoded), its mode
    against ``modes`` (``unsupported_mode``), then Pillow's ``verify`` (PNG checksums) and a full decode
    (``truncated``, ``corrupt``). The reason is e.g. ``truncated: decode: image file is truncated``.

    A decoded image is turned upright by its EXIF orientation tag (``exif``) and converted to
    ``mode`` (``auto``: gray modes to ``L``, every other to ``RGB``, transparency composited over white,
    16-bit and float gray stretched to 8 bits; ``keep``: no conversion). An image that changed is
    re-encoded as PNG (lossless; ``image.format`` becomes ``PNG``) and ``image.rewritten`` says why
    (``exif`` / ``mode P->RGB``); the others keep their bytes. ``image.width`` / ``.height`` / ``.mode`` /
    ``.format`` are rewritten from the decoded image on every row that decodes, and ``image.error``
    holds the reason on the rows that do not (kept, with ``drop: false``).
    """

    name = "image.validate"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"column": "text"}  # the conformance batch is text: all rejected

    class Params(FilterParams):
        column: str = Field(IMAGE, description="Binary column holding the encoded image bytes.")
        mode: Literal["auto", "L", "RGB", "keep"] = Field(
            "auto", description="Convert decoded images to this mode: auto (gray modes to L, others to RGB), L, RGB, "
            "or keep.")
        modes: list[str] = Field(list(SUPPORTED_MODES), min_length=1,
                                 description="Pixel modes accepted as input; others are dropped as unsupported_mode.")
        max_pixels: int | None = Field(DEFAULT_MAX_PIXELS, ge=1, description="Most pixels (width x height) an image may "
                                       "have (Pillow's decompression-bomb limit by default); None: no limit.")
        exif: bool = Field(True, description="Turn images upright by their EXIF orientation tag.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._outcomes: list[_Outcome] = []

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [self.params.column, WIDTH, HEIGHT, MODE, FORMAT, ERROR, CHANGED]

    def score_columns(self) -> list[str]:
        return [WIDTH, HEIGHT]

    def empty_columns(self) -> dict[str, pa.DataType]:
        return {WIDTH: pa.int64(), HEIGHT: pa.int64(), MODE: pa.string(), FORMAT: pa.string(), ERROR: pa.string(),
                CHANGED: pa.string()}

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_outcomes": []}

    def check(self, value: Any) -> _Outcome:
        """What validation makes of one cell: new bytes (if rewritten), header columns, the reason it fails."""
        p = self.params
        try:
            im, header = decode(value, p.max_pixels, tuple(p.modes), exif=False)
        except ImageProblem as exc:
            try:
                cols = read_header(value).columns()
            except ImageProblem:
                cols = {WIDTH: None, HEIGHT: None, MODE: None, FORMAT: None}
            return _Outcome(None, cols, exc.reason, None)
        changes = []
        if p.exif and orientation(im) != 1:
            from PIL import ImageOps

            im = ImageOps.exif_transpose(im)
            changes.append("exif")
        try:
            converted = normalise_mode(im, p.mode)
        except (ValueError, OSError) as exc:
            return _Outcome(None, header.columns(), Reason("unsupported_mode", f"{im.mode}: {exc}"), None)
        if converted.mode != im.mode:
            changes.append(f"mode {im.mode}->{converted.mode}")
        if not changes:
            return _Outcome(None, {WIDTH: im.width, HEIGHT: im.height, MODE: im.mode, FORMAT: header.format}, None,
                            None)
        return _Outcome(encode(converted), {WIDTH: converted.width, HEIGHT: converted.height, MODE: converted.mode,
                                            FORMAT: "PNG"}, None, ", ".join(changes))

    def scores(self, batch: pa.Table) -> dict[str, Sequence[Any] | pa.Array]:
        self._outcomes = [self.check(v) for v in column_list(batch, self.params.column)]
        out: dict[str, Sequence[Any] | pa.Array] = {}
        for col, typ in ((WIDTH, pa.int64()), (HEIGHT, pa.int64()), (MODE, pa.string()), (FORMAT, pa.string())):
            out[col] = pa.array([o.header.get(col) for o in self._outcomes], typ)
        out[ERROR] = pa.array([None if o.error is None else str(o.error) for o in self._outcomes], pa.string())
        out[CHANGED] = pa.array([o.changed for o in self._outcomes], pa.string())
        return out

    def kept_values(self, batch: pa.Table) -> dict[str, pa.Array]:
        if not any(o.data is not None for o in self._outcomes):
            return {}
        column = self.params.column
        old = column_list(batch, column)
        values = [o.data if o.data is not None else old[i] for i, o in enumerate(self._outcomes)]
        return {column: pa.array(values, pa.binary())}

    def reasons(self, batch: pa.Table) -> list[Reason | None]:
        return [o.error for o in self._outcomes]
