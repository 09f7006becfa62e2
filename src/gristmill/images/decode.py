"""Decoding image bytes with Pillow, each failure named by a rule.

An image record holds the encoded file bytes (``image``) and what its header says (``image.width``,
``image.height``, ``image.mode``, ``image.format``; see :mod:`gristmill.io.images`). This module turns
such bytes into a header (:func:`read_header`, which decodes no pixels) or a fully decoded picture
(:func:`decode`), and raises :class:`ImageProblem` carrying a :class:`~gristmill.records.Reason` when
it cannot:

* ``missing``: the value is null;
* ``zero_size``: empty bytes, or a header of 0 pixels in width or height;
* ``not_image``: bytes Pillow recognises as no image format (text, a zip, ...);
* ``decompression_bomb``: more pixels than ``max_pixels`` (Pillow's limit by default, 89,478,485),
  checked from the header before a pixel is decoded;
* ``truncated``: the file ends before its pixel data does;
* ``corrupt``: a header or pixel data that does not decode (bad chunk checksums, broken streams);
* ``unsupported_mode``: a pixel mode outside :data:`SUPPORTED_MODES` (``LAB``, ``HSV``, ...).

Pillow's own pixel limit is lifted only while a header is read (:func:`no_pixel_limit`), so huge
images are measured, never decoded.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gristmill.records import Reason

__all__ = ["FORMAT", "HEADER_COLUMNS", "HEIGHT", "IMAGE", "LABEL", "MODE", "SUPPORTED_MODES", "WIDTH", "Header",
           "ImageProblem", "as_bytes", "decode", "encode", "gray", "normalise_mode", "no_pixel_limit", "read_header"]

IMAGE = "image"
WIDTH = "image.width"
HEIGHT = "image.height"
MODE = "image.mode"
FORMAT = "image.format"
LABEL = "label"
HEADER_COLUMNS = (WIDTH, HEIGHT, MODE, FORMAT)

SUPPORTED_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "I;16", "I;16L",
                   "I;16B", "I;16N", "F")
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS
TargetMode = Literal["auto", "L", "RGB", "keep"]

_LIMIT_LOCK = threading.Lock()


class ImageProblem(ValueError):
    """Bytes that are no usable image; ``reason`` names the rule and the detail."""

    def __init__(self, rule: str, detail: str = "") -> None:
        self.reason = Reason(rule, detail)
        super().__init__(str(self.reason))


@dataclass(frozen=True)
class Header:
    """What an image's header says, read without decoding pixels."""

    width: int
    height: int
    mode: str
    format: str | None

    def columns(self) -> dict[str, Any]:
        """The record's header columns (``image.width`` ...)."""
        return {WIDTH: self.width, HEIGHT: self.height, MODE: self.mode, FORMAT: self.format}


@contextmanager
def no_pixel_limit() -> Iterator[None]:
    """Lift Pillow's decompression-bomb limit while a header is read (the caller checks the size itself)."""
    with _LIMIT_LOCK:
        before = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = before


def as_bytes(value: Any) -> bytes | None:
    """The encoded bytes a cell holds: bytes as they are, a Hugging Face image struct's ``bytes``,
    a string's UTF-8 (a text column is no image, and decoding says so); None for null."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return as_bytes(value.get("bytes"))
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    raise ImageProblem("not_image", f"a {type(value).__name__} value, not image bytes")


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageProblem("not_image", f"no image format recognises these {len(data):,} bytes "
                           f"(starting {data[:8]!r})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise ImageProblem("corrupt", f"header: {type(exc).__name__}: {exc}") from None


def read_header(value: Any) -> Header:
    """Width, height, mode and format from the header alone (no pixels decoded, no size limit)."""
    data = as_bytes(value)
    if data is None:
        raise ImageProblem("missing", "null")
    if not data:
        raise ImageProblem("zero_size", "empty file")
    with no_pixel_limit():
        im = _open(data)
        w, h = im.size
    if w <= 0 or h <= 0:
        raise ImageProblem("zero_size", f"{w}x{h} pixels")
    return Header(w, h, im.mode, im.format)


def _classify(exc: BaseException, stage: str) -> ImageProblem:
    text = str(exc)
    low = text.lower()
    if isinstance(exc, EOFError) or "truncat" in low or "broken data stream" in low or "premature end" in low:
        return ImageProblem("truncated", f"{stage}: {text or type(exc).__name__}")
    return ImageProblem("corrupt", f"{stage}: {type(exc).__name__}: {text}")


def decode(value: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS, modes: tuple[str, ...] = SUPPORTED_MODES,
           exif: bool = True) -> tuple[Image.Image, Header]:
    """The fully decoded picture (first frame) and its header; EXIF orientation applied when ``exif``.

    Checks, in order: missing, zero size, not an image, pixels over ``max_pixels`` (None: no limit),
    a mode outside ``modes``, then verifies and decodes every pixel (truncated or corrupt data).
    """
    header = read_header(value)
    data = as_bytes(value)
    assert data is not None
    pixels = header.width * header.height
    if max_pixels is not None and pixels > max_pixels:
        raise ImageProblem("decompression_bomb", f"{header.width}x{header.height} = {pixels:,} pixels > {max_pixels:,}")
    if header.mode not in modes:
        raise ImageProblem("unsupported_mode", f"{header.mode} (supported: {', '.join(modes)})")
    with no_pixel_limit():
        try:
            _open(data).verify()  # chunk checksums and structure (PNG CRCs), without decoding
        except ImageProblem:
            raise
        except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise many types
            raise _classify(exc, "verify") from None
        im = _open(data)
        try:
            im.load()
        except Exception as exc:  # noqa: BLE001
            raise _classify(exc, "decode") from None
    if exif:
        try:
            im = ImageOps.exif_transpose(im)
        except Exception as exc:  # noqa: BLE001 - a malformed EXIF block
            raise ImageProblem("corrupt", f"EXIF: {type(exc).__name__}: {exc}") from None
    return im, header


def orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1: upright, as stored) of an opened image."""
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001
        return 1


def _rescale_to_l(im: Image.Image) -> Image.Image:
    """A 16/32-bit integer or float image as 8-bit gray: ``I;16*`` divided by 257, ``I`` and ``F``
    stretched from their own minimum and maximum (a constant image becomes black)."""
    arr = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16"):
        out = arr / 257.0
    else:
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        out = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(np.nan_to_num(out)), 0, 255).astype(np.uint8), "L")


def normalise_mode(im: Image.Image, target: TargetMode = "auto",
                   background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """``im`` in the ``target`` mode: ``auto`` makes gray modes ``L`` and the others ``RGB``; ``keep``
    changes nothing. Transparency is composited over ``background``; palettes are expanded."""
    if target == "keep":
        return im
    if target == "auto":
        target = "L" if im.mode in GRAY_MODES or (im.mode == "P" and _gray_palette(im)) else "RGB"
    if im.mode == target:
        return im
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _rescale_to_l(im)
        return im if target == "L" else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        im = Image.alpha_composite(canvas, rgba).convert("RGB")
    return im.convert(target)


def _gray_palette(im: Image.Image) -> bool:
    pal = im.getpalette() or []
    triples = [pal[i:i + 3] for i in range(0, len(pal) - 2, 3)]
    return bool(triples) and all(r == g == b for r, g, b in triples) and "transparency" not in im.info


def encode(im: Image.Image, fmt: str = "PNG", quality: int = 95) -> bytes:
    """``im`` encoded as ``fmt`` (PNG lossless by default; JPEG at ``quality``, in RGB or L)."""
    buf = io.BytesIO()
    if fmt.upper() in ("JPEG", "JPG"):
        if im.mode not in ("L", "RGB", "CMYK"):
            im = normalise_mode(im, "auto")
        im.save(buf, "JPEG", quality=quality)
    else:
        im.save(buf, fmt.upper())
    return buf.getvalue()


def gray(im: Image.Image) -> np.ndarray:
    """The picture as a float64 array of gray levels 0..255 (height x width)."""
    return np.asarray(normalise_mode(im, "L"), dtype=np.float64)
