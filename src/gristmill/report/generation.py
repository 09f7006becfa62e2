"""Report section for LLM steps: backend usage per step, and the diversity of the generated set.

Usage: for each step in ``stats.json`` with an ``llm`` entry (backend usage summed over
shards by the runner), a table of requests, cached requests and their share, errors,
truncated completions, tokens in, tokens out and tokens out per backend second, and a
bar chart of tokens in and out per step.

Diversity, when the run has a generator step, of the output rows (read with every column
from the last step's committed shards, see :meth:`gristmill.pipeline.run_reader.RunReader.output_table`;
each row's ``text``, else its ``instruction``, ``input`` and ``output`` joined):

* distinct-1/2/3: unique n-grams / all n-grams over lowercased whitespace tokens;
* mean pairwise ROUGE-L F1 of a seeded sample of up to :data:`SAMPLE` rows;
* mean cosine distance from each row to its nearest neighbour among a seeded sample of up
  to :data:`SAMPLE` rows, with all-MiniLM-L6-v2 embeddings (said instead when the model
  package is missing).

The figures are cached in ``summaries/generation.json`` keyed by a fingerprint of the rows
(count and a hash of their ids), so rebuilding the report does not recompute them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xxhash

from gristmill.pipeline.run_reader import RunReader
from gristmill.evaluate.diversity import distinct_n, nearest_neighbour_distance
from gristmill.records import ID, TEXT
from gristmill.report import charts
from gristmill.report.html import esc, kv, none, num, table

SAMPLE = 300
SEED = 0
CACHE_FILE = "generation.json"
CACHE_VERSION = 1
GENERATOR = "generator"
PARTS = ("instruction", "input", "output")


def _row_text(row: dict[str, Any]) -> str:
    text = row.get(TEXT)
    if isinstance(text, str) and text.strip():
        return text
    return "\n".join(str(row[c]) for c in PARTS if isinstance(row.get(c), str) and row[c].strip())


def generated_rows(run: RunReader) -> tuple[list[str], list[str]]:
    """Ids and texts of the run's output rows (every column kept: the last step's shards, else data/)."""
    rows = run.output_table([ID, TEXT, *PARTS]).to_pylist()
    return [str(r.get(ID)) for r in rows], [_row_text(r) for r in rows]


def fingerprint(ids: Sequence[str]) -> str:
    """Row count and a hash of the ids, in order."""
    h = xxhash.xxh3_64()
    for i in ids:
        h.update(i.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return f"v{CACHE_VERSION}-{len(ids)}-{h.hexdigest()}"


def _sample(texts: list[str], k: int = SAMPLE) -> list[str]:
    if len(texts) <= k:
        return texts
    rng = np.random.default_rng(SEED)
    return [texts[i] for i in sorted(rng.choice(len(texts), k, replace=False))]


def _embedding_distance(texts: list[str]) -> tuple[float | None, str | None]:
    """The mean nearest-neighbour distance, or ``None`` and why it could not be computed."""
    from gristmill.models.locate import ModelNotInstalled
    from gristmill.models.embed import load_sentence_encoder

    try:
        encoder = load_sentence_encoder()
    except (ModelNotInstalled, ImportError) as exc:
        return None, f"embedding distance not computed: {exc}"
    return nearest_neighbour_distance(encoder.encode(texts)), None


def compute_diversity(texts: list[str]) -> dict[str, Any]:
    """Distinct-1/2/3 over all texts; ROUGE-L and embedding distance over a sample (see the module doc)."""
    from gristmill.llm.rouge import mean_pairwise_rouge_l

    sample = _sample(texts)
    nn, note = _embedding_distance(sample) if len(sample) >= 2 else (None, "fewer than 2 rows")
    return {
        "rows": len(texts),
        "sample": len(sample),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "distinct_3": distinct_n(texts, 3),
        "rouge_l": mean_pairwise_rouge_l(sample, max_texts=SAMPLE, seed=SEED),
        "nn_distance": nn,
        "note": note,
    }


def diversity(run: RunReader) -> dict[str, Any]:
    """The diversity figures of the run's output, read from ``summaries/generation.json`` when its
    fingerprint matches, else computed and saved there (not saved when the embedding model is missing,
    so installing it later fills the figure in)."""
    ids, texts = generated_rows(run)
    if texts and not any(t.strip() for t in texts):  # image records and other rows without text
        return {"rows": len(texts), "no_text": True}
    key = fingerprint(ids)
    path = run.run_dir / "summaries" / CACHE_FILE
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and cached.get("fingerprint") == key and isinstance(cached.get("figures"), dict):
            return cached["figures"]
    except (OSError, ValueError):
        pass
    figures = compute_diversity(texts)
    if figures["nn_distance"] is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps({"fingerprint": key, "figures": figures}, indent=2), encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass  # a read-only run directory: the report still renders, it just recomputes next time
    return figures


def _int(usage: dict[str, Any], key: str) -> int | float:
    v = usage.get(key, 0)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


def _usage(steps: list[dict[str, Any]]) -> str:
    rows = []
    for s in steps:
        u = s["llm"]
        requests, cached, seconds = _int(u, "requests"), _int(u, "cached"), _int(u, "seconds")
        share = f"{num(cached)} ({100 * cached / requests:.1f}%)" if requests else num(cached)
        rate = num(_int(u, "tokens_out") / seconds, 1) if seconds > 0 else "—"
        rows.append((s.get("step"), requests, share, _int(u, "errors"), _int(u, "truncated"),
                     _int(u, "tokens_in"), _int(u, "tokens_out"), rate))
    labels, values = [], []
    for s in steps:
        labels += [f"{s.get('step')} in", f"{s.get('step')} out"]
        values += [_int(s["llm"], "tokens_in"), _int(s["llm"], "tokens_out")]
    chart = charts.hbars(labels, values, title="Tokens in and out per step", xlabel="tokens")
    return chart + table(["step", "requests", "cached (share)", "errors", "truncated", "tokens in",
                          "tokens out", "tokens out/s"], rows)


def _diversity(run: RunReader) -> str:
    d = diversity(run)
    if not d.get("rows"):
        return "<h3>Diversity of the generated set</h3>" + none("no output rows to measure")
    if d.get("no_text"):
        return "<h3>Diversity of the generated set</h3>" + none("the output rows hold no text (image records)")
    nn = d.get("nn_distance")
    pairs = [
        ("rows", num(d["rows"])),
        ("distinct-1", num(d["distinct_1"], 3)),
        ("distinct-2", num(d["distinct_2"], 3)),
        ("distinct-3", num(d["distinct_3"], 3)),
        (f"mean pairwise ROUGE-L ({num(d['sample'])} rows)", num(d["rouge_l"], 3)),
        (f"mean nearest-neighbour cosine distance ({num(d['sample'])} rows)",
         num(nn, 3) if nn is not None else esc(d.get("note") or "—")),
    ]
    return ("<h3>Diversity of the generated set</h3>"
            "<p>Distinct-n: unique / all n-grams of lowercased words (higher is more diverse). ROUGE-L: mean over "
            "pairs (lower is more diverse). Nearest-neighbour distance: MiniLM embeddings (higher is more "
            "diverse).</p>" + kv(pairs))


def render(run: RunReader) -> str:
    llm = [s for s in run.steps if isinstance(s.get("llm"), dict)]
    generates = any(s.get("kind") == GENERATOR for s in run.steps)
    if not llm and not generates:
        return none("none: no generation step")
    parts = [_usage(llm) if llm else none("no step recorded LLM usage")]
    if generates:
        parts.append(_diversity(run))
    return "".join(parts)
