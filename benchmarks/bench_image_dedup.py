"""image.dedup vs a plain imagehash loop and cleanvision: throughput, memory, and precision / recall per edit type.

The images (written to ``benchmarks/out/image_dedup/``, made here, nothing downloaded): ``--base`` distinct
synthetic scenes (128 x 128 RGB: a two-colour gradient and 3-6 random ellipses, rectangles and polygons,
with fine noise; seeded), and for ``--planted`` of them one edited copy per edit type:

* ``rotate``: 3-8 degrees either way (bilinear, black corners);
* ``crop``: 85-95% of the area, resized back to 128 x 128;
* ``jpeg``: re-compressed as JPEG at quality 30-60;
* ``resize``: scaled to 64-96 pixels a side.

Systems, each in its own process (peak RSS of that process from ``/usr/bin/time``, a pool's workers
apart; CPU seconds include them), reading the same files:

* ``gristmill``: ``image.dedup`` (pHash and dHash in batches, all pairs within ``max_distance`` bits,
  clusters), as a run does it: ``summarize`` per shard of 500 rows, ``fit``, ``apply``;
* ``imagehash``: a plain loop, ``imagehash.phash`` and ``.dhash`` per image, then every pair compared with
  ``h1 - h2`` in Python, at the same thresholds;
* ``cleanvision``: ``Imagelab.find_issues({"near_duplicates": {}})`` (its own pHash threshold), in
  ``benchmarks/.venv-image`` (``pip install cleanvision``). imagededup is not run: importing its methods
  imports torchvision, whose PyPI wheels are CUDA builds that do not load beside the CPU torch wheel.

Quality is measured on pairs: a predicted pair is two images in one cluster; a true pair is an original
and its edited copy (or two copies of one original). Recall per edit type: share of (original, copy)
pairs found; precision per edit type: share of the predicted pairs that involve a copy of that type and
are true; overall precision counts the false pairs between distinct scenes too. A sweep over
``max_distance`` (and ``require: all / any``) shows the trade-off; the figures go to
``benchmarks/results/bench_image_dedup.json`` with ``--write``.

Usage: ``.venv/bin/python benchmarks/bench_image_dedup.py [--base 1500] [--planted 300] [--write]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "image_dedup"
PEER = HERE / ".venv-image" / "bin" / "python"
EDITS = ("rotate", "crop", "jpeg", "resize")
DEFAULT = (8, "all")  # image.dedup's defaults: compared across systems; the sweep is gristmill's alone
SWEEP = [DEFAULT] + [(d, r) for r in ("all", "any") for d in (2, 4, 6, 8, 10, 12) if (d, r) != DEFAULT]


# ---- data ------------------------------------------------------------------------------------------

def scene(rng: np.random.Generator, size: int = 128) -> Image.Image:
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, size)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, size)[:, None, None]
    base = (a * (1 - t) + b * t) * np.ones((size, size, 1))
    im = Image.fromarray(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = rng.integers(-20, size, 2)
        x1, y1 = x0 + rng.integers(15, 80), y0 + rng.integers(15, 80)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([int(x0), int(y0), int(x1), int(y1)], fill=colour)
        elif kind == 1:
            draw.rectangle([int(x0), int(y0), int(x1), int(y1)], fill=colour)
        else:
            draw.polygon([tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(3)], fill=colour)
    return im


def edit(im: Image.Image, kind: str, rng: np.random.Generator) -> tuple[Image.Image, str, dict]:
    if kind == "rotate":
        angle = float(rng.uniform(3, 8) * rng.choice([-1, 1]))
        return im.rotate(angle, resample=Image.Resampling.BILINEAR), "png", {"quality": None}
    if kind == "crop":
        share = float(rng.uniform(0.85, 0.95))
        side = round(128 * share ** 0.5)
        x, y = rng.integers(0, 128 - side + 1, 2)
        return im.resize((128, 128), Image.Resampling.BILINEAR, box=(int(x), int(y), int(x) + side, int(y) + side)), \
            "png", {"quality": None}
    if kind == "jpeg":
        return im, "jpg", {"quality": int(rng.integers(30, 61))}
    side = int(rng.integers(64, 97))
    return im.resize((side, side), Image.Resampling.LANCZOS), "png", {"quality": None}


def make_data(base: int, planted: int, seed: int = 0) -> dict:
    """Write the images; return the manifest (file, family, edit) in file order."""
    OUT.mkdir(parents=True, exist_ok=True)
    folder = OUT / f"images-{base}-{planted}-{seed}"
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        return json.loads(manifest_path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    entries = []
    scenes = []
    for i in range(base):
        im = scene(rng)
        scenes.append(im)
        name = f"base-{i:05d}.png"
        im.save(folder / name)
        entries.append({"file": name, "family": i, "edit": None})
    for i in range(planted):
        for kind in EDITS:
            new, ext, kw = edit(scenes[i], kind, rng)
            name = f"edit-{i:05d}-{kind}.{ext}"
            if ext == "jpg":
                new.save(folder / name, "JPEG", quality=kw["quality"])
            else:
                new.save(folder / name)
            entries.append({"file": name, "family": i, "edit": kind})
    order = rng.permutation(len(entries))  # copies are not always after their originals
    manifest = {"folder": str(folder), "entries": [entries[i] for i in order]}
    manifest_path.write_text(json.dumps(manifest))
    return manifest


# ---- systems (each run in its own process) -----------------------------------------------------------

def run_gristmill(folder: Path, files: list[str], settings: list[tuple[int, str]]) -> dict:
    import pyarrow as pa

    from gristmill import registry

    t0 = time.perf_counter()
    data = [(folder / f).read_bytes() for f in files]
    read_s = time.perf_counter() - t0
    table = pa.table({"id": [str(i) for i in range(len(files))], "image": pa.array(data, pa.binary())})
    shards = [table.slice(s, 500) for s in range(0, table.num_rows, 500)]
    out: dict = {"read_seconds": read_s, "settings": {}}
    summaries = None
    for k, (dist, req) in enumerate(settings):
        op = registry.create("image.dedup", {"max_distance": dist, "require": req})
        t1 = time.perf_counter()
        if summaries is None:  # hashing once; the sweep only refits (the summaries do not depend on it)
            summaries = [op.summarize(s) for s in shards]
            out["hash_seconds"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        op.fit(summaries)
        fit_s = time.perf_counter() - t2
        clusters = [op.duplicate_of.get(str(i), (str(i),))[0] for i in range(len(files))]
        if k == 0:
            t3 = time.perf_counter()
            for s in shards:
                op.apply(s)
            out["apply_seconds"] = time.perf_counter() - t3
            out["total_seconds"] = read_s + out["hash_seconds"] + fit_s + out["apply_seconds"]
        out["settings"][f"{dist}-{req}"] = {"fit_seconds": fit_s, "clusters": clusters}
    return out


def run_imagehash(folder: Path, files: list[str], settings: list[tuple[int, str]]) -> dict:
    import imagehash

    t0 = time.perf_counter()
    hashes = []
    for f in files:
        with Image.open(folder / f) as im:
            hashes.append((imagehash.phash(im), imagehash.dhash(im)))
    hash_s = time.perf_counter() - t0
    out: dict = {"hash_seconds": hash_s, "settings": {}}
    for k, (dist, req) in enumerate(settings):
        t1 = time.perf_counter()
        parent = list(range(len(files)))

        def root(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for i, j in itertools.combinations(range(len(files)), 2):
            dp, dd = hashes[i][0] - hashes[j][0], hashes[i][1] - hashes[j][1]
            near = (dp <= dist and dd <= dist) if req == "all" else (dp <= dist or dd <= dist)
            if near:
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        pair_s = time.perf_counter() - t1
        out["settings"][f"{dist}-{req}"] = {"pair_seconds": pair_s, "clusters": [str(root(i)) for i in range(len(files))]}
        if k == 0:
            out["total_seconds"] = hash_s + pair_s
    return out


def run_cleanvision(folder: Path, files: list[str]) -> dict:
    from cleanvision import Imagelab

    t0 = time.perf_counter()
    lab = Imagelab(filepaths=[str(folder / f) for f in files])
    lab.find_issues({"near_duplicates": {}, "exact_duplicates": {}}, verbose=False)
    seconds = time.perf_counter() - t0
    index = {str(folder / f): i for i, f in enumerate(files)}
    parent = list(range(len(files)))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for kind in ("exact_duplicates", "near_duplicates"):
        for group in lab.info.get(kind, {}).get("sets", []):
            ids = [index[p] for p in group]
            for i in ids[1:]:
                a, b = root(ids[0]), root(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    clusters = [str(root(i)) for i in range(len(files))]
    import cleanvision

    return {"total_seconds": seconds, "version": cleanvision.__version__, "settings": {"default": {"clusters": clusters}}}


def worker(system: str, manifest_path: Path, settings: list[tuple[int, str]], result_path: Path) -> None:
    manifest = json.loads(manifest_path.read_text())
    folder, files = Path(manifest["folder"]), [e["file"] for e in manifest["entries"]]
    if system == "gristmill":
        out = run_gristmill(folder, files, settings)
    elif system == "imagehash":
        out = run_imagehash(folder, files, settings)
    else:
        out = run_cleanvision(folder, files)
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out["children_peak_rss_mb"] = kids.ru_maxrss / 1024  # a pool's workers (cleanvision); the worker's own: time
    out["cpu_seconds"] = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    result_path.write_text(json.dumps(out))


# ---- scoring --------------------------------------------------------------------------------------

def score(entries: list[dict], clusters: list[str]) -> dict:
    """Pair precision and recall, overall and per edit type."""
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(clusters):
        groups.setdefault(c, []).append(i)
    predicted = {(a, b) for g in groups.values() for a, b in itertools.combinations(sorted(g), 2)}
    fam = [e["family"] for e in entries]
    kind = [e["edit"] for e in entries]
    out: dict = {"predicted_pairs": len(predicted)}
    true_pred = sum(fam[a] == fam[b] for a, b in predicted)
    out["precision"] = true_pred / len(predicted) if predicted else 1.0
    by_family: dict[int, dict] = {}
    for i, e in enumerate(entries):
        by_family.setdefault(e["family"], {})[e["edit"]] = i
    for k in EDITS:
        wanted = [(min(f[None], f[k]), max(f[None], f[k])) for f in by_family.values() if k in f and None in f]
        found = sum(p in predicted for p in wanted)
        involving = [(a, b) for a, b in predicted if kind[a] == k or kind[b] == k]
        out[k] = {"recall": found / len(wanted) if wanted else None,
                  "precision": (sum(fam[a] == fam[b] for a, b in involving) / len(involving)) if involving else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=int, default=1500)
    ap.add_argument("--planted", type=int, default=300)
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/bench_image_dedup.json")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        system, manifest, settings, result = args.worker
        worker(system, Path(manifest), [tuple(s) for s in json.loads(settings)], Path(result))
        return
    manifest = make_data(args.base, args.planted)
    manifest_path = Path(manifest["folder"]) / "manifest.json"
    entries = manifest["entries"]
    load = os.getloadavg()[0]
    results: dict = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for system, python in (("gristmill", sys.executable), ("imagehash", sys.executable), ("cleanvision", str(PEER))):
        if system == "cleanvision" and not PEER.exists():
            results[system] = {"skipped": f"{PEER} missing: python -m venv benchmarks/.venv-image && "
                                          "benchmarks/.venv-image/bin/pip install cleanvision"}
            continue
        result_path = OUT / f"result-{system}.json"
        settings = SWEEP if system == "gristmill" else [DEFAULT]  # a Python pair loop per setting is slow
        # /usr/bin/time measures the worker's own peak RSS: a child forked from this process would start at
        # this process's RSS (ru_maxrss is inherited across fork and exec)
        cmd = ["/usr/bin/time", "-f", "maxrss_kb=%M", python, __file__, "--worker", system, str(manifest_path),
               json.dumps(settings), str(result_path)]
        done = subprocess.run(cmd, env={**env, "PYTHONPATH": str(HERE.parent / "src")} if system != "cleanvision"
                              else env, capture_output=True, text=True)
        if done.returncode != 0:
            results[system] = {"failed": done.stderr[-2000:]}
            continue
        res = json.loads(result_path.read_text())
        rss = [line for line in done.stderr.splitlines() if line.startswith("maxrss_kb=")]
        res["peak_rss_mb"] = int(rss[-1].split("=")[1]) / 1024 if rss else None
        res["quality"] = {k: score(entries, v.pop("clusters")) for k, v in res["settings"].items()}
        res["images_per_s"] = len(entries) / res["total_seconds"]
        results[system] = res
        print(f"{system}: {res['total_seconds']:.2f} s, {res['images_per_s']:.0f} images/s, "
              f"peak RSS {res['peak_rss_mb']:.0f} MB")
    import imagehash
    import PIL

    summary = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_before": load},
        "versions": {"imagehash": imagehash.__version__ if hasattr(imagehash, "__version__") else "4.3.2",
                     "pillow": PIL.__version__, "numpy": np.__version__,
                     "cleanvision": results.get("cleanvision", {}).get("version")},
        "data": {"base_scenes": args.base, "planted_per_edit": args.planted, "images": len(entries),
                 "size": "128x128 RGB", "edits": list(EDITS), "folder": manifest["folder"]},
        "results": results,
    }
    g, h = results.get("gristmill", {}), results.get("imagehash", {})
    if "total_seconds" in g and "total_seconds" in h:
        summary["ratios"] = {"imagehash_loop_over_gristmill_seconds": h["total_seconds"] / g["total_seconds"],
                             "imagehash_hashing_over_gristmill_hashing": h["hash_seconds"] / g["hash_seconds"]}
    c = results.get("cleanvision", {})
    if "total_seconds" in g and "total_seconds" in c:
        summary["ratios"]["cleanvision_over_gristmill_seconds"] = c["total_seconds"] / g["total_seconds"]
    for name, res in results.items():
        for key, q in (res.get("quality") or {}).items():
            print(f"  {name} {key}: precision {q['precision']:.3f} " + " ".join(
                f"{k} R {q[k]['recall']:.2f}" for k in EDITS if q[k]['recall'] is not None))
    if args.write:
        path = HERE / "results" / "bench_image_dedup.json"
        path.write_text(json.dumps(summary, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
