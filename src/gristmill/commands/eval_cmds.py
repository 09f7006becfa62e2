"""``gristmill eval perplexity | generation | diversity | divergence | bias``.

Each command reads its data (:mod:`gristmill.commands.eval_input`, through :mod:`gristmill.io`),
computes the figures with :mod:`gristmill.evaluate`, writes a run directory (``--out``, default ``runs/eval-<what>-<data name>``: ``config.json``,
``results.json``, per-item JSONL, ``report.html`` with charts) and prints a summary, or
only the figures as JSON with ``--json``. A malformed input record is skipped and counted
(its file, line and reason are printed and kept in the report); no usable record at all,
a missing file or a bad option exits with code 2 before any scoring. ``eval bias`` scores
a causal LM on CrowS-Pairs and prints a table (``--out-file FILE``: the figures as JSON; ``--out FILE``,
the old spelling, still works with a note).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gristmill import extras
from gristmill.commands.common import (BatchSize, Data, Dtype, Field, Json, Limit, MaxLength, Model, Out, OutFile,
                                       OutFileAsOut, Quiet, Seed, Threads, deprecated, described, fail, out)
from gristmill.commands.eval_input import Loaded, read_pairs, read_texts, require, warn_skipped

__all__ = ["register"]


# -- run directory and output -------------------------------------------------------------------


def _stem(path: Path) -> str:
    return path.name.split(".")[0] or "data"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def _start(out_dir: Path | None, what: str, name: str, config: dict[str, Any]) -> Any:
    from gristmill.commands.common import create_run

    return create_run(out_dir or Path("runs") / f"eval-{what}-{name}", f"eval-{what}", config)


def _skipped_item(run: Any, got: Loaded) -> None:
    if got.skipped:
        shown = " (first 500 shown)" if len(got.skipped) > 500 else ""
        run.table("Skipped records", ["file:line: reason"], [[s] for s in got.skipped[:500]],
                  note=f"{len(got.skipped)} record(s) skipped{shown}")


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(_jsonable(r), ensure_ascii=False) + "\n")


def _emit(run: Any, figures: dict[str, Any], as_json: bool, lines: Sequence[str]) -> None:
    run.result(**figures)
    report = run.finish()
    if as_json:
        print(json.dumps(_jsonable({**figures, "run_dir": str(run.path)}), indent=2, ensure_ascii=False))
        return
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)
    out.print(f"report: {report}", highlight=False, soft_wrap=True)


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


# -- commands -----------------------------------------------------------------------------------

EvalOut = described(Out, "Run directory (default: runs/eval-<what>-<data name>); a non-empty directory gristmill "
                           "did not make is refused untouched.")
WindowBatch = described(BatchSize, "Examples per batch: windows per forward pass.")
EachLimit = described(Limit, "Read only the first N records of each dataset.")
PairLimit = described(Limit, "Score only the first N pairs.")
SentenceBatch = described(BatchSize, "Examples per batch: sentences per forward pass.")
FiguresFile = described(OutFile, "Output file: the figures as JSON.")
ScoredModel = described(Model, "Model to start from: a transformers directory, a .gguf file, or a `gristmill train "
                                "lm` model or run directory (default: the packaged SmolLM2-135M-Instruct).")
CausalLM = described(Model, "Model to start from: a causal LM, a transformers directory or .gguf file (default: the "
                            "packaged SmolLM2-135M-Instruct).")
ChatField = described(Field, "Field holding the text of each JSONL / CSV record; with --chat the conversation "
                             "(messages or conversations, default messages).")
TextField = described(Field, "Field holding the text of each JSONL / CSV record.")
WindowLength = described(MaxLength, "Tokens per sequence the model sees at once: the window (cut to the model's "
                                    "context).")
Dataset = described(Data, "Input data: a dataset, JSONL (.gz/.zst), Parquet, CSV or text files.")
DatasetA = described(Data, "Input data: dataset A.")
FieldOfA = described(Field, "Field holding the text of each JSONL / CSV record of A (and of B unless --other-field).")
CrowsPairs = described(Data, "Input data: the CrowS-Pairs CSV (default: ../shared/data/crows_pairs_anonymized.csv).")
EvalDtype = described(Dtype, "Precision: bfloat16 (about 2x faster on CPUs that compute in bf16), float32, or auto "
                             "(bfloat16 where the CPU supports it).")


def eval_perplexity(
        data: Dataset,
        model: ScoredModel = None,
        text_field: ChatField = "text",
        chat: Annotated[Optional[str], typer.Option(
            help="Rows are chats: score only the 'assistant' turns (given the conversation before them) or the "
                 "'whole' conversation.")] = None,
        max_length: WindowLength = 512,
        stride: Annotated[int, typer.Option(min=1, help="New tokens scored per window after the first; the "
                                            "max-length - stride tokens before them are context.")] = 256,
        batch_size: WindowBatch = 8,
        dtype: EvalDtype = "float32",
        limit: Limit = None, threads: Threads = None, seed: Seed = 0,
        out_dir: EvalOut = None, as_json: Json = False, quiet: Quiet = False) -> None:
    """Perplexity of a causal LM on a dataset: token-weighted corpus figure with a 95% bootstrap interval,
    and every document's perplexity."""
    extras.require("eval perplexity", "torch", "transformers", "tokenizers", "gguf")
    from gristmill.evaluate import perplexity as ppl
    from gristmill.evaluate.scorers import load_model
    from gristmill.train.config import resolve_dtype

    dtype = resolve_dtype(dtype)
    if chat is not None and chat not in ("assistant", "whole"):
        fail(f"--chat must be 'assistant' or 'whole', not {chat!r}")
    if stride >= max_length:
        fail(f"--stride ({stride}) must be smaller than --max-length ({max_length})")
    if model and not Path(model).exists():
        fail(f"--model {model}: no such file or directory")
    if chat and text_field == "text":
        text_field = "messages"
    got = read_texts(data, text_field, "--data", chat=chat is not None, limit=limit)
    require(got, data, "conversations" if chat else "texts")
    warn_skipped(got)

    from gristmill.models.runtime import set_torch_threads
    from gristmill.progress import progress_bars

    set_torch_threads(threads)
    try:
        scorer = load_model(model, dtype)
    except (FileNotFoundError, ValueError) as exc:  # ModelNotInstalled is a FileNotFoundError
        fail(f"--model {exc}")
    docs = [ppl.chat_segments(scorer, v, chat) if chat else ppl.text_segments(scorer, v)  # type: ignore[arg-type]
            for v in got.values]
    if not any(docs):
        fail(f"{data}: nothing to score ({'no assistant turn' if chat == 'assistant' else 'no tokens'})")
    used_len, used_stride = ppl.effective_window(scorer, max_length, stride)
    config = {"model": scorer.name, "data": str(data), "field": text_field, "chat": chat, "max_length": used_len,
              "stride": used_stride, "batch_size": batch_size, "dtype": dtype, "limit": limit, "seed": seed}
    run = _start(out_dir, "perplexity", _stem(data), config)
    total = sum(s.hi - s.lo for d in docs for s in d)
    with progress_bars(not quiet and not as_json) as bars:
        task = bars.add_task("perplexity", total=total, unit="tok")
        res = ppl.evaluate_perplexity(scorer, docs, got.ids, used_len, used_stride, batch_size,
                                      on_tokens=lambda k: bars.update(task, advance=k), seed=seed)
    _write_jsonl(run.path / "per_document.jsonl", [asdict(d) for d in res.per_document])
    figures = {**res.figures(), "skipped": len(got.skipped)}
    scored = [d for d in res.per_document if d.perplexity is not None]
    values = [d.perplexity for d in scored]
    run.histogram("Per-document perplexity", values, xlabel="perplexity",
                  note="exp of each document's mean NLL; the corpus figure weights documents by their tokens.")
    run.histogram("Per-document log2 perplexity (bits per token)", [math.log2(v) for v in values],
                  xlabel="bits per token")
    run.histogram("Scored tokens per document", [d.tokens for d in scored], xlabel="tokens")
    by = sorted(scored, key=lambda d: d.perplexity or 0.0)
    texts = dict(zip(got.ids, got.values))

    def show(d: ppl.DocumentPerplexity) -> tuple[str, str]:
        v = texts.get(d.id)
        body = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        return f"{d.id}: {d.perplexity:.1f} ({d.tokens} tok)", body[:400]

    run.samples("Highest-perplexity documents", [show(d) for d in by[::-1][:5]])
    run.samples("Lowest-perplexity documents", [show(d) for d in by[:5]])
    _skipped_item(run, got)
    ci = res.ci95
    _emit(run, figures, as_json, [
        f"[bold]perplexity[/] {res.perplexity:.3f}" + (f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "")
        + f" over {res.tokens:,} tokens of {res.scored_documents:,} documents; model {scorer.name}",
        f"  median document perplexity {_fmt(res.doc_perplexity_median, 2)}; window {used_len}, stride "
        f"{used_stride}; {res.tokens_per_s:,.0f} tok/s"
        + (f"; {len(got.skipped)} record(s) skipped" if got.skipped else ""),
    ])


def eval_generation(
        predictions: Annotated[Path, typer.Option(help="JSONL with predictions (and references when --references "
                                                  "is not given), or a .txt file with one prediction per line.")],
        references: Annotated[Optional[Path], typer.Option(help="References aligned line by line with "
                                                           "--predictions (JSONL or .txt).")] = None,
        pred_field: Annotated[str, typer.Option(help="Prediction field of JSONL input.")] = "prediction",
        ref_field: Annotated[str, typer.Option(help="Reference field of JSONL input (a string or a list of "
                                               "strings).")] = "reference",
        seed: Seed = 0,
        out_dir: EvalOut = None, as_json: Json = False, quiet: Quiet = False) -> None:
    """Score predictions against references: corpus BLEU (sacrebleu, 13a) and chrF, ROUGE-1/2/L F, exact
    match and token F1 (SQuAD normalization); per-example scores in per_example.jsonl."""
    extras.require("eval generation", "sacrebleu")
    from gristmill.evaluate.generation_metrics import evaluate_generation

    got = read_pairs(predictions, references, pred_field, ref_field)
    require(got, predictions, "examples")
    warn_skipped(got)
    preds = [p for p, _ in got.values]
    refs = [r for _, r in got.values]
    config = {"predictions": str(predictions), "references": str(references) if references else None,
              "pred_field": pred_field, "ref_field": ref_field, "seed": seed}
    run = _start(out_dir, "generation", _stem(predictions), config)
    res = evaluate_generation(preds, refs)
    per = res.per_example
    figures: dict[str, Any] = {**res.figures(), "skipped": len(got.skipped)}
    from gristmill.stats import bootstrap  # 95% percentile bootstrap of the mean; None below 2 examples

    figures["ci95"] = {k: bootstrap([float(getattr(e, k)) for e in per], seed=seed).bounds
                       for k in ("rouge1", "rouge2", "rougeL", "exact_match", "token_f1")}
    _write_jsonl(run.path / "per_example.jsonl", [
        {"id": got.ids[e.index], **asdict(e), "prediction": preds[e.index], "reference": refs[e.index]} for e in per])
    run.bars("Corpus scores (0-100)", ["BLEU", "chrF", "ROUGE-1 F", "ROUGE-2 F", "ROUGE-L F", "exact match",
                                       "token F1"],
             [res.bleu["score"], res.chrf["score"], 100 * res.rouge1, 100 * res.rouge2, 100 * res.rougeL,
              100 * res.exact_match, 100 * res.token_f1], xlabel="score",
             note=f"BLEU signature: {res.bleu['signature']}; chrF: {res.chrf['signature']}")
    run.histogram("Per-example ROUGE-L F", [e.rougeL for e in per], xlabel="ROUGE-L F", bins=20)
    run.histogram("Per-example sentence BLEU", [e.bleu for e in per], xlabel="BLEU (effective order)", bins=20)
    run.histogram("Prediction length / reference length (words)",
                  [e.pred_words / e.ref_words for e in per if e.ref_words], xlabel="ratio", bins=20)
    worst = sorted(per, key=lambda e: e.rougeL)[:5]
    run.samples("Lowest ROUGE-L examples", [
        (f"{got.ids[e.index]} (ROUGE-L {e.rougeL:.2f})",
         f"prediction: {preds[e.index][:300]}\nreference: {str(refs[e.index])[:300]}") for e in worst])
    _skipped_item(run, got)
    _emit(run, figures, as_json, [
        f"[bold]{res.examples:,} examples[/]  BLEU {res.bleu['score']:.2f}  chrF {res.chrf['score']:.2f}  "
        f"ROUGE-1 {res.rouge1:.4f}  ROUGE-2 {res.rouge2:.4f}  ROUGE-L {res.rougeL:.4f}  "
        f"EM {res.exact_match:.4f}  F1 {res.token_f1:.4f}",
        f"  BLEU signature {res.bleu['signature']}" + (f"; {len(got.skipped)} skipped" if got.skipped else ""),
    ])


def eval_diversity(
        data: Dataset,
        text_field: TextField = "text",
        sample_size: Annotated[int, typer.Option(min=2, help="Texts sampled for self-BLEU, embeddings and "
                                                 "Vendi.")] = 500,
        seed: Seed = 0,
        no_embed: Annotated[bool, typer.Option("--no-embed", help="Skip the MiniLM embedding figures.")] = False,
        limit: Limit = None, threads: Threads = None,
        out_dir: EvalOut = None, as_json: Json = False, quiet: Quiet = False) -> None:
    """Diversity of a set of texts: distinct-1/2/3, self-BLEU, compression ratio, embedding distances, Vendi
    score, length distribution."""
    extras.require("eval diversity", "sacrebleu", *([] if no_embed else ["torch", "transformers"]))
    from gristmill.evaluate.diversity import evaluate_diversity

    got = read_texts(data, text_field, "--data", limit=limit)
    require(got, data, "texts")
    warn_skipped(got)
    if not no_embed:
        from gristmill.models.runtime import set_torch_threads

        set_torch_threads(threads)
    config = {"data": str(data), "field": text_field, "sample_size": sample_size, "seed": seed,
              "embed": not no_embed, "limit": limit}
    run = _start(out_dir, "diversity", _stem(data), config)
    res = evaluate_diversity(got.values, sample_size=sample_size, seed=seed, embed=not no_embed)
    figures = {**res.figures(), "skipped": len(got.skipped)}
    run.bars("Distinct-n", ["distinct-1", "distinct-2", "distinct-3"], [res.distinct_1, res.distinct_2, res.distinct_3],
             xlabel="unique / all n-grams (higher is more varied)")
    run.histogram("Length distribution", res.lengths, xlabel="words per text")
    if res.self_bleu_scores:
        run.histogram("Self-BLEU of each sampled text", res.self_bleu_scores,
                      xlabel="sentence BLEU against the rest of the sample (lower is more varied)")
    vendi = [("Vendi (unigram+bigram counts)", res.vendi_ngram)]
    if res.vendi_embedding is not None:
        vendi.append(("Vendi (MiniLM embeddings)", res.vendi_embedding))
    run.bars(f"Vendi score (effective number of distinct texts among {res.sample})", [k for k, _ in vendi],
             [v for _, v in vendi], xlabel="Vendi score",
             note="Friedman & Dieng 2023: exp of the entropy of the eigenvalues of K/n, K the cosine kernel.")
    if res.note:
        run.text("Note", res.note)
    _skipped_item(run, got)
    _emit(run, figures, as_json, [
        f"[bold]{res.texts:,} texts[/]  distinct-1/2/3 {res.distinct_1:.3f} / {res.distinct_2:.3f} / "
        f"{res.distinct_3:.3f}  compression ratio {res.compression_ratio:.3f}",
        f"  sample {res.sample}: self-BLEU {_fmt(res.self_bleu, 2)}  Vendi (n-grams) {res.vendi_ngram:.2f}  "
        f"Vendi (embeddings) {_fmt(res.vendi_embedding, 2)}  mean pairwise distance {_fmt(res.embedding_distance)}",
        f"  words per text: mean {res.words_mean:.1f}, median {res.words_median:.0f}, 5-95% "
        f"{res.words_p5:.0f}-{res.words_p95:.0f}" + (f"\n  {res.note}" if res.note else ""),
    ])


_ORDER_NAMES = {1: "unigram", 2: "bigram", 3: "trigram"}


def eval_divergence(
        data: DatasetA,
        other: Annotated[Path, typer.Option(help="Dataset B.")],
        text_field: FieldOfA = "text",
        other_field: Annotated[Optional[str], typer.Option(help="Text field of B.")] = None,
        max_n: Annotated[int, typer.Option(min=1, max=5, help="Compare 1-grams up to these n-grams.")] = 2,
        alpha: Annotated[float, typer.Option(help="Additive smoothing of the KL figures (JS is unsmoothed).")] = 0.01,
        top: Annotated[int, typer.Option(min=1, help="N-grams in the top-contributors tables.")] = 20,
        limit: EachLimit = None,
        out_dir: EvalOut = None, as_json: Json = False, quiet: Quiet = False) -> None:
    """KL(A||B), KL(B||A) and Jensen-Shannon divergence (bits) between the n-gram distributions of two
    datasets, with the n-grams that differ most."""
    from gristmill.evaluate.diversity import ngram_counts
    from gristmill.evaluate.divergence import divergence, kl_by_alpha

    if not alpha > 0:
        fail(f"--alpha must be > 0, not {alpha}")
    a = read_texts(data, text_field, "--data", limit=limit)
    b = read_texts(other, other_field or text_field, "--other", limit=limit)
    require(a, data, "texts")
    require(b, other, "texts")
    warn_skipped(a)
    warn_skipped(b)
    config = {"data": str(data), "other": str(other), "field": text_field, "other_field": other_field or text_field,
              "max_n": max_n, "alpha": alpha, "top": top, "limit": limit}
    run = _start(out_dir, "divergence", f"{_stem(data)}-vs-{_stem(other)}", config)
    figures: dict[str, Any] = {"texts_a": len(a.values), "texts_b": len(b.values), "alpha": alpha, "units": "bits",
                               "skipped_a": len(a.skipped), "skipped_b": len(b.skipped)}
    lines = [f"[bold]A[/] {data} ({len(a.values):,} texts)  [bold]B[/] {other} ({len(b.values):,} texts); bits"]
    for n in range(1, max_n + 1):
        name = _ORDER_NAMES.get(n, f"{n}-gram")
        ca, cb = ngram_counts(a.values, n), ngram_counts(b.values, n)
        if not ca or not cb:
            figures[name] = None
            lines.append(f"  {name}: no {n}-grams in {'A' if not ca else 'B'}")
            continue
        d = divergence(ca, cb, n, alpha, top)
        figures[name] = d.figures()
        lines.append(f"  {name:<8} KL(A||B) {d.kl_ab:.4f}  KL(B||A) {d.kl_ba:.4f}  JS {d.js:.4f}  "
                     f"(shared types {d.shared_types:,} of {d.types_a:,} / {d.types_b:,})")
        run.table(f"Top {name}s by contribution to JS", ["n-gram", "count A", "count B", "JS term", "KL(A||B) term",
                                                         "KL(B||A) term"],
                  [[c.ngram, c.count_a, c.count_b, f"{c.js:.5f}", f"{c.kl_ab:.5f}", f"{c.kl_ba:.5f}"] for c in d.top],
                  note="Pointwise terms in bits; a KL term is negative where the n-gram is rarer in the first "
                       "distribution than in the second.")
        run.bars(f"Top {name}s: JS contribution", [f"{c.ngram} ({'A' if c.count_a > c.count_b else 'B'})"
                                                   for c in d.top], [c.js for c in d.top], xlabel="bits",
                 note="(A) / (B): the dataset where the n-gram is more frequent.")
        run.table(f"{name.capitalize()} KL by smoothing alpha", ["alpha", "KL(A||B)", "KL(B||A)"],
                  [[f"{al:g}", f"{x:.4f}", f"{y:.4f}"] for al, x, y in kl_by_alpha(ca, cb)],
                  note="KL depends on the smoothing of n-grams missing from one side; JS does not.")
    names = [k for k in (_ORDER_NAMES.get(n, f"{n}-gram") for n in range(1, max_n + 1)) if figures.get(k)]
    if not names:
        fail("no n-grams to compare in one of the datasets")
    run.bars("Jensen-Shannon divergence by n-gram order", names, [figures[k]["js"] for k in names],
             xlabel="bits (0 = same distribution, 1 = disjoint)")
    for label, got, path in (("A", a, data), ("B", b, other)):
        if got.skipped:
            run.table(f"Skipped records of {label}", ["file:line: reason"], [[s] for s in got.skipped[:500]],
                      note=f"{len(got.skipped)} record(s) of {path} skipped")
    _emit(run, figures, as_json, lines)


def eval_bias(
        model: CausalLM = None,
        data: CrowsPairs = None,  # type: ignore[assignment]
        limit: PairLimit = None,
        batch_size: SentenceBatch = 32,
        dtype: EvalDtype = "float32",
        out_path: FiguresFile = None,
        old_out: OutFileAsOut = None,
        threads: Threads = None, quiet: Quiet = False) -> None:
    """Score a causal LM on CrowS-Pairs: the share of pairs whose more stereotyping sentence is more likely."""
    extras.require("eval bias", "torch", "transformers", "gguf", "scipy")
    from rich.table import Table

    from gristmill.evaluate import crows_pairs
    from gristmill.train.config import resolve_dtype

    dtype = resolve_dtype(dtype)
    if old_out is not None:
        deprecated("--out FILE", "--out-file FILE (--out names a run directory in every command)")
        out_path = out_path or old_out
    if model and not Path(model).exists():
        fail(f"--model {model}: no such file or directory")
    from gristmill.models.runtime import set_torch_threads

    set_torch_threads(threads)
    try:
        result = crows_pairs.evaluate(model, data, limit, batch_size, dtype, progress=not quiet)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    table = Table("bias type", "pairs", "stereotyped", "95% CI", box=None, pad_edge=False,
                  title=f"CrowS-Pairs: {result['model']}", title_justify="left")
    for name, block in [("all", result), *result["by_bias_type"].items(), *(
            (f"direction: {d}", b) for d, b in result["by_direction"].items())]:
        ci = block.get("ci95")
        table.add_row(name, f"{block['pairs']:,}", f"{100 * block['pct_stereotype']:.1f}%",
                      f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}%" if ci else "-")
    out.print(table)
    out.print(f"{result['tokens']:,} tokens scored in {result['seconds']:.1f}s (model load {result['load_seconds']:.1f}s); "
              "50% is unbiased, higher prefers stereotypes.")
    if out_path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        out.print(f"figures: {out_path}")


def register(app: typer.Typer) -> None:
    """Add ``perplexity``, ``generation``, ``diversity``, ``divergence`` and ``bias`` to ``gristmill eval``."""
    app.command("perplexity")(eval_perplexity)
    app.command("generation")(eval_generation)
    app.command("diversity")(eval_diversity)
    app.command("divergence")(eval_divergence)
    app.command("bias")(eval_bias)
