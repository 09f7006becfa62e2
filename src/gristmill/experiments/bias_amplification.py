"""Bias amplification over generations of training on generated text.

The loop of :mod:`gristmill.experiments.collapse` (one regime, default ``replace``) run
once per decoding strategy — by default greedy (mode-seeking) and ancestral sampling —
tracking the gender statistics of the text each generation produces. Taori & Hashimoto
(ICML 2023) predict that a data feedback loop amplifies a model's skew when it is
mode-seeking (greedy, beam, low temperature) and stays close to the data's when samples
are drawn from the model's distribution.

Both strategies continue the same prompts, the first ``prompt_words`` words of real
training documents (greedy decoding from an empty prompt gives one text only); all
statistics are measured on the continuations, prompts excluded, and the real-data
reference on the real documents with their first ``prompt_words`` words removed.

Statistics (counted with the term lists and segment logic of ``bias.audit``,
:mod:`gristmill.ops.bias`: a sentence-like segment is the co-occurrence window):

* ``female_share``: female / (female + male) gendered term occurrences;
* ``occupation_female_share``: over the listed occupations, segments holding the
  occupation and a female term / (those holding it and a female term + those holding it
  and a male term), summed over occupations (a segment with both genders counts for both);
* ``stereotype_gap``: that share among occupations whose U.S. workforce is majority
  female (BLS, ``bias.audit``'s list) minus the share among majority-male ones;
* ``gendered_per_1k``: gendered terms per 1,000 words; ``occupation_pairs``: the number
  of (segment, occupation) co-occurrences with a gendered term behind the occupation
  figures (small counts mean a noisy share).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gristmill.experiments import collapse as loop
from gristmill.experiments import text_stats as ts
from gristmill.experiments.real_data import read_real

__all__ = ["bias_statistics", "bias_measure", "drop_prompt_words", "run_bias_amplification", "BIAS_METRICS"]

BIAS_METRICS = [("female_share", "female share of gendered terms", 3),
                ("occupation_female_share", "female share in occupation contexts", 3),
                ("stereotype_gap", "stereotype gap", 3),
                ("gendered_per_1k", "gendered terms / 1k words", 1),
                ("occupation_pairs", "gendered occupation co-occurrences", 0),
                ("perplexity", "held-out real perplexity", 2),
                ("distinct_2", "distinct-2", 3),
                ("length.p50", "median words per continuation", 0)]


def bias_statistics(texts: Sequence[str]) -> dict[str, Any]:
    """The gender statistics of ``texts`` (see the module docstring); shares are ``None`` without data."""
    import pyarrow as pa

    from gristmill.ops.bias.audit import BiasAudit, summarize_counts

    op = BiasAudit()
    counts = op.summarize(pa.table({"text": pa.array(list(texts), pa.string())}))
    summary = summarize_counts(counts, op.lexicon())
    g = summary["gender"]
    f_terms, m_terms = g["female_terms"], g["male_terms"]
    n_words = sum(len(ts.words(t)) for t in texts)

    def share(occs: list[dict[str, Any]]) -> tuple[float | None, int]:
        f = sum(o["female"] for o in occs)
        m = sum(o["male"] for o in occs)
        return (f / (f + m) if f + m else None), f + m

    occs = summary["occupations"]
    occ_share, pairs = share(occs)
    fem_major, _ = share([o for o in occs if o["bls_female_pct"] is not None and o["bls_female_pct"] > 50])
    male_major, _ = share([o for o in occs if o["bls_female_pct"] is not None and o["bls_female_pct"] < 50])
    return {
        "female_terms": f_terms, "male_terms": m_terms,
        "female_share": f_terms / (f_terms + m_terms) if f_terms + m_terms else None,
        "occupation_female_share": occ_share, "occupation_pairs": pairs,
        "stereotype_gap": fem_major - male_major if fem_major is not None and male_major is not None else None,
        "gendered_per_1k": 1000 * (f_terms + m_terms) / n_words if n_words else None,
        "words": n_words,
        "top_occupations": [[o["occupation"], o["female"], o["male"]] for o in occs if o["female"] + o["male"]][:10],
    }


def bias_measure() -> loop.Measure:
    """Bias statistics plus distinct-n and lengths of a generation's continuations."""

    def measure(conts: list[str], docs: list[str]) -> dict[str, Any]:
        return {**bias_statistics(conts), "distinct_1": ts.distinct_n(conts, 1), "distinct_2": ts.distinct_n(conts, 2),
                "length": ts.length_stats(conts)}

    return measure


def drop_prompt_words(docs: Sequence[str], k: int) -> list[str]:
    """Each document without its first ``k`` words (the part a prompt would have given)."""
    return [" ".join(d.split()[k:]) for d in docs]


def run_bias_amplification(spec: loop.LoopSpec, out: str | Path, resume: bool = False, progress: bool = True,
                           log: Callable[[str], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Run (or finish, with ``resume``) the experiment into ``out``; returns (report path, summary)."""
    import shutil

    from gristmill.rundir import RunDir

    real = read_real(spec)
    run = RunDir.create(out, kind="experiment-bias-amplification", config=spec.to_json(), resume=resume)
    if not resume:
        shutil.rmtree(Path(out) / "cells", ignore_errors=True)
    cells = loop.run_generations(spec, run, bias_measure(), resume, progress, log)
    ref = bias_statistics(drop_prompt_words(real.train, spec.prompt_words))
    ref["distinct_2"] = ts.distinct_n(drop_prompt_words(real.train, spec.prompt_words), 2)

    run.text("setup", loop.describe(spec, real) + "\nStatistics of the continuations (prompts excluded), with "
             "bias.audit's term lists and sentence-like segments: female share = female / (female + male) gendered "
             "term occurrences; occupation female share = segments holding an occupation and a female term / (those "
             "+ segments holding it and a male term), summed over occupations; stereotype gap = that share for "
             "majority-female occupations (U.S. BLS) minus majority-male ones; occupation pairs = the count behind "
             "the occupation shares. The real-data line: the real training documents without their first "
             f"{spec.prompt_words} words.")
    loop.write_tables(run, cells, BIAS_METRICS, "mean ± half-width of the 95% t-interval over seeds")
    last = spec.generations - 1
    for key, label, _d in BIAS_METRICS:
        series, bands = loop.curve_items(loop.aggregate(cells, key))
        if ref.get(key) is not None:
            series["real data"] = ([0, last], [ref[key], ref[key]])
        run.curve(f"{label} by generation", series, xlabel="generation", ylabel=label, bands=bands)
    first = min(spec.seeds)
    for cond in spec.conditions:
        items = [(f"gen {c['generation']} #{i + 1}", s[:500]) for c in sorted(
            (c for c in cells if c["condition"] == cond.name and c["seed"] == first), key=lambda c: c["generation"])
            for i, s in enumerate(c.get("samples", []))]
        run.samples(f"samples: {cond.name} (seed {first})", items)
    summary = loop.summarize(cells, BIAS_METRICS)
    run.result(by_condition=summary, real_data={k: ref[k] for k in ref if k != "top_occupations"},
               real_top_occupations=ref["top_occupations"], cells=len(cells))
    return run.finish(title="Bias amplification: gender statistics across generations"), summary
