"""Files of a run: fingerprints, atomic commits and the per-shard cache layout.

A shard's result is a directory written under a temporary name and renamed into place,
so after a SIGKILL at any moment a shard is either fully committed or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}


def fingerprint(*parts: Any) -> str:
    """A stable hex digest of JSON-serialisable ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:20]


def file_identity(path: Path) -> list[Any]:
    """What identifies an input file's content cheaply: path, size and mtime of it (or its files)."""
    if path.is_dir():
        return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(path.rglob("*")) if p.is_file()]
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def tmp_sibling(final: Path) -> Path:
    return final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def commit_dir(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; if another process committed first, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if final.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            raise


def replace_dir(tmp: Path, final: Path) -> None:
    """Put ``tmp`` in place of ``final``, whatever ``final`` holds now."""
    old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = tmp_sibling(path)
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = tmp_sibling(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def remove_stale_tmp(root: Path) -> None:
    """Delete temporary files and directories left behind by killed processes."""
    if not root.exists():
        return
    for p in root.rglob(".*.tmp-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    for p in root.rglob(".*.old-*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def write_table(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path, **PARQUET_OPTIONS)


def read_table(path: Path) -> pa.Table:
    return pq.read_table(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
