"""``image.quality``: score resolution, aspect ratio, sharpness, brightness, contrast and entropy; drop by thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.images import measure
from gristmill.images.decode import DEFAULT_MAX_PIXELS, IMAGE, ImageProblem, decode, gray
from gristmill.ops.base import Filter, FilterParams
from gristmill.ops.text.scoring import Rule
from gristmill.records import Reason, column_list

__all__ = ["ImageQuality", "NS"]

NS = "image.quality."
SCORES = ("min_side", "aspect", "blur", "brightness", "contrast", "entropy")


class ImageQuality(Filter):
    """Score every image's resolution, aspect ratio, blur, brightness, contrast and entropy; drop by thresholds.

    Scores (``image.quality.*``, on every row; see :mod:`gristmill.images.measure`):

    * ``min_side``: the shorter side in pixels; drops ``min_side: 6 < 8``;
    * ``aspect``: the longer side over the shorter (1 for a square); drops ``max_aspect: 5.2 > 4``;
    * ``blur``: the variance of the Laplacian of the gray picture (low: blurred or flat); drops
      ``min_blur: 3.1 < 50``. Its scale depends on the data (size, content), so it has no default bound;
      read the histogram in the report first;
    * ``brightness``: mean gray level / 255; drops ``min_brightness`` / ``max_brightness`` (nearly black
      or white pictures);
    * ``contrast``: standard deviation of the gray levels / 255; drops ``min_contrast`` (flat pictures);
    * ``entropy``: bits of the gray-level histogram (0 to 8); drops ``min_entropy``.

    Rules are checked in that order, a bound left at None is not checked, and an image that does not
    decode is dropped as ``undecodable: <why>`` (run ``image.validate`` first to see why in detail)
    with null scores. ``drop: false`` only writes the scores, and the report shows each score's
    histogram with its thresholds and what other thresholds would keep.
    """

    name = "image.quality"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"column": "text"}  # the conformance batch is text: undecodable

    class Params(FilterParams):
        column: str = Field(IMAGE, description="Binary column holding the encoded image bytes.")
        min_side: int | None = Field(16, ge=1, description="Fewest pixels on the shorter side (None: no bound).")
        max_aspect: float | None = Field(4.0, ge=1.0, description="Largest longer-over-shorter side ratio (None: no bound).")
        min_blur: float | None = Field(None, ge=0.0, description="Smallest variance of the Laplacian (None: no bound).")
        min_brightness: float | None = Field(0.01, ge=0.0, le=1.0, description="Smallest mean gray level / 255.")
        max_brightness: float | None = Field(0.99, ge=0.0, le=1.0, description="Largest mean gray level / 255.")
        min_contrast: float | None = Field(0.01, ge=0.0, le=1.0, description="Smallest standard deviation of the gray "
                                           "levels / 255 (None: no bound).")
        min_entropy: float | None = Field(None, ge=0.0, le=8.0, description="Fewest bits of gray-level entropy (None: "
                                          "no bound).")
        max_pixels: int | None = Field(DEFAULT_MAX_PIXELS, ge=1, description="Images above this many pixels are "
                                       "dropped as undecodable (never decoded).")

        @model_validator(mode="after")
        def _ordered(self) -> ImageQuality.Params:
            lo, hi = self.min_brightness, self.max_brightness
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"min_brightness ({lo}) must not exceed max_brightness ({hi})")
            return self

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._errors: list[Reason | None] = []

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [NS + s for s in SCORES]

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_errors": []}

    def rules(self) -> list[Rule]:
        p = self.params
        return [Rule("min_side", NS + "min_side", min=p.min_side), Rule("max_aspect", NS + "aspect", max=p.max_aspect),
                Rule("min_blur", NS + "blur", min=p.min_blur),
                Rule("min_brightness", NS + "brightness", min=p.min_brightness),
                Rule("max_brightness", NS + "brightness", max=p.max_brightness),
                Rule("min_contrast", NS + "contrast", min=p.min_contrast),
                Rule("min_entropy", NS + "entropy", min=p.min_entropy)]

    def measure(self, value: Any) -> tuple[dict[str, float | None], Reason | None]:
        """The scores of one image, or null scores and why it does not decode."""
        try:
            im, _ = decode(value, self.params.max_pixels)
        except ImageProblem as exc:
            return dict.fromkeys(SCORES), Reason("undecodable", str(exc.reason))
        g = gray(im)
        w, h = im.size
        return {"min_side": float(min(w, h)), "aspect": max(w, h) / min(w, h), "blur": measure.laplacian_variance(g),
                "brightness": measure.brightness(g), "contrast": measure.contrast(g),
                "entropy": measure.entropy(g)}, None

    def scores(self, batch: pa.Table) -> dict[str, Sequence[Any] | pa.Array]:
        results = [self.measure(v) for v in column_list(batch, self.params.column)]
        self._errors = [r[1] for r in results]
        return {NS + s: pa.array([r[0][s] for r in results], pa.float64()) for s in SCORES}

    def reasons(self, batch: pa.Table) -> list[Reason | None]:
        ruled = super().reasons(batch)
        return [err or why for err, why in zip(self._errors, ruled)]
