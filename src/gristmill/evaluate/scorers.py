"""A :class:`~gristmill.evaluate.perplexity.Scorer` for any model a user can name.

Apart from :mod:`gristmill.evaluate.perplexity` because one kind of model, a ``gristmill
train lm`` model, is defined in :mod:`gristmill.train.lm`, which itself scores with the
perplexity module: keeping the loader here keeps the import graph free of cycles.
"""

from __future__ import annotations

from pathlib import Path

from gristmill.evaluate.perplexity import HFScorer, Scorer, TrainedLMScorer

__all__ = ["load_model"]


def load_model(model: str | Path | None, dtype: str = "float32") -> Scorer:
    """A :class:`Scorer` for ``model``: ``None`` (the packaged SmolLM2-135M-Instruct), a ``.gguf``
    file (dequantized once into the model cache), a transformers directory (or a ``gristmill train
    sft`` run directory: its ``merged/`` model), or a ``gristmill train lm`` model (``model.pt`` and
    a ``config.json`` of format ``gristmill-lm``; its run directory, holding it in ``model/``, works
    too). Raises ``FileNotFoundError`` / ``ValueError`` for a path that is not a model."""
    from gristmill.models.causal_lm import hf_dir, load_causal_lm

    if model is None:
        return HFScorer(load_causal_lm(None, dtype), "SmolLM2-135M-Instruct (packaged)")
    path = Path(model)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ValueError(f"{path}: expected a .gguf file or a model directory")
        return HFScorer(load_causal_lm(str(hf_dir(path)), dtype), str(path))
    trained = _trained_lm_dir(path)
    if trained is not None:
        import torch

        from gristmill.train.lm import TrainedLM

        lm = TrainedLM.load(trained)
        if dtype == "bfloat16":
            lm.model.to(torch.bfloat16)
        return TrainedLMScorer(lm, str(path))
    return HFScorer(load_causal_lm(str(_model_dir(path)), dtype), str(path))


def _trained_lm_dir(path: Path) -> Path | None:
    """``path`` or ``path/model`` when it holds a ``gristmill train lm`` model, else None."""
    try:
        from gristmill.train.lm import TrainedLM
    except ImportError:  # pragma: no cover - the module ships with gristmill
        return None
    for candidate in (path, path / "model"):
        if TrainedLM.is_model_dir(candidate):
            return candidate
    return None


def _model_dir(path: Path) -> Path:
    """The transformers directory in ``path``: itself, or a ``merged/`` (a ``gristmill train sft`` run),
    ``model/`` or ``final/`` below it."""
    for candidate in (path, path / "merged", path / "model", path / "final"):
        if (candidate / "config.json").is_file() and any(
                (candidate / f).is_file() for f in ("model.safetensors", "pytorch_model.bin",
                                                    "model.safetensors.index.json")):
            return candidate
    raise ValueError(f"{path}: not a model directory (no config.json with model weights in it, in merged/, model/ "
                     "or final/)")
