"""Report section for image runs: pictures where people look rather than read.

For a run whose steps include ``image.*`` operators (or whose output has an ``image`` column):

* kept images, a grid per label, from the output;
* per filtering step (``image.validate``, ``image.quality``, ``image.label_issues`` with ``drop``): a grid
  of dropped images per rule from ``rejected/<step>.parquet``, each captioned with its reason;
* per ``image.dedup`` step: the largest clusters its run summary lists, the kept image first and its
  duplicates beside it with their Hamming distances;
* per ``image.label_issues`` step: the most suspicious flagged images, given label -> predicted;
* per ``image.augment`` step: originals beside their copies, with the transforms applied.

Pictures are inline PNG thumbnails (``data:`` URIs; tiny images scaled up with nearest-neighbour so pixels
stay visible, large ones scaled down), so the page still opens offline. Images that do not decode are
shown as a grey box with the word "undecodable". A run without images gets "none"; a step whose cached
shards were pruned says so.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.pipeline.run_reader import RunReader
from gristmill.records import ID, REASON, rule_of
from gristmill.report.html import esc, none, num

IMAGE = "image"
PER_GRID = 16
PER_RULE = 8
LABELS = 10
THUMB = 72  # pixels on the longer side of a thumbnail


def thumbnail(value: Any, size: int = THUMB) -> str:
    """An ``<img>`` of the encoded image ``value`` (a grey box when it does not decode)."""
    from PIL import Image

    from gristmill.images.decode import ImageProblem, decode, normalise_mode

    try:
        im, _ = decode(value, max_pixels=50_000_000)
        im = normalise_mode(im, "auto")
    except (ImageProblem, ValueError, OSError):
        return (f'<span style="display:inline-block;width:{size}px;height:{size}px;background:#ccc;color:#555;'
                f'font-size:10px;line-height:{size}px;text-align:center">undecodable</span>')
    scale = size / max(im.size)
    method = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), method)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="" style="image-rendering:pixelated;display:block">'


def figure(value: Any, caption: str) -> str:
    """A thumbnail with a caption under it, for a grid."""
    return (f'<figure style="margin:0;display:inline-block;vertical-align:top;width:{THUMB + 12}px;padding:4px;'
            f'background:#fff;border:1px solid #d5dbe1">{thumbnail(value)}'
            f'<figcaption style="font-size:10px;word-break:break-all;color:#40474f">{esc(caption)}</figcaption>'
            f'</figure>')


def grid(items: Iterable[tuple[Any, str]]) -> str:
    """Figures side by side, wrapping."""
    return '<div style="display:flex;flex-wrap:wrap;gap:4px;margin:6px 0">' + "".join(
        figure(v, c) for v, c in items) + "</div>"


def _step_files(run: RunReader, step: dict[str, Any]) -> list[Path]:
    return sorted(run.step_dir(step).glob("shard-*/data.parquet"))


def _batches(files: Iterable[Path], columns: list[str]) -> Iterator[pa.RecordBatch]:
    for f in files:
        names = pq.read_schema(f).names
        if IMAGE not in names or ID not in names:
            continue
        with pq.ParquetFile(f) as pf:
            yield from pf.iter_batches(batch_size=512, columns=[c for c in columns if c in names])


def rows_by_id(files: Iterable[Path], wanted: set[Any], columns: list[str]) -> dict[Any, dict[str, Any]]:
    """Rows whose id is in ``wanted`` (with ``columns``), reading until all are found."""
    found: dict[Any, dict[str, Any]] = {}
    if not wanted:
        return found
    for batch in _batches(files, [ID, *columns]):
        ids = batch.column(ID).to_pylist()
        hits = [i for i, rid in enumerate(ids) if rid in wanted and rid not in found]
        if hits:
            for row in batch.take(pa.array(hits)).to_pylist():
                found[row[ID]] = row
        if len(found) == len(wanted):
            break
    return found


def first_rows(files: Iterable[Path], columns: list[str], keep: Any, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows (with ``columns``) for which ``keep(row)`` is true."""
    out: list[dict[str, Any]] = []
    for batch in _batches(files, [ID, IMAGE, *columns]):
        for row in batch.to_pylist():
            if keep(row):
                out.append(row)
                if len(out) >= limit:
                    return out
    return out


def _kept(run: RunReader) -> str:
    files = run.output_files
    per_label: dict[Any, list[tuple[Any, str]]] = {}
    total = 0
    for batch in _batches(files, [ID, IMAGE, "label"]):
        for row in batch.to_pylist():
            label = row.get("label")
            bucket = per_label.setdefault(label, [])
            if len(bucket) < 8 and (label in per_label and len(per_label) <= LABELS):
                bucket.append((row[IMAGE], str(row[ID])))
                total += 1
        if total >= LABELS * 8:
            break
    per_label = {k: v for k, v in per_label.items() if v}
    if not per_label:
        return none("no image in the output")
    parts = ["<h3>Kept images</h3><p>The first output images of each label (up to 8 per label, 10 labels).</p>"]
    for label in sorted(per_label, key=lambda x: (x is None, str(x))):
        parts.append(f"<h4 style='margin:6px 0 0'>label {esc(label if label is not None else '(none)')}</h4>")
        parts.append(grid(per_label[label]))
    return "".join(parts)


def _dropped(run: RunReader, label: str) -> str:
    path = run.rejected_file(label)
    if not path.is_file() or IMAGE not in pq.read_schema(path).names:
        return ""
    by_rule: dict[str, list[tuple[Any, str]]] = {}
    for batch in _batches([path], [ID, IMAGE, REASON]):
        for row in batch.to_pylist():
            bucket = by_rule.setdefault(rule_of(row.get(REASON)), [])
            if len(bucket) < PER_RULE:
                bucket.append((row[IMAGE], f"{row[ID]}: {row.get(REASON)}"))
    parts = []
    for rule, items in by_rule.items():
        parts.append(f"<h4 style='margin:6px 0 0'>dropped: {esc(rule)}</h4>{grid(items)}")
    return "".join(parts)


def _dedup(run: RunReader, step: dict[str, Any]) -> str:
    label = str(step.get("step"))
    summary = run.summary(label) or {}
    clusters = summary.get("clusters_shown") or []
    figures = [f"<p>{num(summary.get('images'))} images, {num(summary.get('clusters'))} clusters, "
               f"{num(summary.get('duplicates'))} dropped ({num(summary.get('exact_duplicates'))} byte copies); "
               f"hashes {esc(', '.join(summary.get('hashes') or []) or 'none')} within "
               f"{num(summary.get('max_distance'))} bits ({esc(summary.get('require'))}).</p>"]
    if not clusters:
        return "".join(figures) + none("no duplicate clusters")
    wanted = {m["id"] for c in clusters[:8] for m in c["members"]}
    rows = rows_by_id([run.rejected_file(label), *_step_files(run, step)], wanted, [IMAGE])
    groups = []
    for c in clusters[:8]:
        items = [(rows.get(m["id"], {}).get(IMAGE), f"{m['id']} ({'kept' if m['rule'] == 'kept' else m['rule']}"
                  f"{'' if m['rule'] == 'kept' else ', ' + str(m['distance']) + ' bits'})") for m in c["members"][:8]]
        groups.append(f'<div style="border:1px dashed #9aa6b2;padding:2px 4px"><div style="font-size:11px">cluster of '
                      f'{c["size"]}</div>{grid(items)}</div>')
    figures.append('<p>The largest clusters, the kept image first:</p><div style="display:flex;flex-wrap:wrap;gap:8px">'
                   + "".join(groups) + "</div>")
    return "".join(figures)


def _label_issues(run: RunReader, step: dict[str, Any]) -> str:
    label = str(step.get("step"))
    summary = run.summary(label) or {}
    worst = summary.get("worst") or []
    head = (f"<p>{num(summary.get('flagged'))} of {num(summary.get('rows'))} rows flagged ({esc(summary.get('method'))}); "
            f"cross-validated accuracy of the pixel classifier {num(summary.get('cv_accuracy'), 3)}.</p>")
    if not worst:
        return head + none("no row flagged")
    rows = rows_by_id([*_step_files(run, step), run.rejected_file(label)], {w["id"] for w in worst[:24]}, [IMAGE])
    items = [(rows.get(w["id"], {}).get(IMAGE), f"{w['id']}: given {w['given']} → {w['predicted']} "
              f"(p {w['score']:.2f})") for w in worst[:24]]
    return head + grid(items)


def _augment(run: RunReader, step: dict[str, Any]) -> str:
    files = _step_files(run, step)
    copies = first_rows(files, ["augment.of", "augment.transforms"], lambda r: r.get("augment.of") is not None, 24)
    if not copies:
        return none("no augmented copy (or the step's cached shards were pruned)")
    originals = rows_by_id(files, {c["augment.of"] for c in copies}, [IMAGE])
    items: list[tuple[Any, str]] = []
    shown: set[Any] = set()
    for c in copies:
        of = c["augment.of"]
        if of not in shown and len(shown) < 8:
            shown.add(of)
            items.append((originals.get(of, {}).get(IMAGE), f"{of} (original)"))
        if of in shown:
            items.append((c[IMAGE], f"{c[ID]}: {c.get('augment.transforms')}"))
    return grid(items)


def render(run: RunReader) -> str:
    """The image section of a run's report, or "none" for a run without images."""
    steps = [s for s in run.steps if str(s.get("op", "")).startswith("image.")]
    has_images = any(IMAGE in pq.read_schema(f).names for f in run.output_files[:1])
    if not steps and not has_images:
        return none("none: no image records in this run")
    parts = [_kept(run)] if has_images else []
    for step in steps:
        label, op = str(step.get("step")), step.get("op")
        body = ""
        if op == "image.dedup":
            body = _dedup(run, step) + _dropped(run, label)
        elif op == "image.label_issues":
            body = _label_issues(run, step) + _dropped(run, label)
        elif op == "image.augment":
            body = _augment(run, step) + _dropped(run, label)
        else:
            body = _dropped(run, label)
        if body:
            parts.append(f"<h3>{esc(label)}</h3>{body}")
    return "".join(parts)
