"""Optional dependencies: which ``gristmill`` extra installs each heavy module, and the checks that
turn a missing one into the ``pip install`` line to run.

``pip install gristmill`` reads, cleans, filters, deduplicates and reports; the heavy libraries
come with extras (``pyproject.toml``): ``llm`` (llama.cpp), ``models`` (torch, transformers, faiss),
``audit`` (spaCy, the toxicity classifier), ``train`` (``models`` plus peft, seqeval, sacrebleu,
scikit-learn, scipy), ``hf`` (the ``datasets`` output format), ``web`` (warcio and protego for
``gristmill crawl``; trafilatura, resiliparse, pypdf and charset-normalizer for the warc, wet, html
and pdf input formats), ``search`` (bm25s for ``select.search``'s BM25), ``image`` (imagehash for
``image.dedup``), ``review`` (Starlette and uvicorn for ``gristmill review``) and ``all``.
Operators declare the
modules they need (:meth:`gristmill.ops.base.Operator.required_modules`), so a recipe that needs a
missing extra fails at validation, before anything runs; commands call :func:`require`.

Modules are looked up with :func:`importlib.util.find_spec` and never imported: a check loads nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

__all__ = ["EXTRAS", "INCLUDES", "MissingExtra", "check", "extras_for", "message", "missing_modules", "pip_line",
           "problem", "require"]

# Importable module -> the extra that installs it (every heavy import in src/ is listed here).
EXTRAS: dict[str, str] = {
    "llama_cpp": "llm",
    "torch": "models",
    "transformers": "models",
    "accelerate": "models",
    "gguf": "models",
    "tokenizers": "models",
    "faiss": "models",
    "spacy": "audit",
    "profanity_check": "audit",
    "peft": "train",
    "seqeval": "train",
    "sacrebleu": "train",
    "sklearn": "train",
    "scipy": "train",
    "datasets": "hf",
    "huggingface_hub": "hf",
    "warcio": "web",
    "protego": "web",
    "bm25s": "search",
    "imagehash": "image",
    "trafilatura": "web",
    "resiliparse": "web",
    "pypdf": "web",
    "charset_normalizer": "web",
    "starlette": "review",
    "uvicorn": "review",
}

# Extras that install other extras too (``train`` pulls ``gristmill[models]``), so a pip line names
# only the outermost one.
INCLUDES: dict[str, tuple[str, ...]] = {"train": ("models",)}


class MissingExtra(ImportError):
    """An operator or command needs modules that are not installed; the message gives the pip line."""

    def __init__(self, what: str, modules: list[str]) -> None:
        self.what = what
        self.modules = modules
        self.extras = extras_for(modules)
        super().__init__(message(what, modules))


def _installed(module: str) -> bool:
    top = module.partition(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a module without a spec
        return False


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported (looked up, not imported), in order, once each."""
    return [m for m in dict.fromkeys(modules) if not _installed(m)]


def extras_for(modules: Iterable[str]) -> list[str]:
    """The extras that install ``modules``, sorted, without one that another of them includes."""
    wanted = {EXTRAS[m.partition(".")[0]] for m in modules if m.partition(".")[0] in EXTRAS}
    covered = {inner for outer in wanted for inner in INCLUDES.get(outer, ())}
    return sorted(wanted - covered)


def pip_line(modules: Iterable[str]) -> str:
    """The ``pip install`` line that brings ``modules``: ``pip install 'gristmill[models]'`` (modules
    no extra provides are named as packages)."""
    modules = list(modules)
    extras = extras_for(modules)
    others = sorted({m.partition(".")[0] for m in modules if m.partition(".")[0] not in EXTRAS})
    return "pip install " + " ".join(([f"'gristmill[{','.join(extras)}]'"] if extras else []) + others)


def message(what: str, modules: list[str]) -> str:
    """``quality.perplexity needs the 'models' extra: pip install 'gristmill[models]'``."""
    extras = extras_for(modules)
    if not extras:
        return f"{what} needs {', '.join(modules)}, which is not installed: {pip_line(modules)}"
    names = " and ".join(f"'{e}'" for e in extras)
    return f"{what} needs the {names} extra{'s' if len(extras) > 1 else ''}: {pip_line(modules)}"


def problem(what: str, modules: Iterable[str]) -> str | None:
    """The message for the modules of ``modules`` that are missing, or None when all are installed."""
    missing = missing_modules(modules)
    return message(what, missing) if missing else None


def check(what: str, modules: Iterable[str]) -> None:
    """Raise :class:`MissingExtra` when one of ``modules`` is not installed."""
    missing = missing_modules(modules)
    if missing:
        raise MissingExtra(what, missing)


def require(what: str, *modules: str) -> None:
    """For commands: exit 2 with the pip line (through :func:`gristmill.commands.common.fail`) when
    one of ``modules`` is not installed; return otherwise."""
    text = problem(what, modules)
    if text is not None:
        from gristmill.commands.common import EXIT_INVALID, fail

        fail(text, EXIT_INVALID)
