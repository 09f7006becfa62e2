"""What a pipeline run may create, replace and delete — and nothing else.

* A run directory is ``<runs>/<name>`` with ``name`` one path component (validated like a
  recipe name), so it can never point outside the runs directory.
* gristmill marks every run directory it creates with :data:`MARKER`. An existing
  directory without the marker is used only when it is empty; gristmill never deletes
  anything in a directory it did not create.
* ``--fresh`` clears only the entries a run writes (:data:`RUN_ENTRIES`), after the run
  lock is held, and keeps the LLM response cache unless asked to drop it too.
* While a run writes its outputs, :data:`INCOMPLETE` says so; ``report`` and ``card``
  refuse such a directory, because its files may come from two different runs.
* An ``output.path`` outside the run directory must be absent or empty, or hold only
  files this run wrote there before (listed in :data:`OUTPUT_MANIFEST`), unless the user
  passes ``overwrite``; even then only files of the same names are replaced and nothing
  else in that directory is touched.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from gristmill.pipeline.run_reader import INCOMPLETE, incomplete_reason  # noqa: F401  (the marker lives with its reader)
from gristmill.recipe import name_problem

MARKER = ".gristmill-run"
LOCK = ".lock"
LLM_CACHE = "llm-cache.sqlite"
OUTPUT_MANIFEST = ".gristmill-output.json"
OUTPUT_TMP = ".gristmill-output.tmp-"
# Everything a pipeline run writes at the top of its directory (the marker and lock excepted).
RUN_ENTRIES = ("cache", "data", "rejected", "scores", "summaries", "quarantine.jsonl", "stats.json",
               "audit.json", "DATASET_CARD.md", "report.html", "recipe.yaml", INCOMPLETE)


class RunDirError(Exception):
    """The run directory or output path cannot be used; nothing was changed. One line."""


def _is_ours(path: Path) -> bool:
    # Run directories made before the marker existed hold the lock file and the resolved recipe.
    return (path / MARKER).is_file() or ((path / LOCK).is_file() and (path / "recipe.yaml").is_file())


def run_dir_for(runs_dir: str | Path, name: str) -> Path:
    """``runs_dir/name`` after checking that ``name`` is one safe path component."""
    problem = name_problem(name)
    if problem:
        raise RunDirError(f"run name {problem}; give one with --name")
    return Path(runs_dir) / name


def _os_message(exc: OSError, what: str, path: Path) -> str:
    reason = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
              errno.EROFS: "read-only file system", errno.ENOTDIR: "a file is in the way",
              errno.EEXIST: "a file of that name exists", errno.ENOSPC: "no space left on device"}
    return f"{path}: cannot {what}: {reason.get(exc.errno or 0, exc.strerror or str(exc))}"


def open_run_dir(run_dir: Path) -> Path:
    """Create ``run_dir`` (marked as gristmill's), or check that an existing one is gristmill's
    or empty. Raises :class:`RunDirError` with one line otherwise."""
    runs = run_dir.parent
    if runs.exists() and not runs.is_dir():
        raise RunDirError(f"{runs}: the runs directory is a file, not a directory")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: a file of that name is in the way of the run directory")
    if run_dir.is_dir() and not _is_ours(run_dir):
        try:
            empty = not any(run_dir.iterdir())
        except OSError as exc:
            raise RunDirError(_os_message(exc, "read the run directory", run_dir)) from None
        if not empty:
            raise RunDirError(f"{run_dir}: exists, is not empty and was not made by gristmill; "
                              "choose another --name or --runs-dir (nothing was changed)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        marker = run_dir / MARKER
        if not marker.is_file():
            marker.write_text("made by gristmill run; gristmill only deletes what it made here\n", encoding="utf-8")
        probe = run_dir / f".write-probe-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(_os_message(exc, "create or write the run directory", run_dir)) from None
    return run_dir


def clear_run(run_dir: Path, keep_llm_cache: bool = True) -> list[str]:
    """Remove what earlier runs wrote in ``run_dir`` (call with the run lock held); return the names
    removed. Files a user put there, the lock and the marker stay; so does the LLM response cache
    unless ``keep_llm_cache`` is false."""
    names = [*RUN_ENTRIES, *(() if keep_llm_cache else (LLM_CACHE, LLM_CACHE + "-wal", LLM_CACHE + "-shm"))]
    removed = []
    for name in names:
        p = run_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        else:
            continue
        removed.append(name)
    return removed


def mark_incomplete(run_dir: Path, recipe: str) -> None:
    (run_dir / INCOMPLETE).write_text(
        f"This run has not finished (interrupted, failed or still running): its files may mix two runs.\n"
        f"Run the same command again (gristmill run {recipe}) to finish it.\n", encoding="utf-8")


def mark_complete(run_dir: Path) -> None:
    (run_dir / INCOMPLETE).unlink(missing_ok=True)


# ---- an output path outside the run directory ---------------------------------------------

def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / OUTPUT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), list) else None


def _is_run_data(final: Path, run_dir: Path) -> bool:
    """Whether ``final`` is the run's own ``data/`` (replaced whole on every run)."""
    return final.resolve() == (run_dir / "data").resolve()


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_path(final: Path, run_dir: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output path gristmill could not write or must not overwrite."""
    if _is_run_data(final, run_dir):
        return
    here, run = final.resolve(), run_dir.resolve()
    if run.is_relative_to(here):
        raise RunDirError(f"output.path {final}: is the run directory or contains it; choose a directory of its own")
    if here.is_relative_to(run) and here.relative_to(run).parts[0] in (*RUN_ENTRIES, MARKER, LOCK, LLM_CACHE):
        raise RunDirError(f"output.path {final}: is inside the run's own {here.relative_to(run).parts[0]!r}; "
                          "choose another directory")
    if final.exists() and not final.is_dir():
        raise RunDirError(f"output.path {final}: is a file; it must be a directory (absent or empty)")
    if final.is_dir():
        try:
            entries = [p.name for p in final.iterdir()
                       if p.name != OUTPUT_MANIFEST and not p.name.startswith(OUTPUT_TMP)]
        except OSError as exc:
            raise RunDirError(_os_message(exc, "read output.path", final)) from None
        manifest = _manifest(final)
        ours = (manifest is not None and manifest.get("run_dir") == str(run_dir.resolve())
                and set(entries) <= set(manifest["files"]))
        if entries and not ours and not overwrite:
            raise RunDirError(f"output.path {final}: exists and is not empty ({len(entries)} entries, e.g. "
                              f"{sorted(entries)[0]!r}) and this run did not write it; choose an empty directory, "
                              "or pass --overwrite to replace files of the same names (nothing else is touched)")
    target = final if final.is_dir() else _nearest_existing(final.parent)
    if not target.is_dir():
        raise RunDirError(f"output.path {final}: {target} is a file, not a directory")
    try:  # a real write: permissions, read-only mounts and root's exemptions all show up here
        tempfile.TemporaryDirectory(prefix=OUTPUT_TMP, dir=target).cleanup()
    except OSError as exc:
        raise RunDirError(_os_message(exc, f"write output.path (in {target})", final)) from None


def output_tmp(final: Path, run_dir: Path) -> Path:
    """A new empty directory to write the output in, on the same file system as ``final``
    (inside it when it exists outside the run; leftovers of killed runs there are removed)."""
    from gristmill.pipeline.store import tmp_sibling

    if final.is_dir() and not _is_run_data(final, run_dir):
        for old in final.glob(OUTPUT_TMP + "*"):
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        tmp = final / f"{OUTPUT_TMP}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_sibling(final)
    tmp.mkdir()
    return tmp


def place_output(tmp: Path, final: Path, run_dir: Path) -> list[Path]:
    """Move the files written in ``tmp`` to ``final`` and return their paths.

    The run's own ``data/`` is replaced whole. Elsewhere,
    ``final`` is created when absent; when it exists, each file replaces the file of the same
    name, files this run wrote there before and did not write now are removed (they are
    listed in the manifest), and nothing else is touched.
    """
    from gristmill.pipeline.store import replace_dir

    if _is_run_data(final, run_dir):
        replace_dir(tmp, final)
        return sorted(final / p.name for p in final.iterdir())
    names = sorted(p.name for p in tmp.iterdir() if p.name != OUTPUT_MANIFEST)
    record = {"run_dir": str(run_dir.resolve()), "files": names,
              "note": "written by gristmill; a rerun of the same run replaces exactly these files"}
    if not final.exists():
        (tmp / OUTPUT_MANIFEST).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, final)
        return [final / n for n in names]
    previous = _manifest(final)
    for n in names:
        dest = final / n
        if dest.is_dir() and not dest.is_symlink() and previous and n in previous["files"]:
            shutil.rmtree(dest)  # a directory output (hf) this run wrote before
        elif dest.is_dir() and not dest.is_symlink():
            raise RunDirError(f"output.path {final}: {n!r} is a directory this run did not write; not replaced")
        os.replace(tmp / n, dest)
    if previous and previous.get("run_dir") == record["run_dir"]:
        for n in previous["files"]:
            stale = final / n
            if n not in names and "/" not in n and n not in ("", ".", ".."):
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                elif stale.exists() or stale.is_symlink():
                    stale.unlink()
    tmp_manifest = final / f".{OUTPUT_MANIFEST}.tmp-{uuid.uuid4().hex[:8]}"
    tmp_manifest.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_manifest, final / OUTPUT_MANIFEST)
    shutil.rmtree(tmp, ignore_errors=True)
    return [final / n for n in names]
