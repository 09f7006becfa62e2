"""Write scikit-learn's ``load_digits`` to disk as an image folder: ``<out>/<label>/<index>.png``.

The 1,797 digits (8 x 8 pixels, levels 0..16, shipped inside the scikit-learn wheel, so nothing is
downloaded) become 8-bit gray PNGs, level x 255 / 16 rounded, bright strokes on black, one sub-folder per
class, so ``input.format: images`` reads the label from the folder. ``recipes/digits.yaml`` reads them.

With ``--plant`` the folder also gets the problems the image operators look for, named so a test can
check each was found (``<label>/plant-<kind>-<n>.png``):

* ``truncated``: a PNG cut in half (``image.validate`` drops it as truncated);
* ``notimage``: text saved under a ``.png`` name (quarantined by the reader: ``not_image``);
* ``empty``: a zero-byte ``.png`` (quarantined: ``zero_size``);
* ``copy``: a byte-for-byte copy of a digit (``image.dedup``: duplicate);
* ``near``: a digit re-encoded with one pixel changed by one level (``image.dedup``: near_duplicate);
* ``blank``: a black picture (``image.quality``: min_contrast);
* ``wrong``: a digit filed under another label instead of its own (``image.label_issues`` should flag most).

Usage: ``python recipes/data/make_digits.py [--out recipes/data/digits] [--plant] [--limit N]``.
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

PLANTS = 6  # of each planted kind


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "L").save(buf, "PNG")
    return buf.getvalue()


def digits(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The digits as 8-bit pictures (n x 8 x 8) and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    pictures = np.rint(data.images * 255.0 / 16.0).clip(0, 255).astype(np.uint8)
    labels = data.target.astype(np.int64)
    return (pictures, labels) if limit is None else (pictures[:limit], labels[:limit])


def write(out: Path, plant: bool = False, limit: int | None = None, seed: int = 0) -> dict[str, int]:
    """Write the image folder (replacing ``out`` when it holds an earlier one); counts by kind."""
    if out.exists():
        if not (out / ".digits").exists():
            raise SystemExit(f"{out} exists and was not written by make_digits.py; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / ".digits").write_text("written by recipes/data/make_digits.py\n")
    pictures, labels = digits(limit)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), size=PLANTS * 4, replace=False) if plant else np.zeros(0, np.int64)
    copies, nears, wrongs, truncs = np.split(chosen, 4)
    for i, (pix, lab) in enumerate(zip(pictures, labels)):
        if i in wrongs:  # filed under a wrong label below, and only there
            continue
        folder = out / str(lab)
        folder.mkdir(exist_ok=True)
        (folder / f"{i:04d}.png").write_bytes(png(pix))
    counts = {"digits": len(labels) - len(wrongs)}
    if not plant:
        return counts
    for n, i in enumerate(truncs):
        data = png(pictures[i])
        (out / str(labels[i]) / f"plant-truncated-{n}.png").write_bytes(data[: len(data) // 2])
    for n in range(PLANTS):
        folder = out / str(labels[copies[n]])
        (folder / f"plant-notimage-{n}.png").write_text("this is not a picture\n")
        (folder / f"plant-empty-{n}.png").write_bytes(b"")
        (folder / f"plant-blank-{n}.png").write_bytes(png(np.zeros((8, 8), np.uint8)))
    for n, i in enumerate(copies):
        (out / str(labels[i]) / f"plant-copy-{n}.png").write_bytes(png(pictures[i]))
    for n, i in enumerate(nears):
        pix = pictures[i].astype(np.int64)
        r, c = divmod(int(rng.integers(64)), 8)
        pix[r, c] = pix[r, c] + 1 if pix[r, c] < 255 else pix[r, c] - 1
        (out / str(labels[i]) / f"plant-near-{n}.png").write_bytes(png(pix))
    for n, i in enumerate(wrongs):
        wrong = (int(labels[i]) + 1 + int(rng.integers(9))) % 10
        (out / str(wrong)).mkdir(exist_ok=True)
        (out / str(wrong) / f"plant-wrong-{n}.png").write_bytes(png(pictures[i]))
    counts.update({k: PLANTS for k in ("truncated", "notimage", "empty", "blank", "copy", "near", "wrong")})
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "digits")
    parser.add_argument("--plant", action="store_true", help="add planted problems (see the module docstring)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N digits")
    parser.add_argument("--seed", type=int, default=0, help="seed of the planted problems")
    args = parser.parse_args()
    counts = write(args.out, args.plant, args.limit, args.seed)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
