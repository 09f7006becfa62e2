"""Report section for ``dedup.minhash`` steps: the LSH flag probabilities and the cluster sizes.

For every step whose op is ``dedup.minhash`` (from ``stats.json``), the bands and rows
come from the resolved ``recipe.yaml`` (defaults when a step does not set them); the
cluster sizes are counted from ``rejected/<step>.parquet``: a cluster of n documents
is n - 1 rows dropped with the same ``_duplicate_of``. The fit's figures (candidate
pairs, state bytes per document) are shown when the step's scratch directory is still
in the run's cache.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from gristmill.pipeline.run_reader import RunReader
from gristmill.report.html import esc, kv, none, num, table

OP = "dedup.minhash"
DUPLICATE_OF = "_duplicate_of"


def cluster_sizes(path: Path) -> Counter[int]:
    """Number of clusters of each size (documents per cluster, kept one included)."""
    if not path.is_file() or DUPLICATE_OF not in pq.read_schema(path).names:
        return Counter()
    dropped = Counter(v for v in pq.read_table(path, columns=[DUPLICATE_OF]).column(0).to_pylist() if v is not None)
    return Counter(n + 1 for n in dropped.values())


def _fit_stats(run: RunReader, step: dict[str, Any]) -> dict[str, Any]:
    from gristmill.ops.dedup.minhash import FIT_FILE

    fit = run.read_json(run.step_dir(step) / "scratch" / FIT_FILE)
    return fit if isinstance(fit, dict) else {}


def render(run: RunReader) -> str:
    steps = [s for s in run.steps if s.get("op") == OP]
    if not steps:
        return none(f"none: no {OP} step")
    from gristmill.ops.dedup.minhash import MinHashDedup, probability_table

    defaults = MinHashDedup.Params.model_fields
    parts = []
    for step in steps:
        label = str(step.get("step"))
        params = run.step_params(int(step.get("index", -1)))
        bands = int(params.get("bands", defaults["bands"].default))
        rows = int(params.get("rows", defaults["rows"].default))
        parts.append(f"<h3>{esc(label)}</h3>")
        parts.append(f"<p>{bands} bands × {rows} rows: probability that a pair of Jaccard similarity s is "
                     f"flagged as a candidate, 1 − (1 − s<sup>{rows}</sup>)<sup>{bands}</sup>; it passes 1/2 near "
                     f"s = {(1 / bands) ** (1 / rows):.2f}.</p>")
        parts.append(table(["Jaccard s", "P(flagged)"], [(f"{s:.1f}", f"{p:.3f}") for s, p in probability_table(bands, rows)]))
        fit = _fit_stats(run, step)
        if fit:
            pairs = [(k.replace("_", " "), num(fit[k])) for k in ("documents", "signed", "candidate_pairs", "pairs_checked",
                                                                   "pairs_passed", "clusters", "duplicates",
                                                                   "state_bytes_per_document", "fit_seconds") if k in fit]
            parts.append(kv(pairs))
        sizes = cluster_sizes(run.rejected_file(label))
        if not sizes:
            parts.append(none("no near-duplicate clusters"))
            continue
        rows_ = [(size, count, size * count, (size - 1) * count) for size, count in sorted(sizes.items())]
        parts.append(table(["cluster size", "clusters", "documents", "dropped"], rows_))
    return "".join(parts)
