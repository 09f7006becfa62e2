"""Where code lives (issue 17, "one house"): a recipe name leads to its file, and the LLM library stands apart.

* operator ``family.name`` is defined in ``gristmill/ops/family.py`` or ``gristmill/ops/family/name.py``;
* every module or package directly under ``gristmill/ops`` is an operator family, ``base`` or ``text``;
* ``gristmill/ops/text`` holds shared helpers only: it defines no operator class;
* the LLM library ``gristmill/llm`` never imports ``gristmill.ops`` (the LLM operators and their base
  classes live in ``gristmill/ops/generate`` and ``gristmill/ops/judge.py``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill import registry
from gristmill.ops.base import Operator

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "gristmill"
OPS = PACKAGE / "ops"
LLM = PACKAGE / "llm"
FAMILIES = sorted({name.split(".", 1)[0] for name in registry.BUILTIN})


@pytest.mark.parametrize("name", sorted(registry.BUILTIN))
def test_an_operator_lives_where_its_name_says(name: str) -> None:
    family, _, op = name.partition(".")
    allowed = (f"gristmill.ops.{family}", f"gristmill.ops.{family}.{op}")
    cls = registry.get(name)
    assert cls.__module__ in allowed, f"{name} is defined in {cls.__module__}, expected one of {allowed}"
    assert registry.BUILTIN[name].partition(":")[0] == cls.__module__


def test_everything_directly_under_ops_is_a_family() -> None:
    allowed = set(FAMILIES) | {"base", "text"}
    found = []
    for p in sorted(OPS.iterdir()):
        if p.name.startswith(("_", ".")):
            continue
        if p.suffix == ".py":
            found.append(p.stem)
        elif p.is_dir() and (p / "__init__.py").exists():
            found.append(p.name)
    assert found, OPS
    assert not sorted(set(found) - allowed), "modules under ops/ that are no operator family (helpers go to ops/text/)"


def _modules(pkg_dir: Path, prefix: str) -> list[str]:
    return [prefix] + [m.name for m in pkgutil.walk_packages([str(pkg_dir)], prefix + ".")]


def test_text_helpers_define_no_operator() -> None:
    names = _modules(OPS / "text", "gristmill.ops.text")
    assert len(names) > 1
    for name in names:
        mod = importlib.import_module(name)
        ops = [obj.__name__ for obj in vars(mod).values()
               if inspect.isclass(obj) and issubclass(obj, Operator) and obj.__module__ == name]
        assert not ops, f"{name} defines operator classes {ops}: operators live in their family's module"


def _imported(path: Path) -> set[str]:
    """Every module an import statement of ``path`` names (at any depth, relative ones resolved)."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    pkg = parts if parts[-1] == "__init__" else parts[:-1]
    if pkg and pkg[-1] == "__init__":
        pkg = pkg[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return out


def test_the_llm_library_never_imports_ops() -> None:
    files = sorted(LLM.rglob("*.py"))
    assert len(files) > 5
    bad = {str(f.relative_to(PACKAGE)): sorted(m for m in _imported(f) if m == "gristmill.ops"
                                              or m.startswith("gristmill.ops."))
           for f in files}
    assert not {k: v for k, v in bad.items() if v}


def test_loading_the_llm_library_loads_no_operator_module() -> None:
    code = ("import importlib, pkgutil, sys\n"
            "import gristmill.llm as llm\n"
            "for m in pkgutil.walk_packages(llm.__path__, 'gristmill.llm.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(' '.join(sorted(n for n in sys.modules if n.startswith('gristmill.ops'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == ""
