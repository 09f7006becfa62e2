"""Small pictures for the image operator tests: good ones in several modes and formats, and broken ones."""

from __future__ import annotations

import io
import zlib
from functools import cache

import numpy as np
import pyarrow as pa
from PIL import Image

from gristmill.records import from_rows


def encode(im: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def digit(seed: int = 0, size: int = 8) -> Image.Image:
    """A random-ish gray picture with structure (a bright bar on noise)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 60, (size, size)).astype(np.uint8)
    a[:, size // 3: size // 3 + max(1, size // 4)] = 220
    a[size // 2, :] = 180 + seed % 50
    return Image.fromarray(a, "L")


def photo(seed: int = 0, size: tuple[int, int] = (48, 32)) -> Image.Image:
    """A colour picture with gradients and a block, different per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([(x * 255 // w), (y * 255 // h), np.full_like(x, rng.integers(0, 255))], axis=2).astype(np.uint8)
    r, c = rng.integers(0, h // 2), rng.integers(0, w // 2)
    a[r:r + h // 3, c:c + w // 3] = rng.integers(0, 255, 3)
    return Image.fromarray(a, "RGB")


def bad_crc(data: bytes) -> bytes:
    """A PNG whose IDAT chunk checksum is wrong (one pixel byte flipped, the CRC kept)."""
    at = data.index(b"IDAT") + 4
    length = int.from_bytes(data[at - 8: at - 4], "big")
    body = bytearray(data)
    body[at + length // 2] ^= 0xFF
    assert zlib.crc32(bytes(body[at - 4: at + length])) != int.from_bytes(data[at + length: at + length + 4], "big")
    return bytes(body)


def exif_rotated() -> bytes:
    """A 6 x 4 JPEG whose EXIF orientation (6) says: turn 90 degrees clockwise to view it."""
    im = Image.new("RGB", (6, 4), (200, 10, 10))
    exif = im.getexif()
    exif[0x0112] = 6
    return encode(im, "JPEG", exif=exif)


@cache
def bomb() -> bytes:
    """A 40,000 x 40,000 one-bit PNG (194 KB on disk, 1.6 billion pixels decoded)."""
    return encode(Image.new("1", (40_000, 40_000)))


def palette_with_transparency() -> bytes:
    im = Image.new("P", (5, 5), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    return encode(im, "PNG", transparency=0)


def tricky() -> list[tuple[str, bytes | None, str | None]]:
    """``(id, bytes, label)`` of good and broken images; the rule each broken one fails is in its id."""
    good = encode(digit(1))
    truncated = encode(photo(3))
    return [
        ("missing", None, "a"),
        ("zero_size", b"", "a"),
        ("not_image", "plain text, no picture".encode(), "b"),
        ("good-gray", good, "a"),
        ("good-jpeg", encode(photo(2), "JPEG", quality=90), "b"),
        ("good-copy", good, "a"),
        ("truncated", truncated[: len(truncated) // 2], "b"),
        ("corrupt", bad_crc(encode(photo(4))), "a"),
        ("good-palette", palette_with_transparency(), "b"),
        ("unsupported_mode", encode(Image.new("LAB", (4, 4)), "TIFF"), "a"),
        ("good-16bit", encode(Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)), "b"),
        ("good-exif", exif_rotated(), "a"),
        ("good-1bit", encode(Image.new("1", (9, 9), 1)), "b"),
        ("decompression_bomb", bomb(), "a"),
    ]


def batch(rows: list[tuple[str, bytes | None, str | None]] | None = None) -> pa.Table:
    rows = tricky() if rows is None else rows
    table = from_rows([{"id": rid, "label": label} for rid, _, label in rows])
    return table.append_column("image", pa.array([data for _, data, _ in rows], pa.binary()))


def table_of(images: list[bytes], labels: list[str] | None = None, prefix: str = "r") -> pa.Table:
    rows = [{"id": f"{prefix}{i}", "label": None if labels is None else labels[i]} for i in range(len(images))]
    return from_rows(rows).append_column("image", pa.array(images, pa.binary()))
