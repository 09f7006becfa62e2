"""Recursive training on generated data ("model collapse"), measured.

Generation 0 is a small language model (:mod:`gristmill.train.lm`) trained from scratch
on real documents. Every later generation trains a *fresh* model with the same
configuration on documents sampled from the previous generation's model, in one of
three regimes (Shumailov et al., Nature 2024; Gerstgrasser et al. 2024):

* ``replace``: only the newest synthetic documents (no real text from generation 1 on);
* ``accumulate``: the real documents plus every earlier generation's synthetic documents
  (the training set grows by one real-sized set per generation);
* ``keep-real``: a fraction (default 10%) of the real documents plus synthetic documents
  of the newest generation, the same number of documents as the real set.

Every generation samples as many documents as the real training set has, so all
generations train on (at least) the same amount of text, and runs the same number of
optimizer steps (in ``accumulate`` that is fewer passes over a larger set). The BPE
tokenizer is trained once on the real training documents and kept fixed for all
generations, so perplexities are comparable. Each generation is scored on held-out real
documents that no generation ever trains on, and its sampled text is measured with
:mod:`gristmill.experiments.text_stats` (and, in :mod:`.bias_amplification`, a bias
statistic).

A *condition* is one regime with one decoding configuration. Generation 0 is trained once
per seed and shared by all conditions (it only sees real text); its samples are drawn per
condition. Results are saved per (condition, seed, generation) cell under
``<run>/cells/<condition>/seed<k>/`` as soon as the cell finishes — ``gen<g>.json`` (the
figures) and ``gen<g>.jsonl`` (its sampled documents, which the next generation trains
on) — so a run started again with ``resume`` skips every finished cell.

Besides the held-out real perplexity, each cell records the perplexity of the model on (up
to 100 of) its own training documents: a generation that fits its synthetic data ever
better while real perplexity rises is the collapse signature.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gristmill.experiments import text_stats as ts
from gristmill.experiments.generation_stats import aggregate, curve_items, summarize, write_tables
from gristmill.experiments.real_data import RealData, read_real

__all__ = ["REGIMES", "PRESETS", "Condition", "LoopSpec", "training_set", "run_generations", "load_cells", "cell_path", "resume_mismatch",
           "collapse_measure", "aggregate", "summarize", "write_tables", "describe", "run_collapse"]

REGIMES = ("replace", "accumulate", "keep-real")

# Model / data sizes. "tiny" finishes in about a minute on 2 cores; "small" is the configuration of
# experiments/collapse_shakespeare.py (about 25 minutes with 3 seeds on 2 shared cores).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"doc_chars": 500, "max_docs": 240, "generations": 3,
             "lm": {"vocab_size": 512, "context": 64, "n_layer": 2, "n_head": 2, "d_model": 64, "steps": 150,
                    "batch_size": 16, "lr": 3e-3, "warmup": 20, "eval_every": 100000, "eval_batches": 1,
                    "checkpoint_every": 100000, "dropout": 0.0},
             "max_new_tokens": 160},
    "small": {"doc_chars": 1000, "max_docs": 500, "generations": 5,
              "lm": {"vocab_size": 512, "context": 64, "n_layer": 2, "n_head": 2, "d_model": 64, "steps": 300,
                     "batch_size": 16, "lr": 3e-3, "warmup": 30, "eval_every": 100000, "eval_batches": 1,
                     "checkpoint_every": 100000, "dropout": 0.0},
              "max_new_tokens": 600},
}


@dataclass(frozen=True)
class Condition:
    """One arm of the experiment: a regime and the decoding its generations sample with."""

    name: str
    regime: str
    decode: dict[str, Any]


@dataclass
class LoopSpec:
    """Everything a run of the generation loop needs (saved as the run's config)."""

    data: str
    conditions: list[Condition]
    seeds: list[int] = field(default_factory=lambda: [0])
    generations: int = 3                 # generations 0 .. generations-1
    doc_chars: int = 1000
    max_docs: int | None = None          # documents used in all (train + validation), after shuffling
    val_fraction: float = 0.1
    keep_real: float = 0.1
    prompt_words: int = 0                # prompts: the first k words of real training documents (0: empty)
    lm: dict[str, Any] = field(default_factory=dict)
    threads: int | None = 1
    data_seed: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["conditions"] = [asdict(c) for c in self.conditions]
        return d


# -- training sets ------------------------------------------------------------------------------

def training_set(regime: str, generation: int, real: Sequence[str], synthetic: Sequence[Sequence[str]],
                 keep_real: float = 0.1, rng: random.Random | None = None) -> tuple[list[str], int]:
    """The documents generation ``generation`` trains on, and how many of them are real.

    ``synthetic[g]`` holds the documents sampled from generation ``g``'s model (only
    ``synthetic[:generation]`` is read). ``keep-real`` draws ``round(keep_real * len(real))``
    real documents and fills up to ``len(real)`` with documents of the newest generation
    (all of them, repeated if too few, when it has fewer).
    """
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; known: {', '.join(REGIMES)}")
    if generation == 0:
        return list(real), len(real)
    if len(synthetic) < generation:
        raise ValueError(f"generation {generation} needs the samples of generations 0..{generation - 1}")
    newest = list(synthetic[generation - 1])
    if regime == "replace":
        return newest, 0
    if regime == "accumulate":
        docs = list(real)
        for g in range(generation):
            docs.extend(synthetic[g])
        return docs, len(real)
    rng = rng or random.Random(0)
    n_real = round(keep_real * len(real))
    n_syn = len(real) - n_real
    kept = rng.sample(list(real), n_real)
    if len(newest) >= n_syn:
        syn = rng.sample(newest, n_syn)
    else:
        syn = [newest[i % len(newest)] for i in range(n_syn)] if newest else []
    return kept + syn, n_real


def _stable_seed(*parts: Any) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode()) & 0x7FFFFFFF


# -- the loop -----------------------------------------------------------------------------------

def cell_path(run_path: Path, condition: str, seed: int, generation: int, suffix: str = ".json") -> Path:
    """Where the figures (``.json``) or the sampled documents (``.jsonl``) of one cell are saved."""
    return Path(run_path) / "cells" / condition / f"seed{seed}" / f"gen{generation}{suffix}"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _save_cell(run_path: Path, cell: dict[str, Any], samples: list[dict[str, str]]) -> None:
    # documents first: a cell counts as finished only once its .json exists
    c, s, g = cell["condition"], cell["seed"], cell["generation"]
    _write_atomic(cell_path(run_path, c, s, g, ".jsonl"),
                  "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in samples))
    _write_atomic(cell_path(run_path, c, s, g), json.dumps(cell, indent=1, ensure_ascii=False) + "\n")


def _load_cell(run_path: Path, condition: str, seed: int, generation: int) -> tuple[dict[str, Any], list[dict[str, str]]] | None:
    jp, dp = cell_path(run_path, condition, seed, generation), cell_path(run_path, condition, seed, generation, ".jsonl")
    if not (jp.is_file() and dp.is_file()):
        return None
    try:
        cell = json.loads(jp.read_text(encoding="utf-8"))
        samples = [json.loads(x) for x in dp.read_text(encoding="utf-8").splitlines() if x.strip()]
    except json.JSONDecodeError:
        return None
    return cell, samples


def load_cells(run_path: Path) -> list[dict[str, Any]]:
    """Every finished cell's figures in the run directory."""
    cells = []
    for p in sorted((Path(run_path) / "cells").glob("*/seed*/gen*.json")):
        try:
            cells.append(json.loads(p.read_text(encoding="utf-8")))
        except json.JSONDecodeError:
            continue
    return cells


Measure = Callable[[list[str], list[str]], dict[str, Any]]   # (continuations, full documents) -> figures


def _prompts(real_train: Sequence[str], n: int, k: int, rng: random.Random) -> list[str]:
    """``n`` prompts: the first ``k`` words of real training documents drawn at random (``""`` when k is 0)."""
    if k <= 0:
        return [""] * n
    docs = [rng.choice(real_train) for _ in range(n)]
    return [" ".join(d.split()[:k]) for d in docs]


def run_generations(spec: LoopSpec, run: Any, measure: Measure, resume: bool = False, progress: bool = True,
                    log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run every (seed, condition, generation) cell not finished yet; returns all finished cells.

    ``measure(continuations, documents)`` adds figures for a generation's sampled text
    (``continuations``: without the prompts; ``documents``: prompt + continuation, what the
    next generation trains on).
    """
    import torch

    from gristmill.progress import progress_bars
    from gristmill.train.decoding import DecodeConfig, generate
    from gristmill.train.lm import LMConfig, perplexity, train_lm
    from gristmill.train.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer

    say = log or (lambda _m: None)
    if spec.threads:
        torch.set_num_threads(spec.threads)
    real = read_real(spec)
    for s in real.skipped[:20]:
        say(f"skipped {s}")
    run_path = Path(run.path)
    base_cfg = LMConfig(**{**spec.lm, "threads": spec.threads})
    tok_dir = run_path / "tokenizer"
    if resume and (tok_dir / "tokenizer.json").is_file():
        tokenizer = load_tokenizer(tok_dir)
    else:
        tokenizer = train_tokenizer(real.train, base_cfg.vocab_size)
        save_tokenizer(tokenizer, tok_dir)
    n_docs = len(real.train)

    def fit(docs: list[str], seed: int, generation: int) -> Any:
        cfg = replace(base_cfg, seed=_stable_seed("lm", seed, generation))
        return train_lm(docs, None, cfg, run=None, tokenizer=tokenizer, progress=False)

    def own_perplexity(lm: Any, docs: list[str], seed: int, generation: int) -> float | None:
        docs = [d for d in docs if d.strip()]
        if not docs:
            return None
        return perplexity(lm, random.Random(_stable_seed("own", seed, generation)).sample(docs, min(100, len(docs))))

    total = len(spec.seeds) * len(spec.conditions) * spec.generations
    done = 0
    with progress_bars(progress) as bars:
        task = bars.add_task("generations", total=total, unit="cells")
        for seed in spec.seeds:
            history: dict[str, list[list[str]]] = {c.name: [] for c in spec.conditions}
            todo: dict[str, int] = {}
            for cond in spec.conditions:       # load finished cells; the first missing one is where to start
                for g in range(spec.generations):
                    loaded = _load_cell(run_path, cond.name, seed, g) if resume else None
                    if loaded is None:
                        break
                    history[cond.name].append([x["doc"] for x in loaded[1]])
                    done += 1
                    bars.update(task, advance=1)
                todo[cond.name] = len(history[cond.name])
            gen0_model, gen0_outs = None, {}   # generation 0 is shared by conditions (and its samples by equal decodings)
            for cond in spec.conditions:
                for g in range(todo[cond.name], spec.generations):
                    t0 = time.time()
                    bars.update(task, description=f"s{seed} {cond.name[:10]} g{g}")
                    if g == 0:
                        if gen0_model is None:
                            gen0_model = fit(real.train, seed, 0)
                        lm, docs, n_real = gen0_model, list(real.train), n_docs
                    else:
                        rng = random.Random(_stable_seed("mix", cond.name, seed, g))
                        docs, n_real = training_set(cond.regime, g, real.train, history[cond.name], spec.keep_real, rng)
                        lm = fit(docs, seed, g)
                    t_train = time.time() - t0
                    if g == 0 and "scores" in gen0_outs:
                        ppl, own_ppl = gen0_outs["scores"]
                    else:
                        ppl, own_ppl = perplexity(lm, real.val), own_perplexity(lm, docs, seed, g)
                    if g == 0:
                        gen0_outs["scores"] = (ppl, own_ppl)
                    prng = random.Random(_stable_seed("prompts", seed, g))
                    prompts = _prompts(real.train, n_docs, spec.prompt_words, prng)
                    dec_key = json.dumps(cond.decode, sort_keys=True)
                    dec = DecodeConfig(**{**cond.decode, "seed": _stable_seed("decode", dec_key, seed, g)})
                    if g == 0 and dec_key in gen0_outs:
                        outs = gen0_outs[dec_key]
                    else:
                        outs = generate(lm, prompts, dec)
                    if g == 0:
                        gen0_outs[dec_key] = outs
                    samples = [{"prompt": p, "text": o, "doc": p + o}
                               for p, o in zip(prompts, outs)]
                    conts = [x["text"] for x in samples]
                    full = [x["doc"] for x in samples]
                    cell = {"condition": cond.name, "regime": cond.regime, "decode": cond.decode, "seed": seed,
                            "generation": g, "train_docs": len(docs), "train_real_docs": n_real,
                            "perplexity": ppl, "train_perplexity": own_ppl, "train_seconds": round(t_train, 1),
                            "seconds": None, **measure(conts, full),
                            "samples": [x["doc"] for x in samples[:3]]}
                    cell["seconds"] = round(time.time() - t0, 1)
                    _save_cell(run_path, cell, samples)
                    history[cond.name].append(full)
                    say(f"seed {seed} {cond.name} gen {g}: perplexity {ppl:.2f} ({cell['seconds']:.0f}s)")
                    done += 1
                    bars.update(task, advance=1)
                    del lm
    order = {x.name: i for i, x in enumerate(spec.conditions)}
    cells = [c for c in load_cells(run_path)
             if c["condition"] in order and c["seed"] in spec.seeds and c["generation"] < spec.generations]
    return sorted(cells, key=lambda c: (order[c["condition"]], c["seed"], c["generation"]))


# -- collapse measurements and report -------------------------------------------------------------

def collapse_measure(real_train: Sequence[str], tail_n: int = 2, tail_max: int = 3) -> Measure:
    """Text statistics of a generation's samples against the real training documents (see :mod:`.text_stats`)."""
    rare = ts.rare_ngrams(real_train, tail_n, 1, tail_max)
    ranks = ts.FrequencyRanks.of(real_train)

    def measure(conts: list[str], docs: list[str]) -> dict[str, Any]:
        lengths = [len(ts.words(t)) for t in conts]
        return {"distinct_1": ts.distinct_n(conts, 1), "distinct_2": ts.distinct_n(conts, 2),
                "distinct_3": ts.distinct_n(conts, 3), "tail_coverage": ts.tail_coverage(rare, conts),
                **ts.mean_frequency_rank(ranks, conts), "length": ts.length_stats(conts), "lengths": lengths}

    return measure


COLLAPSE_METRICS = [("perplexity", "held-out real perplexity", 2), ("train_perplexity", "own-data perplexity", 2),
                    ("distinct_1", "distinct-1", 3),
                    ("distinct_2", "distinct-2", 3), ("distinct_3", "distinct-3", 3),
                    ("tail_coverage", "tail coverage", 4), ("mean_rank", "mean frequency rank", 0),
                    ("length.p50", "median words/doc", 0)]


def describe(spec: LoopSpec, real: RealData) -> str:
    """The experiment's setup in a few lines (the report's first item)."""
    lm = spec.lm
    regimes = {"replace": "only the newest synthetic documents",
               "accumulate": "real + every earlier generation's synthetic documents",
               "keep-real": f"{spec.keep_real:.0%} of the real documents + the newest synthetic ones, same size"}
    conds = "\n".join(f"  {c.name}: {regimes[c.regime]}; decoding {c.decode}" for c in spec.conditions)
    return (f"Real data: {spec.data}, ~{spec.doc_chars}-character documents; {len(real.train)} for training, "
            f"{len(real.val)} held out (never trained on) for perplexity.\n"
            f"Generations 0..{spec.generations - 1}; seeds {', '.join(map(str, spec.seeds))}. Generation 0 trains on "
            "the real documents; every later generation trains a fresh model (same configuration) on:\n"
            f"{conds}\n"
            f"Model: {lm.get('n_layer')} layers, {lm.get('n_head')} heads, d {lm.get('d_model')}, context "
            f"{lm.get('context')}, {lm.get('steps')} steps of {lm.get('batch_size')} windows per generation. The "
            f"byte-level BPE tokenizer ({lm.get('vocab_size')}) is trained once on the real training documents and "
            "kept fixed for every generation.\n"
            f"Each generation samples {len(real.train)} documents"
            + (f" continuing the first {spec.prompt_words} words of real documents" if spec.prompt_words else
               " from an empty prompt") + ".")


def write_collapse_report(run: Any, spec: LoopSpec, cells: list[dict[str, Any]], real: RealData,
                          tail_n: int, tail_max: int) -> dict[str, Any]:
    """Tables, curves with 95% bands, length histograms and samples; returns the results summary."""
    run.text("setup", describe(spec, real) + (
        f"\nTail coverage: share of the real training data's word {tail_n}-grams seen 1..{tail_max} times that "
        "occur in a generation's samples. Mean frequency rank: mean rank of the sampled words in the real "
        "data's word frequencies (unseen words: vocabulary size + 1). Own-data perplexity: each generation's "
        "model on up to 100 of its own training documents."))
    note = "mean ± half-width of the 95% t-interval over seeds (no ± with one seed)"
    write_tables(run, cells, COLLAPSE_METRICS, note)
    real_lengths = [len(ts.words(t)) for t in real.train]
    for key, label, _d in COLLAPSE_METRICS:
        series, bands = curve_items(aggregate(cells, key))
        if key == "length.p50":
            series["real data"] = ([0, spec.generations - 1], [ts.length_stats(real.train)["p50"]] * 2)
        elif key.startswith("distinct"):
            real_v = ts.distinct_n(real.train, int(key[-1]))
            series["real data"] = ([0, spec.generations - 1], [real_v, real_v])
        note = ("held-out real documents, never trained on; the tokenizer is trained once on the real training "
                "documents and kept fixed" if key == "perplexity" else
                f"share of the real training data's word {tail_n}-grams seen 1-{tail_max} times that occur in the "
                "generation's samples" if key == "tail_coverage" else "")
        run.curve(f"{label} by generation", series, xlabel="generation", ylabel=label, bands=bands, note=note)
    run.histogram("words per document: real training data", real_lengths, xlabel="words")
    last = spec.generations - 1
    for cond in spec.conditions:
        lengths = [x for c in cells if c["condition"] == cond.name and c["generation"] == last
                   for x in c.get("lengths", [])]
        if lengths:
            run.histogram(f"words per generated document: {cond.name}, generation {last}", lengths, xlabel="words",
                          note="all seeds pooled")
        first = min(spec.seeds)
        items = [(f"gen {c['generation']} #{i + 1}", s[:600]) for c in sorted(
            (c for c in cells if c["condition"] == cond.name and c["seed"] == first), key=lambda c: c["generation"])
            for i, s in enumerate(c.get("samples", []))]
        run.samples(f"samples: {cond.name} (seed {first})", items)
    summary = summarize(cells, COLLAPSE_METRICS)
    real_stats = {"train_docs": len(real.train), "val_docs": len(real.val),
                  "distinct_1": ts.distinct_n(real.train, 1), "distinct_2": ts.distinct_n(real.train, 2),
                  "distinct_3": ts.distinct_n(real.train, 3), "length": ts.length_stats(real.train),
                  "rare_ngrams": len(ts.rare_ngrams(real.train, tail_n, 1, tail_max))}
    run.result(by_condition=summary, real_data=real_stats, cells=len(cells),
               tail_definition=f"word {tail_n}-grams seen 1..{tail_max} times in the real training documents")
    return summary


def run_collapse(spec: LoopSpec, out: str | Path, resume: bool = False, progress: bool = True,
                 tail_n: int = 2, tail_max: int = 3, log: Callable[[str], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Run (or finish, with ``resume``) a collapse experiment into ``out``; returns (report path, summary)."""
    from gristmill.rundir import RunDir

    real = read_real(spec)
    run = RunDir.create(out, kind="experiment-collapse",
                        config={**spec.to_json(), "tail_n": tail_n, "tail_max": tail_max}, resume=resume)
    if not resume:
        import shutil

        shutil.rmtree(Path(out) / "cells", ignore_errors=True)
    cells = run_generations(spec, run, collapse_measure(real.train, tail_n, tail_max), resume, progress, log)
    summary = write_collapse_report(run, spec, cells, real, tail_n, tail_max)
    return run.finish(title="Model collapse: recursive training on generated text"), summary


def resume_mismatch(out: str | Path, config: dict[str, Any], extendable: Sequence[str] = ("seeds", "generations")) -> list[str]:
    """Keys whose saved value in ``out/config.json`` differs from ``config`` (those in
    ``extendable`` may differ: a resumed run can add seeds or generations); ``[]`` when there
    is no saved config."""
    f = Path(out) / "config.json"
    if not f.is_file():
        return []
    saved = json.loads(f.read_text(encoding="utf-8"))
    fresh = json.loads(json.dumps(config))
    return sorted(k for k in set(saved) | set(fresh)
                  if k not in extendable and k != "kind" and saved.get(k) != fresh.get(k))


def default_decode(**over: Any) -> dict[str, Any]:
    """Decoding settings for a condition (DecodeConfig fields; the seed is set per cell)."""
    d = {"strategy": "sample", "temperature": 1.0, "top_k": 0, "top_p": 1.0, "num_beams": 4,
         "length_penalty": 1.0, "max_new_tokens": 128}
    d.update({k: v for k, v in over.items() if v is not None})
    return d
