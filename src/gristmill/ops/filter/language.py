"""``filter.language``: keep rows in the given languages (the model of ``lang.identify``,
:mod:`gristmill.ops.text.language_id`)."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from gristmill.ops.base import Filter, FilterParams
from gristmill.ops.text.language_id import LANG_CODE, LANG_SCORE, identify
from gristmill.ops.text.scoring import Rule
from gristmill.records import Reason, column_list

__all__ = ["LanguageFilter"]


class LanguageFilter(Filter):
    """Keep rows in the given languages whose language probability reaches ``min_confidence``.

    Reads ``lang.code`` / ``lang.score`` when an earlier ``lang.identify`` wrote them
    (they are trusted as they are); otherwise it identifies the language of ``column``
    itself with the same model and writes the same two columns, so it works alone or
    after ``lang.identify``. Checks, in order:

    * ``language: fr (0.93) not in [en]`` — the top language is not one of ``languages``
      (``language: none not in [en]`` for null or blank text);
    * ``lang_confidence: 0.41 < 0.65`` — the top language's probability is below
      ``min_confidence`` (0.65 as in datatrove's LanguageFilter).

    With ``languages: null`` any language passes and only the confidence is checked.
    ``drop: false`` only writes the columns.
    """

    name = "filter.language"
    version = "1"
    idempotent = True
    example_params: ClassVar[dict[str, Any]] = {"languages": ["en", "zh"], "min_confidence": 0.5}

    class Params(FilterParams):
        languages: list[str] | None = Field(["en"], description="Language codes to keep (lid.176 labels, e.g. en, "
                                                                "de, zh); null keeps any language.")
        min_confidence: float = Field(0.65, ge=0, le=1,
                                      description="Lowest probability of the top language that is kept.")
        column: str = Field("text", description="Text to identify when lang.code / lang.score are not in the batch.")

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [LANG_CODE, LANG_SCORE]

    def score_columns(self) -> list[str]:
        return [LANG_SCORE]

    def rules(self) -> list[Rule]:
        return [Rule("lang_confidence", LANG_SCORE, min=self.params.min_confidence)]

    def scores(self, batch: pa.Table) -> dict[str, pa.Array]:
        if LANG_CODE in batch.column_names and LANG_SCORE in batch.column_names:
            return {}
        codes, scores = identify(column_list(batch, self.params.column))
        return {LANG_CODE: pa.array(codes, pa.string()), LANG_SCORE: pa.array(scores, pa.float64())}

    def empty_columns(self) -> dict[str, pa.DataType]:
        return {LANG_CODE: pa.string(), LANG_SCORE: pa.float64()}

    def reason(self, code: str | None, score: float | None) -> Reason | None:
        """Why a row with top language ``code`` at probability ``score`` is dropped, or ``None``."""
        wanted = self.params.languages
        if wanted is not None and code not in wanted:
            shown = "none" if code is None else code if score is None else f"{code} ({score:.2f})"
            return Reason("language", f"{shown} not in [{', '.join(wanted)}]")
        for rule in self.rules():
            why = rule.check(score)
            if why:
                return why
        return None

    def reasons(self, batch: pa.Table) -> list[Reason | None]:
        return [self.reason(c, s) for c, s in zip(column_list(batch, LANG_CODE), column_list(batch, LANG_SCORE))]
