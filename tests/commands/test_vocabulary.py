"""One command-line vocabulary: options common to several commands are declared once
(gristmill.commands.common) and mean the same everywhere; one place for exit codes and fail()."""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from gristmill.cli import app
from gristmill.commands import common

SRC = Path(__file__).resolve().parents[2] / "src" / "gristmill"
SHARED = ("--quiet", "--out", "--out-file", "--seed", "--threads", "--resume", "--json", "--limit", "--batch-size",
          "--lr", "--checkpoint-every", "--eval-every", "--bf16/--fp32", "--dev-fraction", "--dtype", "--max-length",
          "--model", "--data", "--dev", "--field", "--format", "--strategy", "--temperature", "--top-k", "--top-p",
          "--beams", "--max-new-tokens", "--epochs", "--steps", "--context", "--layers", "--heads", "--dim",
          "--vocab-size")
TRAINS_OR_GENERATES = ("train", "generate", "experiment", "select")
INFO_ONLY = {("ops",), ("ops", "show")}  # print a listing, nothing else
runner = CliRunner()


def commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command that does work, by its words (``("train", "ner")``)."""
    def walk(cmd: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        subs = getattr(cmd, "commands", None)
        if subs is None and path not in INFO_ONLY:
            yield path, cmd
        for name, sub in (subs or {}).items():
            yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(app), ())


def _declaration(param: Any) -> tuple[Any, ...]:
    return (tuple(param.opts), tuple(param.secondary_opts), param.is_flag, param.min, param.max,
            param.callback is not None)


def test_every_command_takes_quiet() -> None:
    missing = [" ".join(path) for path, cmd in commands() if not any(p.opts == ["--quiet", "-q"] for p in cmd.params)]
    assert not missing, f"commands without -q/--quiet: {missing}"


def test_a_shared_option_is_declared_the_same_everywhere() -> None:
    seen: dict[str, dict[tuple[Any, ...], list[str]]] = {}
    for path, cmd in commands():
        for p in cmd.params:
            name = next((o for o in p.opts if o.startswith("--")), None)
            if name in {s.split("/")[0] for s in SHARED} and not getattr(p, "hidden", False):
                seen.setdefault(name, {}).setdefault(_declaration(p), []).append(" ".join(path))
    assert set(seen) >= {"--quiet", "--out", "--seed", "--threads", "--resume", "--lr", "--batch-size"}
    differing = {name: decls for name, decls in seen.items() if len(decls) > 1}
    assert not differing, differing


def test_shared_options_are_spelled_only_in_common() -> None:
    """No command module declares a shared option itself (typer.Option("--seed", ...)); it uses the alias."""
    offenders = []
    for path in [SRC / "cli.py", *sorted((SRC / "commands").glob("*.py"))]:
        if path.name == "common.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Option":
                if any(k.arg == "hidden" for k in node.keywords):
                    continue  # an old spelling kept working (generate's --out, select's --strategy)
                flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                offenders += [f"{path.name}:{node.lineno}: {f}" for f in flags if f in SHARED or f == "-q"]
    assert not offenders, offenders


def test_one_place_for_exit_codes_and_fail() -> None:
    """EXIT_* and fail() are defined in commands/common.py only; cli.py uses them."""
    defined = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name in ("fail", "_fail"):
                defined.append(f"{path.relative_to(SRC)}: def {node.name}")
            targets = node.targets if isinstance(node, ast.Assign) else []
            for t in targets:
                for n in (t.elts if isinstance(t, ast.Tuple) else [t]):
                    if isinstance(n, ast.Name) and n.id.startswith("EXIT_"):
                        defined.append(f"{path.relative_to(SRC)}: {n.id}")
    assert {d.split(":")[0] for d in defined} == {"commands/common.py"}, defined
    from gristmill import cli

    assert cli.fail is common.fail and cli.EXIT_GATE == common.EXIT_GATE == 3


@pytest.mark.parametrize("args", [
    ["train", "ner", "--train", "missing.conll", "--dev", "missing.conll", "-q"],
    ["train", "classify", "--train", "missing.jsonl", "--dev", "missing.jsonl", "-q"],
    ["generate", "--model", "missing-model", "-q"],
    ["validate", "missing.yaml", "-q"],
])
def test_quiet_is_accepted_where_it_was_missing(args: list[str], tmp_path: Path) -> None:
    res = runner.invoke(app, [a if not a.startswith("missing") else str(tmp_path / a) for a in args])
    assert res.exit_code == 2, res.output
    assert "No such option" not in res.output


@pytest.mark.parametrize("args", [
    ["train", "ner", "--train", "T", "--dev", "T", "--lr", "0"],
    ["train", "lm", "--data", "T", "--lr", "-1"],
    ["train", "sft", "T", "--lr", "0"],
    ["experiment", "collapse", "--lr", "0"],
])
def test_lr_must_be_positive_everywhere(args: list[str], tmp_path: Path) -> None:
    data = tmp_path / "t.txt"
    data.write_text("x\n", encoding="utf-8")
    res = runner.invoke(app, [str(data) if a == "T" else a for a in args])
    assert res.exit_code == 2 and "--lr" in res.output and "must be > 0" in res.output, res.output


@pytest.mark.parametrize("args", [
    ["train", "ner", "--train", "T", "--dev", "T", "--threads", "0"],
    ["eval", "diversity", "--data", "T", "--threads", "0"],
    ["select", "--data", "T", "--budget", "1", "--strategy", "random", "--threads", "0"],
    ["experiment", "collapse", "--threads", "0"],
])
def test_threads_is_at_least_one_everywhere(args: list[str], tmp_path: Path) -> None:
    data = tmp_path / "t.jsonl"
    data.write_text('{"text": "x"}\n', encoding="utf-8")
    res = runner.invoke(app, [str(data) if a == "T" else a for a in args])
    assert res.exit_code == 2 and "--threads" in res.output, res.output


def test_described_keeps_the_declaration_and_changes_the_help() -> None:
    from typing import get_args

    other = common.described(common.Seed, "Sampling seed.")
    base, info = get_args(other)
    _, shared = get_args(common.Seed)
    assert base is int and info.help == "Sampling seed." and info.default == shared.default == "--seed"
    assert shared.help != "Sampling seed."  # the shared alias is untouched


# -- one name, one meaning ---------------------------------------------------------------------------


def _value_type(param: Any) -> Any:
    """The type of one value of ``param`` (Optional and repeatable options unwrapped)."""
    import typing

    t = param.type_descriptor.annotation
    while typing.get_origin(t) in (typing.Union, types.UnionType, list):
        t = next(a for a in typing.get_args(t) if a is not type(None))
    return t


def _prefix(help: str | None) -> str:
    """The help text up to its first ``:``, ``(``, ``;``, ``,`` or ``.``: what the option is."""
    return re.split(r"[:(;,.]", help or "", maxsplit=1)[0].strip().lower()


def _options() -> dict[str, list[tuple[str, Any]]]:
    """Every visible option by each of its long names: ``[(command, param)]``."""
    found: dict[str, list[tuple[str, Any]]] = {}
    for path, cmd in commands():
        for p in cmd.params:
            if p.param_type_name != "option" or p.hidden:
                continue
            for name in p.opts:
                if name.startswith("--") and name != "--help":
                    found.setdefault(name, []).append((" ".join(path), p))
    return found


def test_an_option_name_means_one_thing_in_every_command() -> None:
    """An option name several commands use has one value type, one flag form, and one meaning: the same
    shared declaration (common.py, train/config.py), or help texts that begin alike."""
    problems = []
    for name, uses in _options().items():
        if len({cmd for cmd, _ in uses}) < 2:
            continue
        forms = {(str(_value_type(p)), p.is_flag, tuple(p.secondary_opts), p.count) for _, p in uses}
        if len(forms) > 1:
            problems.append(f"{name}: {len(forms)} types or flag forms: {sorted(forms)}")
        marks = {getattr(p.type_descriptor.parameter_info, common.SHARED_MARK, None) for _, p in uses}
        prefixes = {_prefix(p.help) for _, p in uses}
        if not (len(marks) == 1 and None not in marks) and len(prefixes) > 1:
            problems.append(f"{name}: declared apart with different meanings: "
                            + "; ".join(f"{cmd}: {p.help!r}" for cmd, p in uses))
    assert not problems, "\n".join(problems)


def test_every_command_that_trains_or_generates_takes_quiet_seed_and_threads() -> None:
    missing = []
    for path, cmd in commands():
        if path[0] not in TRAINS_OR_GENERATES:
            continue
        names = {o for p in cmd.params for o in p.opts}
        seed = "--seeds" if path[0] == "experiment" else "--seed"  # experiments run one cell per seed of --seeds
        missing += [f"{' '.join(path)}: {o}" for o in ("-q", "--quiet", seed, "--threads") if o not in names]
    assert not missing, missing


def test_trainer_settings_are_the_config_declarations() -> None:
    """train sft / lm / ner / classify take one option per setting of their config class, declared there."""
    from gristmill.train import config as cfg

    trainers = {("train", "sft"): cfg.SFTConfig, ("train", "lm"): cfg.LMConfig, ("train", "ner"): cfg.FitConfig,
                ("train", "classify"): cfg.FitConfig}
    by_path = dict(commands())
    for path, cls in trainers.items():
        params = {p.name: p for p in by_path[path].params}
        for name, (_, _, option) in common.config_options(cls).items():
            if path == ("train", "lm") and name == "warmup_ratio":
                continue  # train lm warms up for --warmup-steps (default min(100, steps / 10))
            assert name in params and option in params[name].opts, (path, name)
            mark = getattr(params[name].type_descriptor.parameter_info, common.SHARED_MARK)
            assert mark == f"setting:{option}", (path, name, mark)


@pytest.mark.parametrize(("args", "message"), [
    (["train", "ner", "--train", "T", "--dev", "T", "--epochs", "0"], "--epochs"),
    (["train", "classify", "--train", "T", "--dev", "T", "--dtype", "half"], "--dtype"),
    (["train", "sft", "T", "--schedule", "step"], "--schedule"),
    (["train", "lm", "--data", "T", "--grad-accum", "0"], "--grad-accum"),
    (["train", "lm", "--data", "T", "--dim", "30", "--heads", "4"], "--dim (30) must be a multiple of --heads (4)"),
    (["eval", "perplexity", "--data", "T", "--dtype", "half"], "--dtype"),
    (["experiment", "collapse", "--temperature", "0"], "--temperature"),
])
def test_a_bad_setting_exits_2_naming_its_option(args: list[str], message: str, tmp_path: Path) -> None:
    data = tmp_path / "t.jsonl"
    data.write_text('{"text": "x"}\n', encoding="utf-8")
    res = runner.invoke(app, [str(data) if a == "T" else a for a in args])
    assert res.exit_code == 2 and message in res.output, res.output


@pytest.mark.parametrize(("args", "note"), [
    (["generate", "--model", "MISSING", "--out", "x.jsonl"], "--out FILE is deprecated; use --out-file FILE"),
    (["eval", "bias", "--model", "MISSING", "--out", "x.json"], "--out FILE is deprecated; use --out-file FILE"),
    (["train", "lm", "--data", "MISSING", "--bf16"], "--bf16 is deprecated; use --dtype bfloat16"),
    (["train", "ner", "--train", "MISSING", "--dev", "MISSING", "--fp32"], "--fp32 is deprecated; use --dtype float32"),
    (["select", "--data", "MISSING", "--budget", "1", "--strategy", "random"], "--strategy is deprecated; use --selector"),
    (["select", "--data", "MISSING", "--budget", "1", "--selector", "ifd", "--max-tokens", "64"],
     "--max-tokens is deprecated; use --max-length"),
])
def test_old_spellings_still_work_with_a_note(args: list[str], note: str, tmp_path: Path) -> None:
    res = runner.invoke(app, [str(tmp_path / "missing") if a == "MISSING" else a for a in args])
    assert res.exit_code == 2, res.output  # the missing input, after the note
    assert f"note: {note}" in res.output and "No such option" not in res.output


def test_hidden_old_spellings_stay_out_of_help() -> None:
    for args, old in ((["generate"], "--out "), (["train", "lm"], "--bf16"), (["select"], "--strategy")):
        res = runner.invoke(app, [*args, "--help"])
        assert res.exit_code == 0 and old not in res.output, args
