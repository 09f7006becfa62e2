"""``bias.counterfactual``: gender-swapped copies of rows (counterfactual data augmentation).

:func:`swap_gender` rewrites a text word by word. Fixed pairs (man/woman, king/queen,
...) and first names come from ``gristmill/data/bias/``; pronouns and titles depend on
their neighbours and are decided here:

* ``he``/``she``, ``himself``/``herself``, ``him`` -> ``her``, ``hers`` -> ``his``.
* ``his`` -> ``her`` before a noun phrase ("his book" -> "her book"), else ``hers``
  ("the book is his" -> "hers").
* ``her`` -> ``his`` before a noun phrase ("her book"), else ``him`` ("saw her",
  "gave her a pen", "let her go", "kissed her gently").

"Before a noun phrase" means the next word follows after white space only and is neither
a function word (article, pronoun, preposition, conjunction, auxiliary), an ``-ly``
adverb, nor a common verb; a noun/verb word ("her smile", "made her smile") counts as a
verb after a causative or perception verb (let, make, see, hear, watch, ...). An
intensifier (very, so, most) counts as starting a noun phrase when a content word follows
it ("her very own", but "loved her very much").

Titles: ``Mr`` -> ``Ms``; ``Mrs``, ``Ms`` and ``Miss`` (before a capitalised name) ->
``Mr``; ``Sir`` before a name <-> ``Dame``, otherwise ``sir`` <-> ``madam`` (and
``ma'am`` -> ``sir``); ``Lord``/``Lady`` before a name swap with each other, ``lady``
alone becomes ``gentleman``. First names swap only when capitalised, and not right after
``Mr``/``Mrs``/``Ms``/``Miss`` or after another listed first name, where they are
surnames ("Mr Thomas", "Emma Thomas"). The case of each word is kept (``HIS`` -> ``HER``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from gristmill.audit.metric import AuditSection
from gristmill.ops.base import Generator, Params
from gristmill.ops.bias.audit_metrics import BIAS_AUDIT
from gristmill.ops.bias.columns import COUNTERFACTUAL_OF, SWAPS
from gristmill.ops.text.phrases import data_lines
from gristmill.records import ID

__all__ = ["GenderCounterfactual", "swap_gender", "word_pairs", "name_pairs", "COUNTERFACTUAL_OF", "SWAPS"]

SUFFIX = "~cf"

_WORD = re.compile(r"[^\W_]+")

_DETERMINERS = set("a an the this that these those my your his her its our their some any no every each either "
                   "neither another such what which whose whatever whichever all both half".split())
_PRONOUNS = set("i me you he him she it we us they them myself yourself himself herself itself ourselves "
                "yourselves themselves one someone something anything nothing everything everyone anyone "
                "nobody somebody everybody anybody who whom whoever".split())
_PREPOSITIONS = set("to in at on for from with by of about into onto upon over under through across after before "
                    "behind beside besides between beyond during except inside outside near off out up down around "
                    "round along against among amongst toward towards without within like unlike than as since "
                    "until till via per despite past away back aside apart forward forth again too also not never "
                    "ever always often still yet already now then there here once twice soon later today tonight "
                    "tomorrow yesterday just instead anyway".split())
_CONJUNCTIONS = set("and or but nor so because if when whenever while whilst although though unless whether where "
                    "wherever how why lest".split())
_AUXILIARIES = set("is are was were be been being am has have had having do does did done will would shall should "
                   "can could may might must ought s t ll d ve re m".split())
_CLOSED = _DETERMINERS | _PRONOUNS | _PREPOSITIONS | _CONJUNCTIONS | _AUXILIARIES
# Verbs that rarely head a noun phrase: after "her" they make it an object ("let her go").
_VERBS = set("go goes come be do get know say tell think leave stay sit die eat speak wait fall win lose take make "
             "give find keep hold bring buy pay read write learn try want need hate understand believe remember "
             "forget become seem stop begin finish move ask marry tremble shiver blush faint weep sob arrive decide "
             "agree explain continue suffer enter see feel put let send meet wonder realize realise notice hear "
             "lie pass sit stand came went got said told thought sat died ate spoke waited fell won took gave kept "
             "held brought bought paid wrote tried seemed stopped began became asked arrived decided agreed explained "
             "continued entered saw met heard stood ran knew grew made found sent left meant".split())
# Words that are nouns as often as verbs ("her smile" / "made her smile").
_NOUN_VERBS = set("laugh smile cry walk talk run dance play work love look help kiss hug touch scream whisper return "
                  "escape rest use sing sleep drink live fight call answer dream sigh shout change visit wish".split())
_CAUSATIVE = set("let lets letting make makes made making help helps helped helping have has had having see sees "
                 "saw seen seeing watch watches watched watching hear hears heard hearing feel feels felt feeling bid "
                 "bade notice noticed noticing found find finds caught catch leave left keep kept imagine imagined "
                 "get got".split())
_INTENSIFIERS = set("very so too most more quite rather much least less really".split())
_LY_NOT_ADVERBS = set("only lovely lonely ugly early family friendly elderly holy silly jolly curly daily likely lively "
                      "belly lily ally bully deadly costly homely manly womanly motherly fatherly sisterly brotherly "
                      "heavenly worldly cowardly orderly stately timely ghastly surly sickly woolly wrinkly bubbly "
                      "prickly beastly courtly comely kindly gentlemanly ladylike scholarly".split())

_PRONOUN_SIMPLE = {"he": "she", "she": "he", "him": "her", "hers": "his", "himself": "herself", "herself": "himself"}
_TITLES_SURNAME = {"mr", "mrs", "ms", "miss", "mister"}
_SENTENCE_BREAK = set(".!?:;\n\"“”‘'«»()[]")


@cache
def word_pairs() -> dict[str, str]:
    """Both directions of the shipped gendered word pairs (the first listing of a word wins)."""
    out: dict[str, str] = {}
    for male, female in (r[:2] for r in data_lines("gender_pairs_en.txt")):
        out.setdefault(male.lower(), female.lower())
        out.setdefault(female.lower(), male.lower())
    return out


@cache
def name_pairs() -> dict[str, str]:
    """Both directions of the shipped first-name pairs, keyed by the name as written."""
    out: dict[str, str] = {}
    for male, female in (r[:2] for r in data_lines("names_en.txt")):
        out.setdefault(male, female)
        out.setdefault(female, male)
    return out


def _cased(original: str, replacement: str) -> str:
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _capitalised(word: str | None) -> bool:
    return bool(word) and word[0].isupper()


def starts_noun_phrase(nxt: str | None, after: str | None, prev: str | None) -> bool:
    """Whether ``nxt`` (followed by ``after``, preceded by the pronoun and ``prev``) starts a noun
    phrase that a possessive pronoun would determine. ``None`` means no word follows directly."""
    if nxt is None:
        return False
    w = nxt.lower()
    if w.isdigit():
        return True
    if w in _INTENSIFIERS:
        return after is not None and after.lower() not in _CLOSED and after.lower() not in _INTENSIFIERS \
            and after.lower() not in ("well", "little", "many", "few", "much")
    if w in _CLOSED or w in _VERBS:
        return False
    if w.endswith("ly") and w not in _LY_NOT_ADVERBS:
        return False
    p = (prev or "").lower()
    if p in _CAUSATIVE and (w in _NOUN_VERBS or w.endswith("ing") or w.endswith("ed")):
        return False
    return True


def swap_gender(text: str, names: bool = True) -> tuple[str, int]:
    """``text`` with gendered words swapped (see the module docstring) and the number of swaps."""
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    pairs = word_pairs()
    first_names = name_pairs() if names else {}
    out: list[str] = []
    pos = 0
    swaps = 0

    def word_at(i: int) -> str | None:
        return words[i][2] if 0 <= i < len(words) else None

    def next_word(i: int) -> str | None:
        """The word after ``i`` when only white space separates them."""
        if i + 1 >= len(words):
            return None
        gap = text[words[i][1]:words[i + 1][0]]
        return words[i + 1][2] if gap.isspace() else None

    def sentence_initial(i: int) -> bool:
        """Whether word ``i`` starts the text, a sentence, a line or a quotation."""
        if i <= 0:
            return True
        gap = text[words[i - 1][1]:words[i][0]]
        return any(c in _SENTENCE_BREAK for c in gap)

    def prev_word(i: int) -> str | None:
        if i == 0:
            return None
        gap = text[words[i - 1][1]:words[i][0]]
        return words[i - 1][2] if gap.isspace() or gap in (".", ". ") else None

    for i, (start, end, word) in enumerate(words):
        lower = word.lower()
        nxt = next_word(i)
        new = None
        if lower in _PRONOUN_SIMPLE:
            new = _PRONOUN_SIMPLE[lower]
        elif lower in ("his", "her"):
            after = next_word(i + 1) if nxt is not None else None
            np_follows = starts_noun_phrase(nxt, after, prev_word(i))
            new = ("her" if np_follows else "hers") if lower == "his" else ("his" if np_follows else "him")
        elif lower == "ma" and text[end:end + 3] in ("'am", "’am"):
            new, end = "sir", end + 3
            words[i] = (start, end, word)
        elif _capitalised(word) and lower in ("mr", "mrs", "ms", "miss"):
            if lower == "mr":
                new = "ms"
            elif lower != "miss" or _capitalised(text[end:].lstrip()[:1] or None):
                new = "mr"
        elif lower in ("sir", "dame") and _capitalised(word) and _capitalised(nxt):
            new = "dame" if lower == "sir" else "sir"
        elif lower in ("sir", "madam"):
            new = "madam" if lower == "sir" else "sir"
        elif lower in ("lord", "lady") and _capitalised(word) and _capitalised(nxt):
            new = "lady" if lower == "lord" else "lord"
        elif lower in pairs:
            new = pairs[lower]
        elif word in first_names or (word.isupper() and word.capitalize() in first_names):
            prev = prev_word(i)
            # After a title, a first name or a capitalised word inside a sentence, a name is a surname.
            is_surname = _capitalised(prev) and (prev.lower() in _TITLES_SURNAME or prev in first_names
                                                 or not sentence_initial(i - 1))
            if not is_surname:
                new = first_names[word.capitalize() if word.isupper() else word]
        if new is None:
            continue
        out.append(text[pos:start])
        out.append(_cased(word, new))
        pos = end
        swaps += 1
    out.append(text[pos:])
    return "".join(out), swaps


class GenderCounterfactual(Generator):
    """Add a gender-swapped copy of each row that has gendered words (pronouns by syntax, titles, names).

    For each row, the ``columns`` (string columns) are rewritten by :func:`swap_gender`:
    he/she, him/her, his -> her or hers and her -> his or him by the words around them,
    himself/herself, about 90 fixed pairs (man/woman, king/queen, waiter/waitress, ...),
    titles (Mr -> Ms; Mrs, Ms, Miss -> Mr; Sir/Dame, Lord/Lady before a name) and, with
    ``swap_names``, 50 pairs of common U.S. first names. A row with at least one swap gets
    a copy with id ``<id>~cf``, ``bias.counterfactual_of`` set to the original's id and
    ``bias.counterfactual_swaps`` the number of words changed; the originals are kept too
    (``keep_original``), each followed by its copy, with ``bias.counterfactual_of`` null.
    Nothing is dropped. The word lists and their sources are in ``gristmill/data/bias/``.

    Limits: English only; "her" before a word that is both noun and verb is read as
    possessive unless a causative or perception verb comes before ("made her smile");
    generic "he" and male-only contexts (a monastery, a fraternity) are swapped all the
    same; names that are also surnames stay only after a title or a listed first name.
    """

    name = "bias.counterfactual"
    version = "1"

    class Params(Params):
        columns: list[str] = Field(default_factory=lambda: ["text"], description="String columns to rewrite; "
                                   "columns missing from a batch are skipped.")
        swap_names: bool = Field(True, description="Swap first names from the shipped male/female pairs.")
        keep_original: bool = Field(True, description="Output the input rows as well as their copies.")

    example_params: ClassVar[dict[str, Any]] = {}

    @classmethod
    def audit_section(cls) -> AuditSection:
        """The ``bias`` audit summary and the card's Bias section, shared with ``bias.audit``."""
        return BIAS_AUDIT

    def reads(self) -> list[str]:
        return [ID]  # the columns to rewrite are optional: a batch without one skips it

    def writes(self) -> list[str]:
        return [COUNTERFACTUAL_OF, SWAPS]

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        p = self.params
        columns = [c for c in p.columns if c in batch.column_names]
        rows: list[dict[str, Any]] = []
        for row in batch.to_pylist():
            copy = dict(row)
            swaps = 0
            for c in columns:
                if isinstance(row.get(c), str):
                    copy[c], k = swap_gender(row[c], p.swap_names)
                    swaps += k
            if p.keep_original:
                rows.append({**row, COUNTERFACTUAL_OF: None, SWAPS: None})
            if swaps:
                copy[ID] = f"{row.get(ID)}{SUFFIX}"
                rows.append({**copy, COUNTERFACTUAL_OF: row.get(ID), SWAPS: swaps})
        return rows, []

    def output_schema(self, batch: pa.Table) -> pa.Schema:
        """The input's columns (types kept) plus the two provenance columns."""
        if COUNTERFACTUAL_OF in batch.column_names:
            return batch.schema
        return pa.schema([*batch.schema, pa.field(COUNTERFACTUAL_OF, pa.string()), pa.field(SWAPS, pa.int64())])
