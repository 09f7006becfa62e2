"""``lang.identify``: the language of each row and its probability, by fastText's ``lid.176``
(:mod:`gristmill.ops.text.language_id`, which ``filter.language`` uses too)."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from gristmill.ops.base import Annotator, Context, Params
from gristmill.ops.text.language_id import LANG_CODE, LANG_SCORE, _model, identify, model_path
from gristmill.records import column_list

__all__ = ["LanguageIdentify", "LANG_CODE", "LANG_SCORE", "identify", "model_path"]


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
