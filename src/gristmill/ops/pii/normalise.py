"""What PII detection looks at: views of a text with invisible characters, look-alike
characters and bidirectional overrides undone, and the map from each view back to the text.

A value can hide from the regular expressions behind characters a reader never sees:
``jo<ZWSP>uni@corp.fi`` renders as ``jouni@corp.fi``, and ``<RLO>if.proc@inuoj`` renders
as ``jouni@corp.fi`` too. Detection therefore runs on up to three *views* of each text
and maps every span back to the text's own offsets (:meth:`View.to_text`), so that
redaction replaces the whole original stretch, the hidden characters inside it included:

* ``spaced`` (always): invisible characters become spaces, so one that separates two
  values still separates them; the character substitutions below are applied. Same
  length as the text: offsets are unchanged.
* ``joined`` (when the text holds an invisible character): invisible characters are
  deleted, so one inside a value no longer splits it.
* ``visual`` (when the text holds RIGHT-TO-LEFT OVERRIDE, U+202E): the ``joined`` view
  in display order, each override run reversed (up to its POP DIRECTIONAL FORMATTING,
  the end of the line or the end of the text), so a value stored backwards is read the
  way it is shown.

*Invisible* characters are Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties,
Unicode 15): soft hyphen U+00AD, combining grapheme joiner, Arabic letter mark, Hangul fillers,
Khmer inherent vowels, Mongolian variation selectors and vowel separator, ZWSP / ZWNJ / ZWJ
U+200B–U+200D, LRM / RLM U+200E–U+200F, bidi embeddings and overrides U+202A–U+202E, word
joiner and invisible operators U+2060–U+2064, bidi isolates U+2066–U+2069 and the deprecated
format characters up to U+206F, variation selectors, BOM / ZWNBSP U+FEFF, shorthand format
controls, musical-symbol format controls and tags (U+E0000–U+E0FFF).

*Substitutions* (one character for one, so they never move an offset): space separators
(NBSP, thin, narrow, ideographic, ...) become a space; hyphens, dashes and the minus sign
become ``-``; decimal digits of any script (Arabic-Indic, Devanagari, fullwidth,
mathematical) become ASCII digits; and any other character whose NFKC form is one ASCII
character becomes it (fullwidth ``ｊｏｕｎｉ＠ｃｏｒｐ．ｆｉ``, mathematical bold letters,
the Kelvin sign). Full NFKC is not applied: it expands characters (``²`` → ``2``, ``①``
→ ``1``, ``ﬁ`` → ``fi``), which would glue digits into numbers that are not there
(``10²`` is not ``102``) and break the one-to-one map; superscripts, fractions and
circled numbers (category No) are left alone.

Pure-ASCII text has one view, the text itself, at no cost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["INVISIBLE", "View", "count_invisible", "views"]

# Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.0).
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
INVISIBLE = re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" if a != b else re.escape(chr(a))
                                     for a, b in _IGNORABLE_RANGES) + "]")
_RLO, _PDF = "\u202e", "\u202c"
_PUSH = frozenset("\u202a\u202b\u202d\u202e")
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2212\ufe58\ufe63\uff0d")


def _substitute(cp: int) -> int | str:
    ch = chr(cp)
    cat = unicodedata.category(ch)
    if cat == "Zs":
        return " "
    if ch in _DASHES:
        return "-"
    if cat == "Nd":
        return str(unicodedata.decimal(ch))
    if cat != "No":
        folded = unicodedata.normalize("NFKC", ch)
        if len(folded) == 1 and folded.isascii() and folded.isprintable():
            return folded
    return cp


class _Table(dict):  # type: ignore[type-arg]
    """A lazily filled ``str.translate`` table: each code point's substitute, worked out once."""

    def __init__(self, invisible: str | None) -> None:
        super().__init__()
        self.invisible = invisible

    def __missing__(self, cp: int) -> int | str | None:
        if INVISIBLE.match(chr(cp)):
            value: int | str | None = self.invisible
        else:
            value = _substitute(cp)
        self[cp] = value
        return value


_SPACED = _Table(" ")
_JOINED = _Table(None)


@dataclass(frozen=True, slots=True)
class View:
    """A text as a detector sees it; ``index[k]`` is the text offset of the view's character ``k``
    (``None``: the same offsets as the text)."""

    name: str
    text: str
    index: tuple[int, ...] | None = None

    def to_text(self, start: int, end: int) -> tuple[int, int]:
        """The text range that the view's ``[start, end)`` came from (everything between its first
        and last character, so invisible characters inside are covered)."""
        if self.index is None:
            return start, end
        if self.name != "visual":  # monotone
            return self.index[start], self.index[end - 1] + 1
        covered = self.index[start:end]
        return min(covered), max(covered) + 1

    def from_text(self, start: int, end: int) -> tuple[int, int] | None:
        """The view range of the text's ``[start, end)`` (``None`` when nothing of it is in the view);
        only for the views whose order is the text's."""
        if self.index is None:
            return start, end
        from bisect import bisect_left

        a, b = bisect_left(self.index, start), bisect_left(self.index, end)
        return (a, b) if a < b else None


def count_invisible(text: str | None) -> int:
    """How many invisible (default-ignorable) characters ``text`` holds."""
    if not text or text.isascii():
        return 0
    return sum(1 for _ in INVISIBLE.finditer(text))


def _override_runs(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the characters each RIGHT-TO-LEFT OVERRIDE reverses (outermost runs)."""
    pos = 0
    while (k := text.find(_RLO, pos)) >= 0:
        depth, j = 1, k + 1
        while j < len(text) and text[j] != "\n":
            if text[j] in _PUSH:
                depth += 1
            elif text[j] == _PDF:
                depth -= 1
                if depth == 0:
                    break
            j += 1
        yield k + 1, j
        pos = j + 1


def views(text: str) -> list[View]:
    """The views of ``text`` that detection runs on (see the module doc); the first is ``spaced``."""
    if text.isascii():
        return [View("spaced", text)]
    spaced = View("spaced", text.translate(_SPACED))
    hidden = [m.start() for m in INVISIBLE.finditer(text)]
    if not hidden:
        return [spaced]
    gone = set(hidden)
    keep = [i for i in range(len(text)) if i not in gone]
    out = [spaced, View("joined", text.translate(_JOINED), tuple(keep))]
    if _RLO in text:
        order = list(range(len(text)))
        for a, b in _override_runs(text):
            order[a:b] = order[a:b][::-1]
        shown = [i for i in order if i not in gone]
        out.append(View("visual", "".join(spaced.text[i] for i in shown), tuple(shown)))
    return out
