"""Text cleaning mappers: ``clean.normalize`` (encoding, Unicode, controls, whitespace)
and ``clean.strip_html`` (markup to plain text). Both keep every row; ``None`` stays ``None``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import ftfy
import ftfy.fixes
import pyarrow as pa
from pydantic import Field

from gristmill.ops.base import Mapper, Params
from gristmill.records import set_column

__all__ = ["Normalize", "StripHtml", "normalize_text", "strip_html"]


def _map_column(batch: pa.Table, op: str, column: str, fn: Callable[[str], str]) -> pa.Table:
    """Apply ``fn`` to every non-null string of ``column``; the column keeps its Arrow type."""
    col = batch.column(column)
    if pa.types.is_null(col.type):
        return batch
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise TypeError(f"{op}: column {column!r} is {col.type}, expected a string column")
    values = [None if s is None else fn(s) for s in col.to_pylist()]
    return set_column(batch, column, pa.array(values, col.type))


# ---- clean.normalize ---------------------------------------------------------------

# ftfy only for what it alone can do (mojibake, C1 controls, ligatures, widths, surrogates).
# The steps that touch ASCII (line breaks, terminal escapes, controls) are ours, so ftfy is
# the identity on ASCII and can be skipped on ASCII lines without changing the result.
FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_line_breaks=False,
    remove_control_chars=False,
    uncurl_quotes=False,
    normalization=None,
    explain=False,
)


def _ftfy_line(text: str, compat: bool) -> str:
    """``ftfy.fix_text(text, FTFY_CONFIG)`` for one line, without ftfy's per-call config
    plumbing (a third of its time). ``compat=False`` skips the ligature and width fixes,
    which an NFKC/NFKD step after this one repeats anyway."""
    while True:
        orig = text
        text = ftfy.fix_encoding_and_explain(text, FTFY_CONFIG).text
        text = ftfy.fixes.fix_c1_controls(text)
        if compat:
            text = ftfy.fixes.fix_latin_ligatures(text)
            text = ftfy.fixes.fix_character_width(text)
        text = ftfy.fixes.fix_surrogates(text)
        if text == orig:
            return text


_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_TERMINAL_ESCAPE = re.compile("\x1b\\[[0-9;]*[A-Za-z]")
# C0/C1 controls except \t \n (and line breaks, turned into \n first), DEL, BOM and the
# invisible deprecated format characters and interlinear annotations ftfy also removes.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u206a-\u206f\ufeff\ufff9-\ufffc]")
# Whitespace (str.isspace) other than space and newline, spelled out: a character set scans
# faster than a category. Patterns start with literal text, which re finds fastest.
_ASCII_OTHER_SPACE = "\t\x0b\x0c\r\x1c\x1d\x1e\x1f"
_OTHER_SPACE = re.compile(f"[{_ASCII_OTHER_SPACE}\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_SPACES = re.compile("   *")
_BLANK_LINES = re.compile("\n\n\n+")


def fix_mojibake(text: str, compat: bool = True, fixed: set[str] | None = None,
                 tidy: bool = False) -> str:
    """ftfy's encoding fixes, run only on the lines that contain non-ASCII characters.

    ``fixed``, when given, collects the fixed lines (each is a fixpoint of the fix);
    ``tidy`` first collapses the spaces of those lines as :func:`normalize_whitespace`
    will, so that most lines come out of the whole pipeline as they came out of ftfy.
    """
    if text.isascii():
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.isascii():
            if tidy:
                line = _tidy_line(line)
            lines[i] = line = _ftfy_line(line, compat)
            if fixed is not None:
                fixed.add(line)
    return "\n".join(lines)


def _tidy_line(line: str) -> str:
    line = _OTHER_SPACE.sub(" ", line)
    if "  " in line:
        line = _SPACES.sub(" ", line)
    return line.rstrip(" ")


def normalize_line_breaks(text: str) -> str:
    """``\\r\\n``, ``\\r``, VT, FF, the separators U+001C–1E, NEL, U+2028 and U+2029 become ``\\n``."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if _LINE_BREAKS.search(text):
        text = _LINE_BREAKS.sub("\n", text)
    return text


def remove_controls(text: str) -> str:
    """Remove terminal escapes and control characters other than ``\\n`` and ``\\t``."""
    if not _CONTROLS.search(text):
        return text
    if "\x1b" in text:
        text = _TERMINAL_ESCAPE.sub("", text)
    return _CONTROLS.sub("", text)


def normalize_whitespace(text: str) -> str:
    """Collapse runs of spaces/tabs to one space, strip line ends, keep at most one blank line."""
    if text.isascii():
        other = any(c in text for c in _ASCII_OTHER_SPACE)
    else:
        other = _OTHER_SPACE.search(text) is not None
    if other:
        text = _OTHER_SPACE.sub(" ", text)
    if "  " in text:
        text = _SPACES.sub(" ", text)
    if " \n" in text:
        text = text.replace(" \n", "\n")
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


_MAX_ROUNDS = 4


def normalize_text(text: str, *, mojibake: bool = True, form: str | None = "NFKC",
                   controls: bool = True, whitespace: bool = True) -> str:
    """The ``clean.normalize`` pipeline on one string (steps in this order).

    Removing a control character or normalising can expose mojibake that ftfy did not see
    before (``™Â\\x9a`` → ``TMÂš``), so the pipeline repeats until ftfy leaves every line
    alone. Lines that came out of ftfy unchanged by the later steps need no second look.
    """
    compat = form not in ("NFKC", "NFKD")
    for _ in range(_MAX_ROUNDS):
        fixed: set[str] = set()
        if controls:
            text = normalize_line_breaks(text)
        if mojibake:
            text = fix_mojibake(text, compat, fixed, tidy=whitespace)
        if controls:
            text = remove_controls(text)
        if form is not None and not text.isascii():
            text = unicodedata.normalize(form, text)
        if whitespace:
            text = normalize_whitespace(text)
        if not mojibake or text.isascii():
            return text
        if all(line.isascii() or line in fixed or _ftfy_line(line, compat) == line
               for line in text.split("\n")):
            return text
    return text


class Normalize(Mapper):
    """Fix mojibake, normalise Unicode, remove control characters and tidy whitespace.

    Steps, each switchable:

    1. ``fix_mojibake``: ftfy repairs text decoded with the wrong codec
       (``donâ€™t`` → ``don’t``), C1 controls, ligatures and full-width forms. Curly quotes
       and HTML entities are left alone (see ``clean.strip_html``). Pure-ASCII lines,
       which ftfy cannot change, skip it.
    2. ``remove_control``: ``\\r\\n``, ``\\r``, vertical tab, form feed, NEL and
       U+2028/U+2029 become ``\\n`` (before step 1, so ftfy sees whole lines);
       terminal escape sequences, other C0/C1 controls, DEL and BOM are removed.
       ``\\n`` and ``\\t`` stay.
    3. ``normalize_unicode``: Unicode normal form ``form`` (NFKC by default).
    4. ``normalize_whitespace``: runs of spaces and tabs (any non-newline whitespace)
       become one space, spaces before a line break go, three or more line breaks become
       two, and the ends are stripped.

    If steps 2–4 expose new mojibake, the steps run again (at most four rounds).
    Keeps every row; ``None`` stays ``None``. Idempotent: running it twice equals once.
    """

    name = "clean.normalize"
    version = "1"
    idempotent = True

    class Params(Params):
        column: str = Field("text", description="String column to clean in place.")
        fix_mojibake: bool = Field(True, description="Repair mojibake and encoding glitches with ftfy.")
        remove_control: bool = Field(True, description="Turn line-break controls into \\n and drop other control characters.")
        normalize_unicode: bool = Field(True, description="Apply the Unicode normal form `form`.")
        form: Literal["NFC", "NFKC", "NFD", "NFKD"] = Field("NFKC", description="Unicode normal form.")
        normalize_whitespace: bool = Field(True, description="Collapse spaces/tabs, strip line ends, at most one blank line, strip ends.")

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [self.params.column]

    def normalize(self, text: str) -> str:
        p = self.params
        return normalize_text(text, mojibake=p.fix_mojibake,
                              form=p.form if p.normalize_unicode else None,
                              controls=p.remove_control, whitespace=p.normalize_whitespace)

    def map(self, batch: pa.Table) -> pa.Table:
        return _map_column(batch, self.name, self.params.column, self.normalize)


# ---- clean.strip_html ----------------------------------------------------------------

_PARAGRAPH_TAGS = frozenset("""
    address article aside blockquote body caption center details dialog div dl fieldset
    figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hgroup hr html legend main
    menu nav ol p section summary table title ul
""".split())
_LINE_TAGS = frozenset("br dd dt li option tbody tfoot thead tr".split())
_CELL_TAGS = frozenset("td th".split())
_PRE_TAGS = frozenset(("pre",))
DEFAULT_DROP_TAGS = ("script", "style", "noscript", "template")

# Markers stand in for removed tags until whitespace is settled; the input's own copies of
# these control characters are removed first (they have no meaning in HTML).
_LINE, _PARA, _PRE_OPEN, _PRE_CLOSE = "\x01", "\x02", "\x03", "\x04"
_MARKERS = re.compile("([\x01-\x04])")
_MARKER_CHARS = str.maketrans("", "", "\x01\x02\x03\x04")
_HTML_SPACE = re.compile("[ \t\n\r\x0c]+")
# Unquoted attribute text stops at '<' and quoted values are bounded, which keeps the scan
# for a never-closed tag short.
_ATTRS = r"""(?:[^>"'<]|"[^"]{0,2000}"|'[^']{0,2000}')*"""
_TAG = re.compile(rf"<!--.*?(?:-->|\Z)|<[!?][^<>]*>|<(/?)([a-zA-Z][a-zA-Z0-9:-]*){_ATTRS}>", re.S)


@lru_cache(maxsize=16)
def _tag_pattern(drop_tags: tuple[str, ...]) -> re.Pattern[str]:
    """Comments, declarations, dropped elements with their content (an unclosed one runs to
    the end), and any other tag, in that order of preference."""
    if not drop_tags:
        return _TAG
    names = "|".join(re.escape(t) for t in drop_tags)
    dropped = rf"<({names})\b{_ATTRS}>.*?(?:</\1\s*>|\Z)"
    return re.compile(rf"<!--.*?(?:-->|\Z)|{dropped}|<[!?][^<>]*>|<(/?)([a-zA-Z][a-zA-Z0-9:-]*){_ATTRS}>",
                      re.S | re.I)


def _tag_marker(m: re.Match[str]) -> str:
    name = m.group(m.re.groups)
    if name is None:  # comment, declaration or dropped element
        return ""
    name = name.lower()
    if name in _PARAGRAPH_TAGS:
        return _PARA
    if name in _LINE_TAGS:
        return _LINE
    if name in _CELL_TAGS:
        return " "
    if name in _PRE_TAGS:
        return _PRE_CLOSE if m.group(m.re.groups - 1) else _PRE_OPEN
    return ""


def _assemble(marked: str) -> str:
    """Turn marked text into plain text: HTML whitespace rules outside <pre>, breaks as newlines."""
    out: list[str] = []
    brk = 2  # pending break: 0 none, 1 line, 2 paragraph; 2 at the start drops leading space
    pre = 0
    for piece in _MARKERS.split(marked):
        if piece == _LINE:
            brk = max(brk, 1)
        elif piece == _PARA:
            brk = 2
        elif piece == _PRE_OPEN:
            pre, brk = pre + 1, 2
        elif piece == _PRE_CLOSE:
            pre, brk = max(pre - 1, 0), 2
        elif piece:
            if pre:
                text = piece.lstrip("\n") if brk else piece
            else:
                text = _HTML_SPACE.sub(" ", piece)
                if brk or (out and out[-1].endswith(" ")):
                    text = text.lstrip(" ")
            if not text:
                continue
            if brk and out:
                out[-1] = out[-1].rstrip(" \n")
                out.append("\n" * brk)
            brk = 0
            out.append(html.unescape(text) if "&" in text else text)
    return "".join(out).strip()


def strip_html(text: str, drop_tags: tuple[str, ...] = DEFAULT_DROP_TAGS) -> str:
    """Plain text of an HTML string; text without tags only has its entities unescaped."""
    if "<" not in text:
        return html.unescape(text) if "&" in text else text
    pattern = _tag_pattern(tuple(t.lower() for t in drop_tags))
    if not pattern.search(text):
        return html.unescape(text) if "&" in text else text
    marked, n = pattern.subn(_tag_marker, text.translate(_MARKER_CHARS))
    while n:  # removing an inline tag can join two halves of a new one: "<<b>i>"
        marked, n = pattern.subn(_tag_marker, marked)
    return _assemble(marked)


class StripHtml(Mapper):
    """Turn HTML into plain text: drop tags, scripts and styles, unescape entities.

    Text that contains a tag is read as HTML: comments and ``drop_tags`` elements (with
    their content) go, other tags are removed, whitespace collapses as a browser would
    (except inside ``<pre>``), block elements (``p``, ``div``, ``h1``…) leave a blank
    line, ``br``/``li``/``tr`` a line break, table cells a space, and entities are
    unescaped. Text with entities but no tag is only unescaped; text with neither ``<``
    nor ``&`` is left untouched.

    Keeps every row; ``None`` stays ``None``. Idempotent, except where the decoded text
    itself spells markup or entities (``&amp;lt;b&amp;gt;`` decodes to ``&lt;b&gt;``).
    """

    name = "clean.strip_html"
    version = "1"
    idempotent = True

    class Params(Params):
        column: str = Field("text", description="String column to strip in place.")
        drop_tags: tuple[str, ...] = Field(DEFAULT_DROP_TAGS,
                                           description="Elements removed together with their content.")

    def reads(self) -> list[str]:
        return [self.params.column]

    def writes(self) -> list[str]:
        return [self.params.column]

    def strip(self, text: str) -> str:
        return strip_html(text, self.params.drop_tags)

    def map(self, batch: pa.Table) -> pa.Table:
        return _map_column(batch, self.name, self.params.column, self.strip)
