"""gristmill: build fine-tuning data for language models and measure how far it can be trusted.

``import gristmill`` loads nothing but this file; the Python API (:mod:`gristmill.api`: ``run``,
``Pipeline``, ``op``, ``apply``, ``load_run``) is imported on first use of one of its names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Pipeline", "RecipeError", "Result", "Run", "RunIncomplete", "__version__", "apply", "load_run", "op",
           "run"]

if TYPE_CHECKING:
    from gristmill.api import Pipeline, RecipeError, Result, Run, RunIncomplete, apply, load_run, op, run

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module("gristmill.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gristmill' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
