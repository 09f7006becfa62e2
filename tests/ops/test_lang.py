from __future__ import annotations

import pickle
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from gristmill.io import BadRecord, ReaderOptions, open_reader
from gristmill.ops.filter.language import LanguageFilter
from gristmill.ops.lang import LANG_CODE, LANG_SCORE, LanguageIdentify, identify

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

EN = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
      "it was the age of foolishness, it was the epoch of belief.")
FR = ("Longtemps, je me suis couché de bonne heure. Parfois, à peine ma bougie éteinte, "
      "mes yeux se fermaient si vite que je n'avais pas le temps de me dire: je m'endors.")
DE = "Als Gregor Samsa eines Morgens aus unruhigen Träumen erwachte, fand er sich in seinem Bett zu einem ungeheueren Ungeziefer verwandelt."
ZH = "数据清洗是训练语言模型的第一步，它决定了模型最终能学到什么样的知识。"


def batch(*texts: str | None) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())})


def test_identify_names_the_language_with_a_probability() -> None:
    codes, scores = identify([EN, FR, DE, ZH, "Dies ist\nein Satz auf Deutsch, über mehrere\nZeilen verteilt."])
    assert codes == ["en", "fr", "de", "zh", "de"]
    assert all(0.8 < s <= 1.0 for s in scores)


def test_null_and_blank_text_have_no_language() -> None:
    assert identify([None, "", " \n\t "]) == ([None, None, None], [None, None, None])


def test_annotator_writes_columns_on_every_row_and_drops_nothing() -> None:
    result = LanguageIdentify().process(batch(EN, FR, None))
    assert result.rejected is None
    assert result.kept.column(LANG_CODE).to_pylist() == ["en", "fr", None]
    assert result.kept.schema.field(LANG_SCORE).type == pa.float64()
    assert result.kept.column(LANG_SCORE).to_pylist()[2] is None


def test_filter_drops_other_languages_naming_language_and_probability() -> None:
    result = LanguageFilter(languages=["en", "de"]).process(batch(EN, FR, DE, ZH, None))
    assert result.kept.column("id").to_pylist() == ["r0", "r2"]
    reasons = result.rejected.column("_reason").to_pylist()
    assert re.fullmatch(r"language: fr \((0\.\d\d|1\.00)\) not in \[en, de\]", reasons[0])
    assert reasons[1].startswith("language: zh (")
    assert reasons[2] == "language: none not in [en, de]"
    # scores are written on dropped rows too
    assert result.rejected.column(LANG_CODE).to_pylist() == ["fr", "zh", None]


def test_filter_drops_unsure_rows_by_confidence() -> None:
    # a string of digits comes out as English with a low probability
    result = LanguageFilter(languages=["en"], min_confidence=0.65).process(batch(EN, "12345 678"))
    assert result.kept.column("id").to_pylist() == ["r0"]
    reason = result.rejected.column("_reason")[0].as_py()
    value = float(re.fullmatch(r"lang_confidence: ([0-9.]+) < 0.65", reason).group(1))
    assert value < 0.65
    assert [r.to_json() for r in LanguageFilter().rules()] == [
        {"name": "lang_confidence", "column": LANG_SCORE, "min": 0.65, "max": None}]


def test_any_language_passes_when_languages_is_null() -> None:
    result = LanguageFilter(languages=None).process(batch(EN, FR, ZH, "12345"))
    assert result.kept.column("id").to_pylist() == ["r0", "r1", "r2"]
    assert result.rejected.column("_reason")[0].as_py().startswith("lang_confidence: ")


def test_filter_reads_the_columns_lang_identify_wrote() -> None:
    annotated = LanguageIdentify().process(batch(EN, FR)).kept
    # the filter trusts lang.code / lang.score when present rather than identifying again
    relabelled = annotated.set_column(annotated.schema.get_field_index(LANG_CODE), LANG_CODE,
                                      pa.array(["fr", "en"], pa.string()))
    result = LanguageFilter(languages=["en"]).process(relabelled)
    assert result.kept.column("id").to_pylist() == ["r1"]
    assert result.rejected.column("_reason")[0].as_py().startswith("language: fr (")
    # and after lang.identify it decides exactly as it does alone
    chained = LanguageFilter().process(annotated)
    alone = LanguageFilter().process(batch(EN, FR))
    assert chained.kept.to_pylist() == alone.kept.to_pylist()
    assert chained.rejected.to_pylist() == alone.rejected.to_pylist()


def test_drop_false_only_writes_the_columns() -> None:
    result = LanguageFilter(drop=False).process(batch(EN, FR))
    assert result.rejected is None
    assert result.kept.column(LANG_CODE).to_pylist() == ["en", "fr"]


def test_empty_batch_gets_typed_columns() -> None:
    result = LanguageFilter().process(batch())
    assert result.kept.schema.field(LANG_CODE).type == pa.string()
    assert result.kept.schema.field(LANG_SCORE).type == pa.float64()


def test_missing_column_is_an_error() -> None:
    with pytest.raises(KeyError, match="body"):
        LanguageIdentify(column="body").process(batch(EN))


def test_pickled_operators_work_after_setup() -> None:
    op = LanguageIdentify()
    op.ensure_setup()
    clone = pickle.loads(pickle.dumps(op))
    clone.ensure_setup()
    assert clone.process(batch(FR)).kept.column(LANG_CODE).to_pylist() == ["fr"]


@pytest.mark.slow
def test_gutenberg_sample_french_book_is_french_and_the_rest_english() -> None:
    rows = [r for r in open_reader(SHARED / "gutenberg_sample.jsonl.gz",
                                   ReaderOptions(format="jsonl", chunk_chars=3000))
            if not isinstance(r, BadRecord)]
    codes, scores = identify([r["text"] for r in rows])
    by_title: dict[str, Counter[str]] = {}
    for r, code in zip(rows, codes):
        by_title.setdefault(r["title"], Counter())[code] += 1
    # Hugo's poems are French; the book's English introduction, notes and licence are English
    hugo = by_title.pop("La Légende des Siècles")
    assert hugo["fr"] > 100 and hugo["fr"] + hugo["en"] == hugo.total()
    english = sum(c["en"] for c in by_title.values()) / sum(c.total() for c in by_title.values())
    assert english > 0.99
