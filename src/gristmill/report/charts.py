"""Small matplotlib charts rendered to inline SVG strings (no XML header, no external refs).

Each function takes plain numbers and labels and returns ``<svg ...>...</svg>``, ready to
drop into HTML. Output is deterministic: the SVG carries no date, and its element ids
are salted with a hash of the chart's inputs, so identical inputs give identical bytes
and different charts on one page do not share ids. Labels are shown literally (``$`` does
not start mathtext); matplotlib escapes them for SVG.

Figures are built with :class:`matplotlib.figure.Figure` directly, not pyplot, so no GUI
backend is chosen and no global figure list grows.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD")
LABEL_LIMIT = 48
WIDTH = 7.5


def label(text: object, limit: int = LABEL_LIMIT) -> str:
    """A chart label: literal text (``$`` escaped for mathtext), cut to ``limit`` characters."""
    s = str(text)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def hbars(labels: Sequence[str], values: Sequence[float], title: str = "", xlabel: str = "rows") -> str:
    """Horizontal bars top to bottom in the given order, each with its value at the end (a funnel)."""
    fig, ax = _figure(len(labels))
    y = range(len(labels))
    ax.barh(list(y), list(values), color=PALETTE[0])
    top = max(values, default=0) or 1
    for i, v in zip(y, values):
        ax.text(v + top * 0.01, i, f"{v:,.0f}" if float(v).is_integer() else f"{v:,.3g}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.12)
    _finish(ax, labels, title, xlabel)
    return _svg(fig, ("hbars", labels, values, title, xlabel))


def stacked_hbars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    title: str = "",
    xlabel: str = "rows",
) -> str:
    """Horizontal bars, one per label, stacked from ``series`` (name -> one value per label)."""
    fig, ax = _figure(len(labels), legend=len(series))
    left = [0.0] * len(labels)
    y = list(range(len(labels)))
    for k, (name, values) in enumerate(series.items()):
        ax.barh(y, list(values), left=left, label=label(name), color=PALETTE[k % len(PALETTE)])
        left = [a + b for a, b in zip(left, values)]
    if series:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_xlim(0, (max(left, default=0) or 1) * 1.05)
    _finish(ax, labels, title, xlabel)
    return _svg(fig, ("stacked_hbars", labels, dict(series), title, xlabel))


def histogram(
    values: Sequence[float],
    bins: int = 30,
    title: str = "",
    xlabel: str = "",
    thresholds: Mapping[str, float] | None = None,
) -> str:
    """A histogram of ``values``, with optional labelled vertical lines (e.g. a filter's threshold).

    ``values`` may be a numpy array; a large one is binned without a Python list.
    """
    data = np.asarray(values, dtype=np.float64)
    fig = Figure(figsize=(WIDTH, 3.0))
    ax = fig.add_subplot()
    ax.hist(data, bins=bins, color=PALETTE[0])
    for k, (name, x) in enumerate((thresholds or {}).items()):
        ax.axvline(x, color=PALETTE[(k + 3) % len(PALETTE)], linestyle="--", label=label(name))
    if thresholds:
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel(label(xlabel))
    ax.set_ylabel("rows")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(label(title, 90), fontsize=10)
    _style(ax)
    _tight(fig)
    digest = hashlib.sha256(data.tobytes()).hexdigest()
    return _svg(fig, ("histogram", digest, bins, title, xlabel, dict(thresholds or {})))


def curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
) -> str:
    """Line curves, one per ``name -> (xs, ys)`` (e.g. training and validation loss)."""
    fig = Figure(figsize=(WIDTH, 3.0))
    ax = fig.add_subplot()
    for k, (name, (xs, ys)) in enumerate(series.items()):
        ax.plot(list(xs), list(ys), label=label(name), color=PALETTE[k % len(PALETTE)], linewidth=1.5)
    if series:
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel(label(xlabel))
    ax.set_ylabel(label(ylabel))
    ax.set_title(label(title, 90), fontsize=10)
    _style(ax)
    _tight(fig)
    key = {k: (list(x), list(y)) for k, (x, y) in series.items()}
    return _svg(fig, ("curves", key, title, xlabel, ylabel))


def band_curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    bands: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]] | None = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    logy: bool = False,
) -> str:
    """Line curves with optional shaded intervals (``name -> (xs, lo, hi)``, same names as ``series``)."""
    bands = bands or {}
    fig = Figure(figsize=(WIDTH, 3.2))
    ax = fig.add_subplot()
    for k, (name, (xs, ys)) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        ax.plot(list(xs), list(ys), label=label(name), color=color, linewidth=1.5, marker="o", markersize=2.5)
        if name in bands:
            bx, lo, hi = bands[name]
            ax.fill_between(list(bx), list(lo), list(hi), color=color, alpha=0.18, linewidth=0)
    if series:
        ax.legend(fontsize=8, frameon=False)
    if logy:
        ax.set_yscale("log")
    if all(float(x).is_integer() for xs, _ in series.values() for x in xs):  # generations, budgets: no 0.5 ticks
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(label(xlabel))
    ax.set_ylabel(label(ylabel))
    ax.set_title(label(title, 90), fontsize=10)
    _style(ax)
    _tight(fig)
    key = ({k: (list(x), list(y)) for k, (x, y) in series.items()},
           {k: tuple(list(v) for v in b) for k, b in bands.items()}, title, xlabel, ylabel, logy)
    return _svg(fig, ("band_curves", key))


def _figure(rows: int, legend: int = 0) -> tuple[Figure, object]:
    height = 0.9 + 0.32 * max(rows, 1) + 0.18 * legend
    fig = Figure(figsize=(WIDTH, height))
    return fig, fig.add_subplot()


def _finish(ax: object, labels: Sequence[str], title: str, xlabel: str) -> None:
    ax.set_yticks(list(range(len(labels))), [label(s) for s in labels], fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.invert_yaxis()
    ax.set_xlabel(label(xlabel))
    ax.set_title(label(title, 90), fontsize=10)
    _style(ax)
    _tight(ax.figure)


def _tight(fig: Figure) -> None:
    with _quiet():
        fig.tight_layout()


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence matplotlib's missing-glyph warnings (e.g. CJK labels): they only affect measuring."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _style(ax: object) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


_HEADER = re.compile(r"\A.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_ID = re.compile(r' id="([^"]+)"')


def _svg(fig: Figure, key: object) -> str:
    salt = hashlib.sha256(repr(key).encode("utf-8")).hexdigest()[:16]
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}), _quiet():
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = _METADATA.sub("", _HEADER.sub("", buf.getvalue(), count=1), count=1)
    # Counter ids (figure_1, patch_1, ...) would repeat across charts on one page; keep
    # only the (salted) ids that something refers to.
    used = set(re.findall(r"#([^\s\")]+)", svg))
    return _ID.sub(lambda m: m.group(0) if m.group(1) in used else "", svg).strip()
