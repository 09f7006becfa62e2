"""``gristmill experiment collapse`` and ``gristmill experiment bias-amplification``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gristmill import extras
from gristmill.commands.common import (EXIT_FAILED, EXIT_INTERRUPTED, BatchSize, Beams, Data, Lr, MaxNewTokens, Out,
                                       Quiet, Resume, Strategy, Temperature, Threads, TopK, TopP, described, fail, out,
                                       setting_option)
from gristmill.train import config as cfg
from gristmill.rundir import NotARunDirectory

DEFAULT_DATA = Path("../shared/data/tinyshakespeare.txt")
STRATEGIES = ("sample", "greedy", "beam")
# What the experiments import: the from-scratch LM (torch, tokenizers) and the intervals (scipy).
EXPERIMENT_MODULES = ("torch", "tokenizers", "scipy")

# Options shared by both commands (typer reads them from the signatures).
DataOpt = described(Data, "Input data: real text, a .txt file, or .jsonl / .jsonl.gz with a 'text' field.")
PresetOpt = Annotated[str, typer.Option(help="Model and data size: tiny (a few minutes on 2 cores) or small; "
                                        "the options below override it.")]
GenerationsOpt = Annotated[Optional[int], typer.Option(min=1, help="Generations including generation 0 "
                                                      "(3: generations 0, 1, 2).")]
SeedsOpt = Annotated[str, typer.Option(help="Comma-separated seeds; figures are mean and 95% t-interval over them.")]
DocCharsOpt = Annotated[Optional[int], typer.Option(min=50, help="Characters per real document (cut at line ends).")]
MaxDocsOpt = Annotated[Optional[int], typer.Option(min=3, help="Use only this many real documents (train + "
                                                   "validation), after shuffling.")]
ValOpt = Annotated[float, typer.Option(min=0.01, max=0.5, help="Share of real documents held out for perplexity.")]
TempOpt = described(Temperature, "Sampling temperature (default: the preset's).")
TopKOpt = described(TopK, "Sample from the k most likely tokens (0: all).")
TopPOpt = described(TopP, "Nucleus sampling mass in (0, 1] (1: off).")
BeamsOpt = described(Beams, "Beams for --strategy beam.")
MaxNewOpt = described(MaxNewTokens, "Most tokens generated per prompt: per document (default: the preset's).")
# The LM's shape and length: train lm's settings (gristmill.train.config.LMConfig), default the preset's.
StepsOpt = setting_option(cfg.STEPS, Optional[int], "steps", help="Optimizer steps: per generation.")
LayerOpt = setting_option(cfg.N_LAYER, Optional[int], "n_layer")
DModelOpt = setting_option(cfg.D_MODEL, Optional[int], "d_model")
HeadOpt = setting_option(cfg.N_HEAD, Optional[int], "n_head")
ContextOpt = setting_option(cfg.CONTEXT, Optional[int], "context")
BatchOpt = described(BatchSize, "Examples per batch: windows per training step (default: the preset's).")
LrOpt = described(Lr, "Peak learning rate (default: the preset's).")
VocabOpt = setting_option(cfg.VOCAB_SIZE, Optional[int], "vocab_size",
                          help="BPE vocabulary size (the tokenizer is trained once on the real training documents "
                               "and kept fixed).")
ThreadsOpt = described(Threads, "torch CPU threads (default: 1).")
ResumeOpt = described(Resume, "Continue the run in --out: skip the (condition, seed, generation) cells already "
                              "finished there (with the same settings).")
CollapseOut = described(Out, "Run directory (default: runs/experiment-collapse-<preset>); a non-empty directory "
                             "gristmill did not make is refused untouched.")
BiasOut = described(Out, "Run directory (default: runs/experiment-bias-amplification-<preset>); a non-empty "
                         "directory gristmill did not make is refused untouched.")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; exits with a located message when malformed."""
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"--seeds: expected comma-separated integers, got {text!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        fail(f"--seeds: expected distinct comma-separated integers, got {text!r}")
    return seeds


def build_spec(*, data: Path, preset: str, generations: int | None, seeds: str, doc_chars: int | None,
               max_docs: int | None, val_fraction: float, conditions: list[Any], keep_real: float,
               prompt_words: int, lm_over: dict[str, Any], threads: int) -> Any:
    """A :class:`~gristmill.experiments.collapse.LoopSpec` from the preset and the explicit options."""
    from gristmill.experiments.collapse import PRESETS, LoopSpec

    if preset not in PRESETS:
        fail(f"--preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    if not data.is_file():
        fail(f"--data {data}: no such file")
    p = PRESETS[preset]
    lm = {**p["lm"], **{k: v for k, v in lm_over.items() if v is not None}}
    if lm["d_model"] % lm["n_head"]:
        fail(f"--d-model ({lm['d_model']}) must be a multiple of --n-head ({lm['n_head']})")
    spec = LoopSpec(data=str(data), conditions=conditions, seeds=parse_seeds(seeds),
                    generations=generations or p["generations"], doc_chars=doc_chars or p["doc_chars"],
                    max_docs=max_docs if max_docs is not None else p["max_docs"], val_fraction=val_fraction,
                    keep_real=keep_real, prompt_words=prompt_words, lm=lm, threads=threads)
    from gristmill.experiments.real_data import read_real

    try:
        real = read_real(spec)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        fail(f"--data {data}: {exc}")
    for s in real.skipped[:5]:
        out.print(f"skipped {s}")
    if len(real.skipped) > 5:
        out.print(f"... {len(real.skipped)} malformed records skipped in all")
    return spec


def decode_settings(preset: str, strategy: str, temperature: float | None, top_k: int | None, top_p: float | None,
                    num_beams: int | None, max_new_tokens: int | None, prompt_words: int, option: str) -> dict[str, Any]:
    from gristmill.experiments.collapse import PRESETS, default_decode

    if strategy not in STRATEGIES:
        fail(f"{option}: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy != "sample" and prompt_words == 0:
        fail(f"{option} {strategy}: deterministic decoding from an empty prompt gives one text; "
             "set --prompt-words (prompts: the first k words of real documents)")
    from gristmill.train.decoding import DecodeConfig

    dec = default_decode(strategy=strategy, temperature=temperature, top_k=top_k, top_p=top_p, num_beams=num_beams,
                         max_new_tokens=max_new_tokens or PRESETS.get(preset, {}).get("max_new_tokens", 128))
    try:
        DecodeConfig(**dec)
    except ValueError as exc:
        fail(f"decoding options: {exc}")
    return dec


def check_resume(run_out: Path, resume: bool, config: dict[str, Any]) -> None:
    from gristmill.experiments.collapse import resume_mismatch

    if resume:
        diff = resume_mismatch(run_out, config)
        if diff:
            fail(f"--resume: {run_out} was run with other settings ({', '.join(diff)}); "
                 "use the same options or another --out")


def print_table(summary: dict[str, Any], metric: str, label: str, digits: int = 2) -> None:
    from rich.table import Table

    from gristmill.experiments.generation_stats import fmt_ci

    gens = sorted({int(g) for by_gen in summary.values() for g in by_gen})
    table = Table("condition", *[f"gen {g}" for g in gens], box=None, pad_edge=False, title=label,
                  title_justify="left")
    for cond, by_gen in summary.items():
        cells = []
        for g in gens:
            a = by_gen.get(str(g), {}).get(metric)
            cells.append(fmt_ci({"mean": a["mean"], "lo": a["ci95"][0], "hi": a["ci95"][1], "n": a["n"]}, digits) if a else "-")
        table.add_row(cond, *cells)
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add ``collapse`` and ``bias-amplification`` to ``app``."""

    @app.command("collapse")
    def collapse(data: DataOpt = DEFAULT_DATA, preset: PresetOpt = "tiny", generations: GenerationsOpt = None,
                 seeds: SeedsOpt = "0",
                 regimes: Annotated[str, typer.Option(help="Comma-separated: replace (only the newest synthetic "
                                                      "data), accumulate (real + all earlier synthetic), keep-real "
                                                      "(a share of real + newest synthetic).")] = "replace,accumulate,keep-real",
                 keep_real: Annotated[float, typer.Option(min=0.0, max=1.0, help="keep-real: share of the real "
                                                          "documents kept in each generation's training set.")] = 0.1,
                 strategy: Strategy = "sample",
                 temperature: TempOpt = None, top_k: TopKOpt = None, top_p: TopPOpt = None, num_beams: BeamsOpt = None,
                 max_new_tokens: MaxNewOpt = None,
                 prompt_words: Annotated[int, typer.Option(min=0, help="Prompt words: each sampled document "
                                                           "starts from the first k words of a real one (0: empty "
                                                           "prompt).")] = 0,
                 doc_chars: DocCharsOpt = None, max_docs: MaxDocsOpt = None, val_fraction: ValOpt = 0.1,
                 steps: StepsOpt = None, n_layer: LayerOpt = None, d_model: DModelOpt = None, n_head: HeadOpt = None,
                 context: ContextOpt = None, batch_size: BatchOpt = None, lr: LrOpt = None, vocab_size: VocabOpt = None,
                 tail_n: Annotated[int, typer.Option(min=1, max=5, help="Tail coverage: word n-gram size.")] = 2,
                 tail_max: Annotated[int, typer.Option(min=1, help="Tail coverage: rare = seen 1..N times in the "
                                                       "real training data.")] = 3,
                 threads: ThreadsOpt = 1,
                 out_dir: CollapseOut = None, resume: ResumeOpt = False, quiet: Quiet = False) -> None:
        """Recursive training on generated text: perplexity on held-out real text, diversity and tail coverage
        per generation, for the replace / accumulate / keep-real regimes."""
        extras.require("experiment collapse", *EXPERIMENT_MODULES)
        from gristmill.experiments.collapse import REGIMES, Condition, run_collapse

        names = [r.strip() for r in regimes.split(",") if r.strip()]
        bad = [r for r in names if r not in REGIMES]
        if bad or not names or len(set(names)) != len(names):
            fail(f"--regimes: expected distinct names from {', '.join(REGIMES)}, got {regimes!r}")
        dec = decode_settings(preset, strategy, temperature, top_k, top_p, num_beams, max_new_tokens, prompt_words,
                              "--strategy")
        spec = build_spec(data=data, preset=preset, generations=generations, seeds=seeds, doc_chars=doc_chars,
                          max_docs=max_docs, val_fraction=val_fraction,
                          conditions=[Condition(r, r, dec) for r in names], keep_real=keep_real,
                          prompt_words=prompt_words, threads=threads,
                          lm_over={"steps": steps, "n_layer": n_layer, "d_model": d_model, "n_head": n_head,
                                   "context": context, "batch_size": batch_size, "lr": lr, "vocab_size": vocab_size})
        run_out = out_dir or Path("runs") / f"experiment-collapse-{preset}"
        check_resume(run_out, resume, {**spec.to_json(), "tail_n": tail_n, "tail_max": tail_max})
        try:
            report, summary = run_collapse(spec, run_out, resume=resume, progress=not quiet, tail_n=tail_n,
                                           tail_max=tail_max)
        except NotARunDirectory as exc:
            fail(str(exc))
        except ValueError as exc:
            fail(str(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            fail("interrupted; run the same command with --resume to continue", EXIT_INTERRUPTED)
        print_table(summary, "perplexity", "held-out real perplexity (mean ± 95% CI half-width)")
        print_table(summary, "tail_coverage", f"tail coverage (share of the real data's rare word {tail_n}-grams)", 4)
        out.print(f"report: {report}")

    @app.command("bias-amplification")
    def bias_amplification(data: DataOpt = DEFAULT_DATA, preset: PresetOpt = "tiny", generations: GenerationsOpt = None,
                           seeds: SeedsOpt = "0",
                           strategies: Annotated[str, typer.Option(help="Comma-separated decoding strategies to "
                                                                   "compare (sample, greedy, beam).")] = "greedy,sample",
                           regime: Annotated[str, typer.Option(help="replace, accumulate or keep-real.")] = "replace",
                           keep_real: Annotated[float, typer.Option(min=0.0, max=1.0, help="keep-real: share of "
                                                                    "real documents kept.")] = 0.1,
                           temperature: TempOpt = None, top_k: TopKOpt = None, top_p: TopPOpt = None,
                           num_beams: BeamsOpt = None, max_new_tokens: MaxNewOpt = None,
                           prompt_words: Annotated[int, typer.Option(min=1, help="Prompt words: each sampled "
                                                                     "document starts from the first k words of a "
                                                                     "real one (the same for every strategy).")] = 8,
                           doc_chars: DocCharsOpt = None, max_docs: MaxDocsOpt = None, val_fraction: ValOpt = 0.1,
                           steps: StepsOpt = None, n_layer: LayerOpt = None, d_model: DModelOpt = None,
                           n_head: HeadOpt = None, context: ContextOpt = None, batch_size: BatchOpt = None,
                           lr: LrOpt = None, vocab_size: VocabOpt = None, threads: ThreadsOpt = 1,
                           out_dir: BiasOut = None, resume: ResumeOpt = False, quiet: Quiet = False) -> None:
        """Gender statistics of generated text across generations, greedy (mode-seeking) vs sampled decoding."""
        extras.require("experiment bias-amplification", *EXPERIMENT_MODULES)
        from gristmill.experiments.bias_amplification import run_bias_amplification
        from gristmill.experiments.collapse import REGIMES, Condition

        if regime not in REGIMES:
            fail(f"--regime: expected one of {', '.join(REGIMES)}, got {regime!r}")
        names = [s.strip() for s in strategies.split(",") if s.strip()]
        if not names or len(set(names)) != len(names):
            fail(f"--strategies: expected distinct names from {', '.join(STRATEGIES)}, got {strategies!r}")
        conditions = [Condition(s, regime, decode_settings(preset, s, temperature, top_k, top_p, num_beams,
                                                           max_new_tokens, prompt_words, "--strategies"))
                      for s in names]
        spec = build_spec(data=data, preset=preset, generations=generations, seeds=seeds, doc_chars=doc_chars,
                          max_docs=max_docs, val_fraction=val_fraction, conditions=conditions, keep_real=keep_real,
                          prompt_words=prompt_words, threads=threads,
                          lm_over={"steps": steps, "n_layer": n_layer, "d_model": d_model, "n_head": n_head,
                                   "context": context, "batch_size": batch_size, "lr": lr, "vocab_size": vocab_size})
        run_out = out_dir or Path("runs") / f"experiment-bias-amplification-{preset}"
        check_resume(run_out, resume, spec.to_json())
        try:
            report, summary = run_bias_amplification(spec, run_out, resume=resume, progress=not quiet)
        except NotARunDirectory as exc:
            fail(str(exc))
        except ValueError as exc:
            fail(str(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            fail("interrupted; run the same command with --resume to continue", EXIT_INTERRUPTED)
        print_table(summary, "female_share", "female share of gendered terms", 3)
        print_table(summary, "occupation_female_share", "female share in occupation contexts", 3)
        out.print(f"report: {report}")
