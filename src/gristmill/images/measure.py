"""Pixel statistics of one picture: sharpness, brightness, contrast and entropy (what ``image.quality`` scores).

Every figure is measured on the gray picture (levels 0..255, Pillow's ITU-R 601-2 luma for colour):

* ``blur``: the variance of the Laplacian (the 4-neighbour kernel ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``
  over the interior pixels, Pech-Pacheco et al. 2000): low means few edges, a blurred or flat picture.
  It grows with the picture's scale of detail, so a threshold suits one kind of data; None below 3 x 3;
* ``brightness``: the mean level / 255 (0 black, 1 white);
* ``contrast``: the standard deviation of the levels / 255 (RMS contrast; 0 for a flat picture);
* ``entropy``: the Shannon entropy of the 256-bin histogram in bits (0 for one level, at most 8).
"""

from __future__ import annotations

import numpy as np

__all__ = ["brightness", "contrast", "entropy", "laplacian_variance"]


def laplacian_variance(g: np.ndarray) -> float | None:
    """Variance of the 4-neighbour Laplacian over the interior of gray picture ``g``; None below 3 x 3."""
    if g.shape[0] < 3 or g.shape[1] < 3:
        return None
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def brightness(g: np.ndarray) -> float:
    """Mean gray level / 255."""
    return float(g.mean() / 255.0)


def contrast(g: np.ndarray) -> float:
    """Standard deviation of the gray levels / 255."""
    return float(g.std() / 255.0)


def entropy(g: np.ndarray) -> float:
    """Shannon entropy (bits) of the histogram of the gray levels rounded to 0..255."""
    counts = np.bincount(np.clip(np.rint(g), 0, 255).astype(np.int64).ravel(), minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(max(0.0, -(p * np.log2(p)).sum()))
