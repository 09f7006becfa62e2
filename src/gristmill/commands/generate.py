"""``gristmill generate``: continue prompts with a from-scratch LM, a transformers model or a GGUF.

``--model`` is a ``gristmill train lm`` model directory (or its run directory, which
holds ``model/``), a transformers causal-LM directory, or a ``.gguf`` file (converted
once to a transformers directory in the model cache). Prompts come from ``--prompt``
(repeatable) and ``--prompts FILE`` (one per line, or JSONL with the prompt in
``--field``); with none, one empty prompt (an unconditional sample). Writes one JSON line
per generation: ``{"prompt", "sample", "text", "strategy", ...}`` to ``--out-file`` or stdout
(``--out FILE``, the old spelling, still works with a note).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gristmill import extras
from gristmill.commands.common import (BatchSize, Beams, Field, MaxNewTokens, Model, OutFile, OutFileAsOut, Quiet,
                                       Seed, Strategy, Temperature, Threads, TopK, TopP, deprecated, described, fail,
                                       out)

GenerationsFile = described(OutFile, "Output file: JSONL, one line per generation (default: stdout).")
Sequences = described(BatchSize, "Examples per batch: sequences generated at once.")
GenerateModel = described(Model, "Model to start from: a train-lm model or run directory, a transformers directory, "
                                 "or a .gguf file.")
PromptField = described(Field, "Field holding the text of each JSONL record of --prompts: the prompt.")

__all__ = ["register"]

_OPTION_OF = {"strategy": "--strategy", "temperature": "--temperature", "top_k": "--top-k", "top_p": "--top-p",
              "num_beams": "--beams", "length_penalty": "--length-penalty", "max_new_tokens": "--max-new-tokens"}


def _read_prompts(path: Path, field: str) -> list[str]:
    """Prompts of ``path`` through :mod:`gristmill.io`: one per non-empty line, or (``.jsonl``, ``.json``,
    ``.ndjson``, also ``.gz`` / ``.zst``) the string ``field`` of each JSON object. A bad line exits 2
    with its ``file:line``."""
    from gristmill.io.base import Opened, Progress, ReaderOptions, read_lines, size_reason, utf8_reason
    from gristmill.io.jsonl import iter_json
    from gristmill.io.readers import READ_ERRORS, container_of

    if not path.is_file():
        fail(f"--prompts: {path}: no such file")
    limit = ReaderOptions().max_record_bytes
    prompts: list[str] = []
    try:
        if container_of(path) != "jsonl":
            with Opened(path) as f:
                for n, line, size in read_lines(f.stream, limit):
                    if size:
                        fail(f"--prompts: {path}:{n}: {size_reason(size, limit)}")
                    try:
                        text = line.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n")
                    except UnicodeDecodeError as exc:
                        fail(f"--prompts: {path}:{n}: {utf8_reason(exc)}")
                    if text.strip():
                        prompts.append(text)
            return prompts
        for item in iter_json(path, limit, Progress()):
            if not isinstance(item, tuple):  # a BadRecord: not JSON, not an object, too long
                fail(f"--prompts: {item.source}:{item.line}: {item.reason}")
            n, row = item
            if not isinstance(row.get(field), str):
                fail(f"--prompts: {path}:{n}: no string field {field!r}")
            prompts.append(row[field])
    except READ_ERRORS as exc:  # a truncated .gz / .zst, an I/O error
        fail(f"--prompts: {path}: unreadable ({exc})")
    return prompts


def _model_kind(model: Path) -> tuple[str, Path]:
    """``("lm", dir)``, ``("hf", dir)`` or ``("gguf", file)``; fails with a located message otherwise."""
    from gristmill.train.lm import TrainedLM

    if model.is_file() and model.suffix.lower() == ".gguf":
        return "gguf", model
    if model.is_dir():
        for d in (model, model / "model"):
            if TrainedLM.is_model_dir(d):
                return "lm", d
        if (model / "config.json").is_file():
            return "hf", model
        fail(f"--model: {model}: not a train-lm model directory, transformers directory (config.json) or .gguf")
    fail(f"--model: {model}: no such directory or .gguf file")


def generate_cmd(
    model: GenerateModel,
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", help="A prompt (repeatable).")] = None,
    prompts_file: Annotated[Optional[Path], typer.Option("--prompts", help="Prompts: one per line, or JSONL.")] = None,
    field: PromptField = "prompt",
    strategy: Strategy = "sample",
    temperature: Temperature = 1.0,
    top_k: TopK = 0,
    top_p: TopP = 1.0,
    beams: Beams = 4,
    length_penalty: Annotated[float, typer.Option("--length-penalty", help="Beam score = logprob / "
                                                  "length**penalty.")] = 1.0,
    max_new_tokens: MaxNewTokens = 128,
    n: Annotated[int, typer.Option("--n", help="Samples per prompt (sample strategy).")] = 1,
    seed: Seed = 0,
    batch_size: Sequences = 64,
    threads: Threads = None,
    out_file: GenerationsFile = None,
    old_out: OutFileAsOut = None,
    quiet: Quiet = False,
) -> None:
    """Continue prompts with a model; one JSON line per generation."""
    extras.require("generate", "torch", "transformers", "tokenizers", "gguf")
    from gristmill.train.decoding import DecodeConfig

    try:
        decode = DecodeConfig(strategy=strategy, temperature=temperature, top_k=top_k, top_p=top_p,
                              num_beams=beams, length_penalty=length_penalty, max_new_tokens=max_new_tokens,
                              seed=seed)
    except ValueError as exc:
        msg = str(exc)
        fail(f"{_OPTION_OF.get(msg.split(' ', 1)[0], 'option')}: {msg}")
    if n < 1:
        fail(f"--n must be >= 1, got {n}")
    if n > 1 and strategy != "sample":
        fail(f"--n {n} needs --strategy sample ({strategy} gives one output per prompt)")
    if old_out is not None:
        deprecated("--out FILE", "--out-file FILE (--out names a run directory in every command)")
        out_file = out_file or old_out
    if out_file is not None and out_file.is_dir():
        fail(f"--out-file: {out_file} is a directory; give a .jsonl file")
    kind, path = _model_kind(Path(model))
    prompts = list(prompt or [])
    if prompts_file is not None:
        prompts += _read_prompts(prompts_file, field)
    if not prompts:
        prompts = [""]
    expanded = [p for p in prompts for _ in range(n)]

    from gristmill.models.runtime import set_torch_threads

    set_torch_threads(threads)
    if kind == "lm":
        from gristmill.train.decoding import generate
        from gristmill.train.lm import TrainedLM

        texts = generate(TrainedLM.load(path), expanded, decode, batch_size=batch_size)
    else:
        from gristmill.train.decoding import generate_hf

        if kind == "gguf":
            from gristmill.models.causal_lm import hf_dir

            path = hf_dir(path)
        texts = generate_hf(path, expanded, decode, batch_size=min(batch_size, 16))
    rows = [{"prompt": p, "sample": i % n, "text": t, "model": str(model), **decode.as_dict()}
            for i, (p, t) in enumerate(zip(expanded, texts))]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if out_file is None:
        sys.stdout.write(lines)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(lines, encoding="utf-8")
    out.print(f"[bold green]done[/] {len(rows)} generations → {out_file}")


def register(app: typer.Typer) -> None:
    """Add the top-level ``generate`` command to ``app``."""
    app.command("generate")(generate_cmd)
