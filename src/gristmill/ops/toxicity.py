"""``toxicity.score``: an offensive-language classifier that ships in a package, plus word lists."""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from gristmill.audit.columns import OUTPUT, audit_output, floats, worst_rows
from gristmill.audit.markdown import num
from gristmill.audit.metric import AuditMetric, AuditSection, CardText, Measure, recorded_param
from gristmill.pipeline.run_reader import RunReader
from gristmill.ops.base import Context, Filter, FilterParams
from gristmill.ops.text.bad_words import BAD_WORDS_FILE
from gristmill.ops.text.phrases import PhraseMatcher, data_lines, segments, tokenize
from gristmill.ops.text.scoring import Rule
from gristmill.records import column_list

__all__ = ["ToxicityScore", "classifier", "word_matcher", "SCORE", "BADWORD_COUNT", "BADWORDS"]

SCORE = "toxicity.score"
BADWORD_COUNT = "toxicity.badword_count"
BADWORDS = "toxicity.badwords"
INSULTS_FILE = "insults_en.txt"


@cache
def classifier() -> tuple[Any, Any]:
    """The (vectorizer, model) pair shipped in ``alt-profanity-check``, loaded once per process."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # scikit-learn's version notice, if any
            from profanity_check import profanity_check as pc
    except ImportError as exc:  # pragma: no cover - the dependency is installed with gristmill
        raise ImportError("toxicity.score needs the alt-profanity-check package: "
                          "pip install alt-profanity-check") from exc
    return pc.vectorizer, pc.model


@cache
def word_matcher(paths: tuple[str, ...] | None = None) -> PhraseMatcher:
    """A matcher for the word lists at ``paths`` (default: LDNOOBW English plus the shipped
    insults list); a one-word entry also matches with an added ``s``."""
    matcher = PhraseMatcher()
    if paths is None:
        from importlib import resources

        ldnoobw = resources.files("gristmill").joinpath("data", BAD_WORDS_FILE)
        rows = data_lines(path=str(ldnoobw)) + data_lines(INSULTS_FILE)
    else:
        rows = [r for p in paths for r in data_lines(path=p)]
    for row in rows:
        phrase = row[0].lower()
        matcher.add(phrase, phrase)
        if " " not in phrase and phrase.isalpha() and len(phrase) > 2 and not phrase.endswith("s"):
            matcher.add(phrase + "s", phrase)
    return matcher


class ToxicityScore(Filter):
    """Offensive-language probability per row (alt-profanity-check) and bad-word counts; drop above a bound.

    The classifier is alt-profanity-check's (MIT): a linear SVM over TF-IDF word and
    character features, calibrated to a probability, trained on about 200k human-labelled
    comments and tweets; its model files are inside the wheel, so nothing is downloaded.
    It was trained on short texts and a long text dilutes a single offensive sentence, so
    each row is cut into sentence-like segments (at ``. ! ?`` and blank lines, at most
    ``max_segment_words`` words) and ``toxicity.score`` is the highest segment probability.

    The word lists (default: the LDNOOBW English list, CC BY 4.0, plus a short list of
    insults and slurs LDNOOBW lacks, both in ``gristmill/data``) are matched as whole
    words, case-insensitively; ``toxicity.badword_count`` counts matches and
    ``toxicity.badwords`` lists the distinct entries found.

    Drops ``toxicity: 0.97 > 0.9`` when the score is above ``max_score`` and
    ``badwords: 3 > 0`` when the count is above ``max_badwords`` (off by default: the
    lists name body parts and slang that are often harmless, and ``quality.c4`` already
    applies C4's any-bad-word rule). Rows with no text have a null score and pass.

    Measured (sentences of the shared data, see the issue note): share of sentences over
    0.8 / 0.9 / 0.99 — Gutenberg prose 0.47% / 0.23% / 0.04%, WNUT-17 tweets 3.4% /
    2.6% / 1.5%. Flagged tweets read as profane or abusive in 8 of 12 at 0.8-0.9 and 22
    of 24 above 0.9, flagged prose in 1 of 12 at 0.8-0.9. Hence the default 0.9, meant
    for rows of a few sentences: the score is a maximum, so long rows are flagged more
    often (3 KB Gutenberg chunks, about 36 segments each: 13% / 7.5% / 1.4% over 0.8 /
    0.9 / 0.99); for long documents raise ``max_score`` or set ``drop: false``. The
    classifier is English only, reacts to profanity more than to politely worded hate,
    and scores some identity words high on their own ("She is gay." 0.98): check what
    it drops before trusting it on text about those groups.
    """

    name = "toxicity.score"
    requires = ("profanity_check",)
    version = "1"
    idempotent: ClassVar[bool] = True

    class Params(FilterParams):
        column: str = Field("text", description="String column to score.")
        max_score: float | None = Field(0.9, ge=0, le=1, description="Drop rows whose highest segment "
                                        "probability is above this (None: no bound).")
        max_badwords: int | None = Field(None, ge=0, description="Drop rows with more word-list matches "
                                         "than this (None: no bound).")
        word_lists: list[str] | None = Field(None, description="Word-list files, one word or phrase per line, "
                                             "'#' comments (None: LDNOOBW English plus the shipped insults list).")
        max_segment_words: int = Field(64, ge=1, description="Longest segment, in words, given to the "
                                       "classifier; longer sentences are cut.")

    @classmethod
    def audit_section(cls) -> AuditSection:
        """``toxicity.fraction`` and ``toxicity.count``, the threshold, and the card's Toxicity section."""
        return TOXICITY_AUDIT

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [SCORE, BADWORD_COUNT, BADWORDS]

    def score_columns(self) -> list[str]:
        return [SCORE, BADWORD_COUNT]

    def rules(self) -> list[Rule]:
        p = self.params
        rules = []
        if p.max_score is not None:
            rules.append(Rule("toxicity", SCORE, max=p.max_score))
        if p.max_badwords is not None:
            rules.append(Rule("badwords", BADWORD_COUNT, max=p.max_badwords))
        return rules

    def input_files(self) -> list[Path]:
        return [self.resolve_path(p) for p in self.params.word_lists or ()]

    def _matcher(self) -> PhraseMatcher:
        lists = self.params.word_lists
        return word_matcher(tuple(str(self.resolve_path(p)) for p in lists) if lists is not None else None)

    def setup(self, ctx: Context) -> None:
        classifier()
        self._matcher()

    def scores(self, batch: pa.Table) -> dict[str, pa.Array]:
        texts = column_list(batch, self.params.column)
        return {SCORE: pa.array(self.probabilities(texts), pa.float64()), **self.badwords(texts)}

    def probabilities(self, texts: list[str | None]) -> list[float | None]:
        """The highest segment probability of each text (``None`` for a text without words)."""
        segs: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            if text:
                for s in segments(text, self.params.max_segment_words):
                    segs.append(s)
                    owner.append(i)
        best = np.full(len(texts), np.nan)
        if segs:
            vectorizer, model = classifier()
            probs = model.predict_proba(vectorizer.transform(segs))[:, 1]
            np.fmax.at(best, np.asarray(owner), probs)
        return [None if np.isnan(b) else round(float(b), 6) for b in best]

    def badwords(self, texts: list[str | None]) -> dict[str, pa.Array]:
        """Word-list match counts and the distinct entries matched, per text."""
        matcher = self._matcher()
        counts, found = [], []
        for text in texts:
            matches = matcher.find(tokenize(text)) if text else []
            counts.append(len(matches))
            found.append(sorted({m.label for m in matches}))
        return {BADWORD_COUNT: pa.array(counts, pa.int64()), BADWORDS: pa.array(found, pa.list_(pa.string()))}


# ---- audit: toxicity.fraction / toxicity.count, the summary's threshold, the card's Toxicity section ----------

def toxicity_threshold(run: RunReader) -> float:
    """The score above which an output row counts as toxic: the max of the last toxicity.score step's rule
    (stats.json), else its ``max_score`` (recipe.yaml), else the default of :class:`ToxicityScore`'s ``max_score``."""
    for r in run.step_rules(ToxicityScore.name):
        if r.get("column") == SCORE and isinstance(r.get("max"), (int, float)):
            return float(r["max"])
    recorded = recorded_param(run, ToxicityScore.name, "max_score")
    if isinstance(recorded, (int, float)):
        return float(recorded)
    return float(ToxicityScore.Params.model_fields["max_score"].default)


def _measure(run: RunReader, name: str) -> Measure:
    if run.last_step(ToxicityScore.name) is None:
        return Measure(None, note=f"no {ToxicityScore.name} step ran")
    out = audit_output(run)
    rows_out = int(run.output.get("rows", out.num_rows))
    threshold = toxicity_threshold(run)
    score = floats(out, SCORE)
    with np.errstate(invalid="ignore"):
        above = score > threshold
    count = int(above.sum())
    value = count if name == "toxicity.count" else (round(count / rows_out, 6) if rows_out else 0.0)
    return Measure(value, worst_rows(out, above, score, [OUTPUT] * out.num_rows), f"{SCORE} > {threshold:g}")


def _card(summary: dict[str, Any] | None, run: RunReader) -> CardText:
    if not summary:
        return None, ["Not checked for toxic or offensive language."]
    score = (summary.get("columns") or {}).get(SCORE) or {}
    lines = [f"Share of output rows with `{SCORE}` above {num(summary.get('threshold'))}: "
             f"**{num(summary.get('toxicity.fraction'))}** ({num(summary.get('toxicity.count'))} rows)."]
    if score.get("mean") is not None:
        lines.append(f"Score over the output: mean {num(score['mean'])}, median {num(score.get('p50'))}, "
                     f"p99 {num(score.get('p99'))}, max {num(score.get('max'))}.")
    if summary.get("dropped"):
        lines.append("Dropped: " + ", ".join(f"{k} {num(v)}" for k, v in summary["dropped"].items()) + ".")
    return " ".join(lines), ["Toxicity scores come from a lexical classifier and word lists: they miss implicit "
                             "or context-dependent toxicity and over-flag reclaimed or quoted words."]


TOXICITY_AUDIT = AuditSection(
    "toxicity",
    metrics=(AuditMetric("toxicity.fraction", "share of output rows whose toxicity.score is above the toxicity.score "
                         "step's threshold (its rule's max, else its max_score, else that parameter's default)",
                         _measure),
             AuditMetric("toxicity.count", "output rows above that threshold", _measure)),
    figures=lambda run: {"threshold": toxicity_threshold(run)},
    order=20, card_title="Toxicity", card=_card, card_empty="No toxicity step ran.")
