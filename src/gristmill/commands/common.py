"""What every command shares: exit codes, :func:`fail`, the consoles, the common options, run directories.

Exit codes (the README's table): 0 success; 1 the run failed (an operator error, bad input
under ``--strict``, a full disk, every LLM request failed); 2 nothing ran: the recipe, an
input path or the command line is invalid; 3 the run finished and wrote everything, but a
gate failed; 130 interrupted.

Options that several commands take are declared here once, as ``Annotated`` aliases, so
each means the same everywhere (name, short flag, type, validation): :data:`Quiet`,
:data:`Out` (always a run directory), :data:`OutFile` (``--out-file``: one output file),
:data:`Resume`, :data:`Json`, :data:`Limit`, :data:`Data`, :data:`Dev`, :data:`Field`,
:data:`InputFormat`, the decoding options (:data:`Strategy`, :data:`Temperature`, ...), and
the settings of :mod:`gristmill.train.config` that other commands take too (:data:`Seed`,
:data:`Threads`, :data:`BatchSize`, :data:`Lr`, :data:`Dtype`, :data:`MaxLength`,
:data:`Model`, ...), made from those settings' declarations by :func:`setting_option`. A command
may say more in the help of one (:func:`described`; by convention the shared help's first words,
then a colon and the detail), never change what it is; each carries a mark of its declaration
(:func:`shared`), which the vocabulary test reads. The trainers take one option per setting of
their config class (:func:`config_command`). Old spellings (``--bf16/--fp32``, ``--out FILE``)
stay as hidden options that print a note (:func:`deprecated`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional, get_args, get_origin, get_type_hints

import typer
from rich.console import Console
from rich.markup import escape

from gristmill.train import config as cfg
from gristmill.train.config import Setting

__all__ = ["EXIT_FAILED", "EXIT_GATE", "EXIT_INTERRUPTED", "EXIT_INVALID", "EXIT_OK", "BatchSize", "Beams",
           "Bf16Flag", "CheckpointEvery", "Data", "Dev", "DevFraction", "Dtype", "EvalEvery", "Field", "InputFormat",
           "Json", "Limit", "Lr", "MaxLength", "MaxNewTokens", "Model", "Out", "OutFile", "OutFileAsOut", "Quiet",
           "Resume", "Seed", "Strategy", "Temperature", "Threads", "TopK", "TopP", "config_command", "config_error",
           "config_options", "create_run", "deprecated", "described", "err", "fail", "out", "setting_option", "shared"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_GATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Print ``message`` as one error line on stderr and exit with ``code`` (default 2: invalid input,
    nothing ran)."""
    if sys.stderr.isatty():  # escaped: messages quote values such as "[a, b]", which are not markup
        err.print(f"[bold red]error[/]: {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    else:
        print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def create_run(path: Path, kind: str, config: dict[str, Any], resume: bool = False) -> Any:
    """:meth:`gristmill.rundir.RunDir.create`, failing with one line (exit 2) on a directory gristmill
    did not make or cannot write."""
    from gristmill.rundir import RunDir

    try:
        return RunDir.create(path, kind=kind, config=config, resume=resume)
    except OSError as exc:
        fail(str(exc) if exc.filename is None else f"--out {path}: cannot create the run directory ({exc.strerror})")


# ---- the common options -----------------------------------------------------------------------

SHARED_MARK = "gristmill_shared"  # attribute of a shared option's OptionInfo: which declaration it is


def shared(key: str, option: Any) -> Any:
    """Mark ``option`` (``Annotated[type, typer.Option(...)]``) as the shared declaration ``key``: every
    command that uses it, through :func:`described` or not, declares the same option."""
    setattr(get_args(option)[1], SHARED_MARK, key)
    return option


def described(option: Any, help: str, repeatable: bool = False) -> Any:
    """``option`` (one of the aliases below) with another help text: the same flag, type and checks
    (``repeatable``: a list of its values, the option given once per value)."""
    base, info = get_args(option)
    info = copy.copy(info)
    info.help = help
    return Annotated[list[base] if repeatable else base, info]  # type: ignore[valid-type]


def _names(setting: Setting, field: str = "") -> tuple[str, ...]:
    return setting.option or (f"--{field.replace('_', '-')}",)


def _checker(setting: Setting) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        problem = setting.problem(value)
        if problem:
            raise typer.BadParameter(problem)
        return value

    return check


def setting_option(setting: Setting, type_: Any, field: str = "", help: str | None = None) -> Any:
    """The option of a :class:`~gristmill.train.config.Setting` (its names, or ``--<field>``; its help
    unless ``help``; its bounds and choices checked as the value is parsed), for values of ``type_``."""
    names = _names(setting, field)
    info = typer.Option(*names, help=help or setting.help, callback=_checker(setting))
    return shared(f"setting:{names[0].split('/')[0]}", Annotated[type_, info])


Quiet = shared("quiet", Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (errors and results "
                                                     "still print).")])
Out = shared("out", Annotated[Optional[Path], typer.Option("--out", help="Run directory (default: runs/<command>-"
                                                          "<input name>); a non-empty directory gristmill did not "
                                                          "make is refused untouched.")])
OutFile = shared("out-file", Annotated[Optional[Path], typer.Option("--out-file", help="Output file: write the "
                                                                    "result to this file.")])
Resume = shared("resume", Annotated[bool, typer.Option("--resume", help="Continue the run in --out where it stopped "
                                                       "(its newest complete checkpoint, or the parts already "
                                                       "finished); without it, the run starts over.")])
Json = shared("json", Annotated[bool, typer.Option("--json", help="Print only the figures, as JSON, to stdout.")])
Limit = shared("limit", Annotated[Optional[int], typer.Option("--limit", min=1, help="Read only the first N "
                                                              "records.")])
Data = shared("data", Annotated[Path, typer.Option("--data", help="Input data: a file gristmill reads (JSONL, .gz "
                                                   "/ .zst, Parquet, CSV or text).")])
Dev = shared("dev", Annotated[Optional[Path], typer.Option("--dev", help="Dev data: held-out examples of the "
                                                           "training data's format.")])
Field = shared("field", Annotated[str, typer.Option("--field", help="Field holding the text of each JSONL / CSV "
                                                    "record.")])
InputFormat = shared("format", Annotated[Optional[str], typer.Option("--format", help="Input format (default: from "
                                                                     "the file name).")])

# Settings of gristmill.train.config that commands other than the trainers take too.
Seed = setting_option(cfg.SEED, int, "seed")
Threads = setting_option(cfg.THREADS, Optional[int], "threads")
BatchSize = setting_option(cfg.BATCH_SIZE, int, "batch_size")
Lr = setting_option(cfg.LR, Optional[float], "lr")
CheckpointEvery = setting_option(cfg.CHECKPOINT_EVERY, int, "checkpoint_every")
EvalEvery = setting_option(cfg.EVAL_EVERY, int, "eval_every")
DevFraction = setting_option(cfg.DEV_FRACTION, float, "dev_fraction")
Dtype = setting_option(cfg.DTYPE, str, "dtype")
MaxLength = setting_option(cfg.MAX_LENGTH, int, "max_length")
Model = setting_option(cfg.MODEL, Optional[str], "model")

# Decoding (generate, experiments); gristmill.train.decoding.DecodeConfig checks them again.
DECODE_STRATEGIES = ("greedy", "sample", "beam")
Strategy = setting_option(Setting("Decoding: greedy, sample or beam.", choices=DECODE_STRATEGIES), str, "strategy")
Temperature = setting_option(Setting("Sampling temperature.", gt=0), float, "temperature")
TopK = setting_option(Setting("Sample from the k most likely tokens (0: all).", ge=0), int, "top_k")
TopP = setting_option(Setting("Nucleus sampling mass in (0, 1] (1: off).", gt=0, le=1), float, "top_p")
Beams = setting_option(Setting("Beams for --strategy beam.", option=("--beams", "--num-beams"), ge=1), int)
MaxNewTokens = setting_option(Setting("Most tokens generated per prompt.", ge=1), int, "max_new_tokens")

# Old spellings, hidden from --help, kept working with a note (see :func:`deprecated`).
OutFileAsOut = Annotated[Optional[Path], typer.Option("--out", hidden=True, help="Deprecated: --out-file.")]
Bf16Flag = Annotated[Optional[bool], typer.Option("--bf16/--fp32", hidden=True, help="Deprecated: --dtype.")]


def deprecated(old: str, new: str) -> None:
    """One line on stderr: ``old`` still works but is spelled ``new`` now."""
    err.print(f"note: {old} is deprecated; use {new}", highlight=False, markup=False, soft_wrap=True)


# ---- options from a config class ----------------------------------------------------------------

def _cli_type(hint: Any) -> Any:
    """The option type of a config field: a tuple of strings is given comma-separated."""
    return str if get_origin(hint) is tuple else hint


def config_options(cls: type) -> dict[str, tuple[Any, Any, str]]:
    """``field -> (Annotated option, default, first option name)`` for every command-line setting of ``cls``."""
    hints = get_type_hints(cls)
    options = {}
    for f in dataclass_fields(cls):
        s = f.metadata.get("setting")
        if s is None or not s.cli:
            continue
        default = ",".join(f.default) if isinstance(f.default, tuple) else f.default
        option = setting_option(s, _cli_type(hints[f.name]), f.name)
        options[f.name] = (option, default, _names(s, f.name)[0].split("/")[0])
    return options


def config_error(cls: type, exc: ValueError) -> str:
    """``exc`` of making a ``cls`` with its field names written as option names (``--batch-size``)."""
    names = {name: opt for name, (_, _, opt) in config_options(cls).items()}
    return re.sub(r"(?<![\w-])[a-z][a-z0-9_]*(?![\w-])", lambda m: names.get(m.group(0), m.group(0)), str(exc))


def config_command(cls: type, *, skip: Iterable[str] = (), help: Mapping[str, str] | None = None,
                   defaults: Mapping[str, Any] | None = None, bf16_flag: bool = False) -> Callable[[Any], Any]:
    """Decorate a command whose parameter ``config`` is a ``cls`` (a :mod:`gristmill.train.config` class):
    typer sees one option per setting of ``cls`` instead (its declaration; ``help`` and ``defaults``
    per field change only this command's help and default; ``skip``: fields left at the class default),
    and the command gets the ``cls`` made from them; a value the config refuses exits 2 naming its option.
    ``bf16_flag``: the old ``--bf16/--fp32`` still sets ``dtype`` (hidden; a note says so)."""
    help, defaults, skip = dict(help or {}), dict(defaults or {}), set(skip)

    def decorate(func: Any) -> Any:
        options = {k: v for k, v in config_options(cls).items() if k not in skip}
        sig = inspect.signature(func, eval_str=True)
        params: list[inspect.Parameter] = []
        for p in sig.parameters.values():
            if p.name != "config":
                params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
                continue
            for name, (option, default, _) in options.items():
                if name in help:
                    option = described(option, help[name])
                params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option,
                                                default=defaults.get(name, default)))
            if bf16_flag:
                params.append(inspect.Parameter("bf16_flag", inspect.Parameter.KEYWORD_ONLY, annotation=Bf16Flag,
                                                default=None))
        hints = get_type_hints(cls)

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in options}
            flag = kwargs.pop("bf16_flag", None)
            if flag is not None:
                deprecated("--bf16" if flag else "--fp32", f"--dtype {'bfloat16' if flag else 'float32'}")
                values["dtype"] = "bfloat16" if flag else "float32"
            for name, value in values.items():
                if get_origin(hints[name]) is tuple and isinstance(value, str):
                    values[name] = tuple(t.strip() for t in value.split(",") if t.strip())
            try:
                config = cls(**values)
            except ValueError as exc:
                fail(config_error(cls, exc))
            return func(config=config, **kwargs)

        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate
