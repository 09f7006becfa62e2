"""Install extras (``gristmill/extras.py``): the lean base install works alone, and what needs an extra says so.

The lean install is simulated in a subprocess of this interpreter: a ``sys.meta_path`` finder refuses
every module that ``pip install gristmill`` would not bring, that is every installed distribution
outside the dependency closure of ``[project].dependencies`` in ``pyproject.toml`` (the model packages
``make`` installs without dependencies stay visible). So torch, llama.cpp, spaCy, faiss, peft, datasets
and their own dependencies (pandas, jinja2, ...) cannot be imported there.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import typer
from packaging.requirements import Requirement

from gristmill import extras, registry
from gristmill.recipe import RecipeError, load_recipe

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "gristmill"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
OPTIONAL = PYPROJECT["project"]["optional-dependencies"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _self_refs(requirements: list[str]) -> set[str]:
    """The extras that ``gristmill[a,b]`` entries of an extra pull in."""
    reqs = [Requirement(r) for r in requirements]
    return {e for r in reqs if _norm(r.name) == "gristmill" for e in r.extras}


def _model_packages() -> set[str]:
    """The model packages the Makefile installs without their dependencies (not pip dependencies)."""
    line = re.search(r"^MODEL_PACKAGES\s*:=(.*)$", (REPO / "Makefile").read_text(encoding="utf-8"), re.M)
    assert line, "MODEL_PACKAGES not found in the Makefile"
    return {_norm(Requirement(p).name) for p in line.group(1).split()}


@cache
def base_closure() -> frozenset[str]:
    """Distributions (normalised names) that ``pip install gristmill`` installs: the base dependencies
    and, recursively, theirs (extras of a requirement included)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    while todo:
        req = todo.pop()
        key = (_norm(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:  # pragma: no cover - the venv has every dependency
            continue
        for text in dist.requires or []:
            r = Requirement(text)
            if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(r)
    return frozenset(name for name, _ in seen)


@cache
def lean_blocked() -> tuple[str, ...]:
    """Top-level modules a lean install lacks: those of installed distributions outside the base closure."""
    allowed = base_closure() | _model_packages() | {"gristmill"}
    return tuple(sorted(m for m, dists in metadata.packages_distributions().items()
                        if not any(_norm(d) in allowed for d in dists) and m not in sys.stdlib_module_names))


PRELUDE = """\
import importlib.abc, json, sys
BLOCKED = frozenset(json.loads({blocked!r}))
class LeanInstall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in the lean install)", name=name)
        return None
sys.meta_path.insert(0, LeanInstall())
"""


def lean(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a subprocess that sees only the lean install."""
    prelude = PRELUDE.format(blocked=json.dumps(lean_blocked()))
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(cwd),
                                            "PYTHONPATH": str(REPO / "src")})


def lean_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``gristmill ARGS`` under the lean install."""
    return lean(f"sys.argv = ['gristmill', *{args!r}]\nfrom gristmill.cli import app\napp()\n", cwd)


# ---- the table and pyproject.toml ----------------------------------------------------------------

def test_every_table_entry_names_an_extra_of_pyproject() -> None:
    for module, extra in extras.EXTRAS.items():
        assert extra in OPTIONAL, f"{module} -> {extra!r}, which pyproject.toml does not declare"
    assert set(extras.EXTRAS.values()) == set(OPTIONAL) - {"all", "dev"}


def test_includes_and_all_match_pyproject() -> None:
    for extra, reqs in OPTIONAL.items():
        if extra != "all":
            assert _self_refs(reqs) == set(extras.INCLUDES.get(extra, ())), extra
    assert _self_refs(OPTIONAL["all"]) == set(OPTIONAL) - {"all", "dev"}


def test_each_module_is_installed_by_its_extra() -> None:
    dists = metadata.packages_distributions()
    for module, extra in extras.EXTRAS.items():
        names = {_norm(Requirement(r).name) for e in (extra, *extras.INCLUDES.get(extra, ())) for r in OPTIONAL[e]}
        assert module in dists, f"{module} is not installed here"
        assert {_norm(d) for d in dists[module]} & names, f"{module} ({dists[module]}) is not in [{extra}]"


def test_no_table_module_comes_with_the_base_install() -> None:
    assert not set(extras.EXTRAS) - set(lean_blocked()), "the base dependencies pull in modules of an extra"


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files of src/gristmill importing it (at any depth), stdlib and gristmill aside."""
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else []
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in ("gristmill", "__future__"):
                    found.setdefault(top, set()).add(str(path.relative_to(SRC)))
    return found


def test_every_import_outside_the_base_install_is_in_the_table() -> None:
    imports = _third_party_imports()
    assert {"torch", "llama_cpp", "spacy", "faiss", "peft", "pyarrow"} <= set(imports)  # the scan sees them
    blocked = set(lean_blocked())
    unlisted = {m: sorted(files) for m, files in imports.items() if m in blocked and m not in extras.EXTRAS}
    assert not unlisted, f"imports that the base install lacks and no extra names: {unlisted}"


# ---- the helpers ---------------------------------------------------------------------------------

def test_messages_name_the_outermost_extra() -> None:
    assert extras.extras_for(["torch", "peft"]) == ["train"]  # train pulls models
    assert extras.pip_line(["torch"]) == "pip install 'gristmill[models]'"
    assert extras.message("quality.perplexity", ["torch"]) == \
        "quality.perplexity needs the 'models' extra: pip install 'gristmill[models]'"
    assert extras.message("x", ["llama_cpp", "spacy"]) == \
        "x needs the 'audit' and 'llm' extras: pip install 'gristmill[audit,llm]'"
    assert extras.missing_modules(["json", "gristmill_no_such_module", "json"]) == ["gristmill_no_such_module"]
    assert extras.problem("x", ["json", "pyarrow.compute"]) is None


def test_require_exits_2_with_the_pip_line(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extras.EXTRAS, "gristmill_no_such_module", "train")
    extras.require("ok", "json")
    with pytest.raises(typer.Exit) as exc:
        extras.require("train sft", "json", "gristmill_no_such_module")
    assert exc.value.exit_code == 2
    assert "train sft needs the 'train' extra: pip install 'gristmill[train]'" in capsys.readouterr().err


def test_validation_locates_a_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": "1", "text": "a b c"}\n', encoding="utf-8")
    monkeypatch.setitem(extras.EXTRAS, "gristmill_no_such_module", "models")
    monkeypatch.setattr(registry.get("quality.perplexity"), "requires", ("gristmill_no_such_module",))
    recipe = {"input": {"path": "in.jsonl"}, "steps": [{"op": "clean.normalize"}, {"op": "quality.perplexity"},
                                                       {"op": "filter.length", "params": {"min_words": -1}}]}
    with pytest.raises(RecipeError) as exc:
        load_recipe(recipe, base_dir=tmp_path)
    assert "steps[1].op: quality.perplexity needs the 'models' extra: pip install 'gristmill[models]'" in exc.value.errors
    assert any(e.startswith("steps[2].params.min_words") for e in exc.value.errors)  # collected with the others


def test_operators_needs_follow_their_parameters() -> None:
    assert registry.create("pii.redact", {"ner": False}).required_modules() == []
    assert registry.create("pii.redact").required_modules() == ["spacy"]
    assert registry.create("generate.self_instruct").required_modules() == ["llama_cpp"]
    assert registry.create("generate.self_instruct", {"backend": {"type": "mock"}}).required_modules() == []
    assert "torch" in registry.create("quality.perplexity").required_modules()


# ---- the lean install, end to end ------------------------------------------------------------------

LEAN_RECIPE = """\
name: lean
input: {path: in.jsonl}
steps:
  - op: clean.normalize
  - op: filter.length
    params: {min_words: 3}
  - op: quality.gopher
    params: {drop: false}
  - op: dedup.exact
  - op: dedup.minhash
  - op: pii.redact
    params: {ner: false}
output: {format: jsonl, path: out}
executor: {workers: 1}
"""

TEXTS = ["The quick brown fox jumps over the lazy dog while the children play in the park near the old tree.",
         "The quick brown fox jumps over the lazy dog while the children play in the park near the old tree.",
         "Call me at 555-123-4567 about the meeting tomorrow; we will go through the budget and the plans.",
         "short"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n"
                                               for i, t in enumerate(TEXTS)), encoding="utf-8")
    return tmp_path


def test_the_lean_install_runs_a_cleaning_recipe(corpus: Path) -> None:
    (corpus / "lean.yaml").write_text(LEAN_RECIPE, encoding="utf-8")
    done = lean_cli(["run", "lean.yaml", "--runs-dir", "runs", "-q"], corpus)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (corpus / "out" / "data.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["0", "2"]  # one short row, one duplicate dropped
    assert "<PHONE_NUMBER>" in rows[1]["text"]
    assert (corpus / "runs" / "lean" / "report.html").is_file()


def test_the_lean_install_refuses_a_recipe_needing_extras_at_validation(corpus: Path) -> None:
    (corpus / "heavy.yaml").write_text("input: {path: in.jsonl}\nsteps:\n  - op: clean.normalize\n"
                                       "  - op: quality.perplexity\n  - op: generate.self_instruct\n"
                                       "output: {format: hf, path: out}\n", encoding="utf-8")
    done = lean_cli(["validate", "heavy.yaml"], corpus)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "steps[1].op: quality.perplexity needs the 'models' extra: pip install 'gristmill[models]'" in done.stderr
    assert "steps[2].op: generate.self_instruct needs the 'llm' extra: pip install 'gristmill[llm]'" in done.stderr
    assert "output.format: output format 'hf' needs the 'hf' extra: pip install 'gristmill[hf]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_lean_install_lists_and_shows_every_operator(tmp_path: Path) -> None:
    done = lean_cli(["ops"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "quality.perplexity" in done.stdout and "toxicity.score" in done.stdout
    done = lean_cli(["ops", "show", "dedup.semantic"], tmp_path)
    assert done.returncode == 0 and "ann_threshold" in done.stdout, done.stderr[-3000:]


@pytest.mark.parametrize(("args", "extra"), [(["train", "sft", "data.jsonl"], "train"),
                                             (["train", "lm", "--data", "data.jsonl"], "models"),
                                             (["eval", "generation", "--predictions", "data.jsonl"], "train")])
def test_the_lean_install_refuses_model_commands_with_the_pip_line(tmp_path: Path, args: list[str],
                                                                   extra: str) -> None:
    done = lean_cli(args, tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"needs the '{extra}' extra: pip install 'gristmill[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr


LEAN_OPS = """
from gristmill import extras, registry
from gristmill.ops.base import GlobalOp
from gristmill.records import from_rows
batch = from_rows([{"id": f"r{i}", "text": t} for i, t in enumerate(
    ["plain text with a few words in it", "Call Jane at 555-123-4567.", None, ""])])
out = {}
for name in registry.names():
    cls = registry.get(name)
    op = cls(**cls.example_params)
    if extras.missing_modules(op.required_modules()):
        out[name] = "needs an extra"
        continue
    try:
        op.ensure_setup()
        if isinstance(op, GlobalOp):
            op.fit([op.summarize(batch)])
        op.process(batch)
        out[name] = "ran"
    except ImportError as exc:
        out[name] = f"ImportError: {exc}"
print(json.dumps(out))
"""


def test_every_operator_runs_or_declares_its_extra_in_the_lean_install(tmp_path: Path) -> None:
    done = lean(LEAN_OPS, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == set(registry.names())
    undeclared = {k: v for k, v in result.items() if v not in ("ran", "needs an extra")}
    assert not undeclared, f"operators that import a module of an extra without declaring it: {undeclared}"
    assert result["quality.perplexity"] == result["toxicity.score"] == "needs an extra"
    assert result["clean.normalize"] == result["dedup.minhash"] == "ran"
