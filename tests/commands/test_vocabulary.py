"""One command-line vocabulary: options common to several commands are declared once
(gristmill.commands.common) and mean the same everywhere; one place for exit codes and fail()."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from gristmill.cli import app
from gristmill.commands import common

SRC = Path(__file__).resolve().parents[2] / "src" / "gristmill"
SHARED = ("--quiet", "--out", "--seed", "--threads", "--resume", "--json", "--limit", "--batch-size", "--lr",
          "--checkpoint-every", "--eval-every", "--bf16/--fp32", "--dev-fraction")
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
            if name in {s.split("/")[0] for s in SHARED}:
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
