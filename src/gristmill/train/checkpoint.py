"""Training checkpoints shared by the training loops: atomic save, newest complete one, shape check.

A checkpoint is a directory ``<root>/step-NNNNNN/`` holding ``state.pt`` (whatever the loop
needs to continue: weights, optimizer, schedule, RNG states, logged losses) and
``meta.json`` (the step and the size of ``state.pt``). It is written as
``<root>/.tmp-step-NNNNNN/``, each file flushed to disk, and renamed into place; the
rename is the commit, so a process killed while saving leaves at worst a ``.tmp-*``
directory, which is never read and is removed by the next save. Old checkpoints are
renamed to ``.old-*`` before they are deleted, so a kill while pruning never leaves a
half-deleted ``step-*`` directory; checkpoints of later steps than the one being saved
(ones a resume passed over) are deleted too.

:func:`load_latest` returns the newest checkpoint that is complete (``meta.json`` readable,
``state.pt`` of the recorded size, loadable), skipping broken ones with the reason, so a
checkpoint damaged after the fact costs the steps since the one before it, never a crash
or garbage weights.

A checkpoint also records what its tensors were made for (``identity``: model, method,
labels ...) and the shape of every saved tensor; :func:`check_compatible` refuses to load
it into a model that differs (``ResumeMismatch``, a ``ValueError`` with a one-line message).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Checkpoint", "ResumeMismatch", "check_compatible", "clear_checkpoints", "complete_checkpoints",
           "load_latest", "resume_point", "save_checkpoint", "tensor_shapes"]

STATE = "state.pt"
META = "meta.json"
FORMAT = 1


class ResumeMismatch(ValueError):
    """A checkpoint was made for another model (or another shape of it) than the one being trained."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: its step, its directory and the state the loop saved."""

    step: int
    path: Path
    state: dict[str, Any]


def _name(step: int) -> str:
    return f"step-{step:06d}"


def _step_of(path: Path) -> int | None:
    if not path.name.startswith("step-"):
        return None
    digits = path.name[5:]
    return int(digits) if digits.isdigit() else None


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _remove_leftovers(root: Path) -> None:
    """Delete ``.tmp-*`` (a save cut short) and ``.old-*`` (a prune cut short) directories."""
    for p in root.iterdir():
        if p.is_dir() and (p.name.startswith(".tmp-") or p.name.startswith(".old-")):
            shutil.rmtree(p, ignore_errors=True)


def _check(path: Path) -> str | None:
    """Why the checkpoint directory ``path`` is incomplete, or None when it looks whole."""
    try:
        meta = json.loads((path / META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {META}"
    except (OSError, ValueError) as exc:
        return f"unreadable {META} ({exc})"
    if not isinstance(meta, dict) or meta.get("step") != _step_of(path):
        return f"{META} does not match the directory name"
    for name, size in (meta.get("files") or {}).items():
        f = path / name
        if not f.is_file():
            return f"{name} is missing"
        if f.stat().st_size != size:
            return f"{name} has {f.stat().st_size} bytes, {size} were written"
    return None


def complete_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """``(step, directory)`` of every checkpoint under ``root`` that looks complete, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        step = _step_of(p)
        if step is not None and p.is_dir() and _check(p) is None:
            found.append((step, p))
    return sorted(found)


def save_checkpoint(root: Path, step: int, state: Mapping[str, Any], keep: int = 2) -> Path:
    """Write ``state`` as the checkpoint of ``step`` under ``root`` atomically; keep the newest ``keep``
    (0: keep all). Returns the checkpoint's directory."""
    import torch

    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root)
    final = root / _name(step)
    tmp = root / f".tmp-{_name(step)}"
    tmp.mkdir()
    torch.save({**state, "step": step}, tmp / STATE)
    _fsync_file(tmp / STATE)
    meta = {"format": FORMAT, "step": step, "files": {STATE: (tmp / STATE).stat().st_size}}
    (tmp / META).write_text(json.dumps(meta) + "\n", encoding="utf-8")
    _fsync_file(tmp / META)
    _fsync_dir(tmp)
    if final.exists():  # a checkpoint of this step from an earlier attempt: replace it
        old = root / f".old-{_name(step)}"
        final.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    tmp.rename(final)
    _fsync_dir(root)
    # checkpoints of later steps belong to a timeline that was given up (ones that did not load)
    steps = sorted((s, p) for p in root.iterdir() if (s := _step_of(p)) is not None and p.is_dir())
    drop = [(s, p) for s, p in steps if s > step]
    if keep > 0:
        drop += [(s, p) for s, p in steps if s <= step][:-keep]
    for s, old in drop:
        gone = root / f".old-{_name(s)}"
        old.rename(gone)
        shutil.rmtree(gone, ignore_errors=True)
    return final


def load_latest(root: Path, on_skip: Callable[[Path, str], None] | None = None) -> Checkpoint | None:
    """The newest complete checkpoint under ``root`` (None when there is none).

    Step directories that are incomplete or do not load are passed over, each reported
    with its reason to ``on_skip(path, reason)``; ``.tmp-*`` directories are never read.
    """
    import torch

    if not root.is_dir():
        return None
    candidates = sorted(((s, p) for p in root.iterdir() if (s := _step_of(p)) is not None and p.is_dir()),
                        reverse=True)
    for step, path in candidates:
        reason = _check(path)
        if reason is None:
            try:
                state = torch.load(path / STATE, map_location="cpu", weights_only=False)
            except Exception as exc:  # noqa: BLE001 - any failure to unpickle means: not usable
                reason = f"{STATE} does not load ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
            else:
                if isinstance(state, dict) and state.get("step") == step:
                    return Checkpoint(step, path, state)
                reason = f"{STATE} holds another step"
        if on_skip is not None:
            on_skip(path, reason)
    return None


def resume_point(root: Path, notify: Callable[[str], None] | None = None) -> Checkpoint | None:
    """:func:`load_latest`, telling ``notify`` (one line each) which checkpoints were skipped and why,
    and where training resumes."""
    say = notify or (lambda _msg: None)
    skipped: list[Path] = []

    def on_skip(path: Path, reason: str) -> None:
        skipped.append(path)
        say(f"checkpoint {path} skipped: {reason}")

    ckpt = load_latest(root, on_skip)
    if ckpt is not None:
        say(f"resuming from step {ckpt.step} ({ckpt.path})")
    elif skipped:
        say(f"no usable checkpoint in {root}; starting from step 0")
    else:
        say(f"no checkpoint in {root}; starting from step 0")
    return ckpt


def clear_checkpoints(root: Path) -> None:
    """Delete every checkpoint under ``root`` (a run started afresh must not resume from an old one)."""
    if root.is_dir():
        shutil.rmtree(root)


def tensor_shapes(tensors: Mapping[str, Any]) -> dict[str, list[int]]:
    """``name -> shape`` of a mapping of tensors (a state dict)."""
    return {n: list(t.shape) for n, t in tensors.items()}


def check_compatible(ckpt: Checkpoint, identity: Mapping[str, Any], shapes: Mapping[str, Iterable[int]]) -> None:
    """Raise :class:`ResumeMismatch` when ``ckpt`` was made for another model than the one described by
    ``identity`` (settings that fix what the tensors mean) and ``shapes`` (name -> shape of each tensor the
    checkpoint must fill)."""
    saved_id = ckpt.state.get("identity") or {}
    changed = [f"{k} {_show(saved_id[k])} -> {_show(v)}" for k, v in identity.items()
               if k in saved_id and _norm(saved_id[k]) != _norm(v)]
    saved_shapes = {n: list(s) for n, s in (ckpt.state.get("shapes") or {}).items()}
    now = {n: list(s) for n, s in shapes.items()}
    if not changed and saved_shapes != now:
        differ = [f"{n} {saved_shapes[n]} -> {now[n]}" for n in sorted(now) if n in saved_shapes
                  and saved_shapes[n] != now[n]]
        missing = sorted(set(saved_shapes) ^ set(now))
        changed = differ[:3] + ([f"{len(differ) - 3} more tensors differ"] if len(differ) > 3 else [])
        if missing:
            changed.append(f"{len(missing)} tensors added or removed, e.g. {missing[0]}")
    if changed:
        raise ResumeMismatch(f"cannot resume from {ckpt.path}: the model's shape changed ({'; '.join(changed)}); "
                             "train without --resume, or into another --out directory")


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)
