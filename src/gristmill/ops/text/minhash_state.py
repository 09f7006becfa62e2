"""``dedup.minhash``'s per-shard state: band keys, row ids and (optionally) shingle sets.

One directory per shard under the step's scratch directory, written under a temporary
name and renamed into place (a shard's state is whole or absent). It is named by a hash
of the operator's parameters and the shard's ids and texts (:func:`content_key`), so
summarising the same shard again (after a kill) reuses it and leaves no orphan, and a
shard whose text changed under the same ids never reads stale state. Files, for the n
rows that have a signature, in row order:

* ``keys.npy``: ``(bands, n)`` uint64 band keys, band-major so :meth:`ShardState.band`
  reads one band's keys from a memory map without touching the others;
* ``ids.parquet``: those rows' ids;
* with the exact-Jaccard check only: ``sets.npy`` (uint32 values) and
  ``set_offsets.npy`` (int64, n + 1): each row's sorted distinct shingle hashes.

Without a scratch directory (an operator used outside a run) the same arrays stay in
memory inside the :class:`ShardState`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from gristmill.ops.text.minhash_signature import ShingleSets

__all__ = ["ShardState", "content_key", "write_state"]


@dataclass
class ShardState:
    """One shard's summary: where its state lives (or the arrays), its row count and signature count."""

    rows: int
    docs: int
    path: str | None = None
    memory: dict[str, Any] | None = field(default=None, repr=False)

    def band(self, b: int) -> np.ndarray:
        """Band ``b``'s keys, one per document with a signature, in row order."""
        if self.memory is not None:
            return self.memory["keys"][b]
        return np.array(np.load(Path(self.path) / "keys.npy", mmap_mode="r")[b])

    def ids(self) -> list[Any]:
        """The ids of the documents with a signature, in row order."""
        if self.memory is not None:
            return self.memory["ids"]
        return pq.read_table(Path(self.path) / "ids.parquet").column(0).to_pylist()

    def sets(self) -> ShingleSets:
        """Each document's shingle set (memory-mapped on disk); only with the exact-Jaccard check."""
        if self.memory is not None:
            return self.memory["sets"]
        d = Path(self.path)
        if not (d / "sets.npy").exists():
            raise RuntimeError(f"{d}: no shingle sets stored (summarised without jaccard_check)")
        return ShingleSets(np.load(d / "sets.npy", mmap_mode="r"), np.load(d / "set_offsets.npy"))

    def nbytes(self) -> int:
        """Bytes of state this shard holds (files on disk, or arrays in memory)."""
        if self.memory is not None:
            sets = self.memory.get("sets")
            return int(self.memory["keys"].nbytes + (sets.values.nbytes + sets.offsets.nbytes if sets else 0))
        return sum(f.stat().st_size for f in Path(self.path).iterdir())


def content_key(params: str, ids: Sequence[Any], texts: Sequence[str | None]) -> str:
    """xxh3-128 hex digest of ``params`` and the shard's ids and texts (a null text differs from "")."""
    digest = xxhash.xxh3_128(params.encode())
    digest.update("\x1f".join(map(str, ids)).encode("utf-8", "surrogatepass"))
    digest.update(bytes(t is None for t in texts))
    digest.update("\x1f".join(t or "" for t in texts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def write_state(scratch: Path | None, key: str, rows: int, keys: np.ndarray, ids: pa.Array | pa.ChunkedArray,
                sets: ShingleSets | None) -> ShardState:
    """Store one shard's state under ``scratch`` as ``shard-<key>`` (or in memory when it is None)."""
    docs = int(keys.shape[1])
    if scratch is None:
        return ShardState(rows, docs, None, {"keys": keys, "ids": ids.to_pylist(), "sets": sets})
    final = Path(scratch) / f"shard-{key}"
    if final.is_dir():
        return ShardState(rows, docs, str(final))
    tmp = Path(scratch) / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    np.save(tmp / "keys.npy", keys)
    pq.write_table(pa.table({"id": ids}), tmp / "ids.parquet", compression="zstd")
    if sets is not None:
        np.save(tmp / "sets.npy", sets.values)
        np.save(tmp / "set_offsets.npy", sets.offsets)
    try:
        os.rename(tmp, final)
    except OSError:  # another process committed the same shard first
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise
    return ShardState(rows, docs, str(final))
