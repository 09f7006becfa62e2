"""``bias.audit``: how often demographic groups are mentioned, and with which occupations and sentiment words.

Counting is per *segment* (a sentence, or a paragraph without sentence marks; see
:func:`gristmill.ops.text.phrases.segments`): a group and a word co-occur when one segment
holds both. Pointwise mutual information over segments,

    PMI(g, w) = log2( n(g, w) * N / (n(g) * n(w)) )

with N the number of segments and n(.) the number of segments holding the term(s), says
how much more often than chance a group appears next to a word (0: as often as chance;
+1: twice as often). The gender skew of an occupation is ``PMI(female, o) - PMI(male,
o)``, the log ratio of how often each gender's segments mention it (the co-occurrence bias
score of Bordia & Bowman, NAACL SRW 2019, with segments as the context window), so it
does not depend on how much more often one gender is mentioned overall.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import Field

from gristmill.audit.metric import AuditSection
from gristmill.ops.base import Context, GlobalOp, Params, StepResult
from gristmill.ops.bias.audit_metrics import BIAS_AUDIT
from gristmill.ops.bias.columns import (FEMALE, FEMALE_SEGMENTS, GROUP_MENTIONS, GROUPS, MALE, MALE_SEGMENTS,
                                      MENTIONS, OCCUPATIONS_FEMALE, OCCUPATIONS_MALE)
from gristmill.ops.text.phrases import PhraseMatcher, data_lines, segments, tokenize
from gristmill.records import column_list, set_column

__all__ = ["BiasAudit", "BiasCounts", "Lexicon", "lexicon", "pmi", "summarize_counts", "group_mentions",
           "GROUPS", "GROUP_MENTIONS", "MENTIONS", "FEMALE", "MALE", "FEMALE_SEGMENTS", "MALE_SEGMENTS",
           "OCCUPATIONS_FEMALE", "OCCUPATIONS_MALE", "FEMALE_GROUP", "MALE_GROUP"]

GROUPS_FILE = "groups_en.txt"
OCCUPATIONS_FILE = "occupations_en.txt"
SENTIMENT_FILE = "sentiment_en.txt"
POSITIVE, NEGATIVE = "+positive", "+negative"
FEMALE_GROUP, MALE_GROUP = "gender:female", "gender:male"


@dataclass(frozen=True)
class Lexicon:
    """The three term lists in one matcher: labels are ``("g", "axis:group")``,
    ``("o", occupation)`` and ``("s", word, valence)``."""

    matcher: PhraseMatcher
    axes: dict[str, list[str]]
    female_pct: dict[str, float | None]


@cache
def lexicon(groups: str | None = None, occupations: str | None = None, sentiment: str | None = None,
            min_valence: float = 1.5) -> Lexicon:
    """Load the group, occupation and sentiment lists (``None``: the shipped ones)."""
    group_rows = data_lines(GROUPS_FILE, groups)
    placeholders = {r[0][1:-1]: r[1].split() for r in group_rows if r[0].startswith("{")}
    matcher = PhraseMatcher(placeholders)
    axes: dict[str, list[str]] = {}
    for row in group_rows:
        if row[0].startswith("{"):
            continue
        if len(row) != 3:
            raise ValueError(f"groups list: expected axis, group, term: {row!r}")
        axis, group, term = row
        axes.setdefault(axis, [])
        if group not in axes[axis]:
            axes[axis].append(group)
        matcher.add(term, ("g", f"{axis}:{group}"))
    female_pct: dict[str, float | None] = {}
    for row in data_lines(OCCUPATIONS_FILE, occupations):
        name, pct, forms = (row + ["", ""])[:3]
        female_pct[name] = float(pct) if pct else None
        for form in (forms or name).split("|"):
            matcher.add(form, ("o", name))
    for row in data_lines(SENTIMENT_FILE, sentiment):
        word, valence = row[0], float(row[1])
        if abs(valence) >= min_valence:
            matcher.add(word, ("s", word.lower(), valence))
    return Lexicon(matcher, axes, female_pct)


@dataclass
class BiasCounts:
    """Counts over some rows: the summary of a shard, merged into the summary of a run."""

    rows: int = 0
    rows_with_mentions: int = 0
    segments: int = 0
    mentions: Counter = field(default_factory=Counter)   # group -> term occurrences
    rows_by_group: Counter = field(default_factory=Counter)  # group -> rows mentioning it
    rows_by_axis: Counter = field(default_factory=Counter)   # axis -> rows mentioning one of its groups
    terms: Counter = field(default_factory=Counter)      # (group, term) -> occurrences
    seg: Counter = field(default_factory=Counter)        # group or ("o"|"s", name) -> segments holding it
    pairs: Counter = field(default_factory=Counter)      # (group, ("o"|"s", name)) -> segments holding both

    def merge(self, other: BiasCounts) -> None:
        self.rows += other.rows
        self.rows_with_mentions += other.rows_with_mentions
        self.segments += other.segments
        for name in ("mentions", "rows_by_group", "rows_by_axis", "terms", "seg", "pairs"):
            getattr(self, name).update(getattr(other, name))


def _row_analysis(text: str | None, lex: Lexicon, max_words: int, counts: BiasCounts | None) -> Counter:
    """Group term occurrences in ``text`` (group -> count); adds segment counts to ``counts``.

    Segment counts are keyed by the group (``"axis:group"``), ``("o", occupation)``,
    ``("s", word)`` and ``("s", POSITIVE)`` / ``("s", NEGATIVE)`` (any positive / negative word).
    """
    found: Counter = Counter()
    if not text:
        return found
    for seg in segments(text, max_words):
        groups: set[str] = set()
        others: set[tuple[str, str]] = set()
        for m in lex.matcher.find(tokenize(seg)):
            kind = m.label[0]
            if kind == "g":
                found[m.label[1]] += 1
                groups.add(m.label[1])
                if counts is not None:
                    counts.terms[(m.label[1], m.text.lower())] += 1
            elif counts is not None:
                others.add((kind, m.label[1]))
                if kind == "s":
                    others.add(("s", POSITIVE if m.label[2] > 0 else NEGATIVE))
        if counts is not None:
            counts.segments += 1
            counts.seg.update(groups)
            counts.seg.update(others)
            counts.pairs.update((g, o) for g in groups for o in others)
    return found


def group_mentions(text: str | None, lex: Lexicon, max_words: int = 64) -> Counter:
    """Group term occurrences in ``text`` (``"axis:group"`` -> count), as :class:`BiasAudit` counts them."""
    return _row_analysis(text, lex, max_words, None)


def pmi(n_pair: int, n_a: int, n_b: int, n: int) -> float | None:
    """log2(n_pair * n / (n_a * n_b)); ``None`` when any count is zero."""
    if n_pair <= 0 or n_a <= 0 or n_b <= 0 or n <= 0:
        return None
    return math.log2(n_pair * n / (n_a * n_b))


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def summarize_counts(c: BiasCounts, lex: Lexicon, min_count: int = 5, top_k: int = 10) -> dict[str, Any]:
    """The run-level summary (JSON-ready) of merged counts: mention shares per axis, gender by
    occupation, and sentiment co-occurrence per group."""
    n = c.segments
    axes = {}
    for axis, groups in lex.axes.items():
        total = sum(c.mentions[f"{axis}:{g}"] for g in groups)
        entries = []
        for g in groups:
            key = f"{axis}:{g}"
            terms = Counter({t: k for (grp, t), k in c.terms.items() if grp == key})
            entries.append({"group": g, "mentions": c.mentions[key], "share": _r(c.mentions[key] / total) if total else None,
                            "rows": c.rows_by_group[key], "segments": c.seg[key],
                            "top_terms": [[t, k] for t, k in sorted(terms.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]]})
        entries.sort(key=lambda e: (-e["mentions"], e["group"]))
        axes[axis] = {"mentions": total, "rows": c.rows_by_axis[axis], "groups": entries}

    nf, nm = c.seg[FEMALE_GROUP], c.seg[MALE_GROUP]
    female_terms, male_terms = c.mentions[FEMALE_GROUP], c.mentions[MALE_GROUP]
    occupations = []
    for occ, pct in lex.female_pct.items():
        key = ("o", occ)
        f, m = c.pairs[(FEMALE_GROUP, key)], c.pairs[(MALE_GROUP, key)]
        pf, pm = pmi(f, nf, c.seg[key], n), pmi(m, nm, c.seg[key], n)
        occupations.append({
            "occupation": occ, "segments": c.seg[key], "female": f, "male": m,
            "female_share": _r(f / (f + m)) if f + m else None,
            "female_share_adjusted": _r((f / nf) / (f / nf + m / nm)) if nf and nm and f + m else None,
            "skew": _r(pf - pm) if pf is not None and pm is not None else None,
            "bls_female_pct": pct})
    occupations.sort(key=lambda o: (-o["segments"], o["occupation"]))

    groups_sent, top_words = [], {}
    pos_key, neg_key = ("s", POSITIVE), ("s", NEGATIVE)
    n_pos, n_neg = c.seg[pos_key], c.seg[neg_key]
    words = sorted(k for k in c.seg if isinstance(k, tuple) and k[0] == "s" and k not in (pos_key, neg_key))
    for axis, groups in lex.axes.items():
        for g in groups:
            key = f"{axis}:{g}"
            ng = c.seg[key]
            if not ng:
                continue
            pos, neg = c.pairs[(key, pos_key)], c.pairs[(key, neg_key)]
            groups_sent.append({"axis": axis, "group": g, "segments": ng, "positive": pos, "negative": neg,
                                "positive_share": _r(pos / ng), "negative_share": _r(neg / ng),
                                "pmi_positive": _r(pmi(pos, ng, n_pos, n)), "pmi_negative": _r(pmi(neg, ng, n_neg, n))})
            scored = []
            for w in words:
                k = c.pairs[(key, w)]
                if k >= min_count:
                    scored.append((w[1], pmi(k, ng, c.seg[w], n), k))
            scored.sort(key=lambda t: (-t[1], t[0]))
            if scored:
                top_words[key] = [[w, _r(p), k] for w, p, k in scored[:top_k]]
    return {
        "rows": c.rows, "rows_with_mentions": c.rows_with_mentions, "segments": n,
        "min_count": min_count,
        "axes": axes,
        "gender": {"female_terms": female_terms, "male_terms": male_terms,
                   "female_share": _r(female_terms / (female_terms + male_terms)) if female_terms + male_terms else None,
                   "segments_female": nf, "segments_male": nm},
        "occupations": occupations,
        "sentiment": {"segments_positive": n_pos, "segments_negative": n_neg,
                      "positive_share": _r(n_pos / n) if n else None, "negative_share": _r(n_neg / n) if n else None,
                      "groups": groups_sent, "top_words": top_words},
    }


class BiasAudit(GlobalOp):
    """Count demographic group mentions per row and summarise the run: shares, gender by occupation, sentiment PMI.

    Term lists (``gristmill/data/bias/``, sources in each file's header): groups on seven
    axes — gender, race/ethnicity, religion, age, nationality, disability, sexual
    orientation — written for gristmill along CrowS-Pairs' and HolisticBias's axes;
    occupations with the U.S. share of women for WinoBias's 40 (Zhao et al. 2018, from
    BLS figures); positive and negative words from the VADER lexicon (MIT), those with
    ``|valence| >= min_valence``. Terms match as whole words; ambiguous descriptors count
    only before a person noun (``black {person}``: "black women", not "black cat").

    Every row gets ``bias.groups`` (the distinct ``axis:group`` it mentions, sorted),
    ``bias.group_mentions`` (each one's term occurrences, aligned with ``bias.groups``),
    ``bias.mentions`` (group term occurrences), ``bias.female_terms`` and
    ``bias.male_terms``, ``bias.female_segments`` and ``bias.male_segments`` (its segments
    holding a female / male term) and ``bias.occupations_female`` / ``_male`` (each occupation
    once per segment it shares with a female / male term); no row is dropped. These columns
    are additive over rows, so the audit's gate metrics (``bias.gender.female_share``, ...;
    :mod:`gristmill.ops.bias.audit_metrics`) are measured on whatever rows reach the output. The run's summary (from all rows this step
    saw) is written to ``summaries/<step>.json`` and shown in the report: mention shares
    within each axis, the gender of segments mentioning each occupation (raw, adjusted for
    how often each gender is mentioned overall, and as a log2 skew) beside the U.S. share
    of women, and per group the share of its segments with positive and negative words,
    their PMI and the sentiment words most associated with it (``min_count`` co-occurrences
    or more). See the module docstring for the definitions.
    """

    name = "bias.audit"
    version = "2"

    class Params(Params):
        column: str = Field("text", description="String column to audit.")
        groups_path: str | None = Field(None, description="Group terms file: axis, group, term per line, tab-"
                                        "separated (None: the shipped list).")
        occupations_path: str | None = Field(None, description="Occupations file: occupation, percent women, "
                                             "forms (None: the shipped list).")
        sentiment_path: str | None = Field(None, description="Sentiment words file: word, valence (None: "
                                           "the shipped VADER subset).")
        min_valence: float = Field(1.5, ge=0, description="Least |valence| for a word to count as positive "
                                   "or negative.")
        min_count: int = Field(5, ge=1, description="Least co-occurrences for a word in a group's top "
                                 "sentiment words.")
        top_k: int = Field(10, ge=1, description="Terms and words listed per group.")
        max_segment_words: int = Field(64, ge=1, description="Longest segment in words; longer sentences are cut.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.result: dict[str, Any] | None = None

    @classmethod
    def audit_section(cls) -> AuditSection:
        """The ``bias`` audit summary and the card's Bias section (:mod:`gristmill.ops.bias.audit_metrics`)."""
        return BIAS_AUDIT

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [GROUPS, GROUP_MENTIONS, MENTIONS, FEMALE, MALE, FEMALE_SEGMENTS, MALE_SEGMENTS,
                OCCUPATIONS_FEMALE, OCCUPATIONS_MALE]

    def input_files(self) -> list[Path]:
        p = self.params
        return [self.resolve_path(x) for x in (p.groups_path, p.occupations_path, p.sentiment_path) if x]

    def lexicon(self) -> Lexicon:
        p = self.params

        def path(x: str | None) -> str | None:
            return str(self.resolve_path(x)) if x else None

        return lexicon(path(p.groups_path), path(p.occupations_path), path(p.sentiment_path), p.min_valence)

    def setup(self, ctx: Context) -> None:
        self.lexicon()

    def summarize(self, batch: pa.Table) -> BiasCounts:
        lex = self.lexicon()
        counts = BiasCounts()
        for text in column_list(batch, self.params.column):
            found = _row_analysis(text, lex, self.params.max_segment_words, counts)
            counts.rows += 1
            counts.rows_with_mentions += bool(found)
            counts.mentions.update(found)
            counts.rows_by_group.update(found.keys())
            counts.rows_by_axis.update({g.split(":", 1)[0] for g in found})
        return counts

    def fit(self, summaries: list[Any]) -> None:
        total = BiasCounts()
        for s in summaries:
            if s is not None:
                total.merge(s)
        self.result = summarize_counts(total, self.lexicon(), self.params.min_count, self.params.top_k)

    def run_summary(self) -> dict[str, Any] | None:
        """The run-level summary computed by :meth:`fit` (written to ``summaries/<step>.json``)."""
        return self.result

    def apply(self, batch: pa.Table) -> StepResult:
        lex = self.lexicon()
        cols: dict[str, list[Any]] = {c: [] for c in self.writes()}
        for text in column_list(batch, self.params.column):
            row = BiasCounts()
            found = _row_analysis(text, lex, self.params.max_segment_words, row)
            groups = sorted(found)
            cols[GROUPS].append(groups)
            cols[GROUP_MENTIONS].append([found[g] for g in groups])
            cols[MENTIONS].append(sum(found.values()))
            cols[FEMALE].append(found[FEMALE_GROUP])
            cols[MALE].append(found[MALE_GROUP])
            cols[FEMALE_SEGMENTS].append(row.seg[FEMALE_GROUP])
            cols[MALE_SEGMENTS].append(row.seg[MALE_GROUP])
            for col, gender in ((OCCUPATIONS_FEMALE, FEMALE_GROUP), (OCCUPATIONS_MALE, MALE_GROUP)):
                cols[col].append(sorted(o[1] for (g, o), k in row.pairs.items() if g == gender and o[0] == "o"
                                        for _ in range(k)))
        types = {GROUPS: pa.list_(pa.string()), GROUP_MENTIONS: pa.list_(pa.int64()),
                 OCCUPATIONS_FEMALE: pa.list_(pa.string()), OCCUPATIONS_MALE: pa.list_(pa.string())}
        for col, values in cols.items():
            batch = set_column(batch, col, pa.array(values, types.get(col, pa.int64())))
        return StepResult(batch)
