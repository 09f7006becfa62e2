"""English words exactly as datatrove's ``split_into_words(text, "eng")`` gives them, without spaCy.

datatrove (0.10.1) tokenizes English with ``spacy.blank("en")`` and drops whitespace
tokens. spaCy's tokenizer works on each whitespace-separated chunk alone: it peels
prefixes and suffixes off a chunk (punctuation, quotes, currency, ``'s``, a period after
a lower-case letter or two capitals, ...), stops at a tokenizer exception (``don't`` ->
``do n't``, ``Mr.``, ``:)``), keeps URLs whole, splits the rest on infixes (hyphens and
``--`` between letters, ``...``, ``.`` between a lower-case and an upper-case letter,
``,`` ``:`` ``/`` ``=`` between letters), then re-finds exceptions among the resulting
tokens (its "special matcher": ``Mr`` ``.`` -> ``Mr.``). :func:`tokenize_chunk` is a port
of that algorithm (spaCy 3.8's ``Tokenizer._split_affixes`` and ``_attach_tokens``) with
spaCy's English rules, held in ``gristmill/data/words_en.json``; its regexes match the
same strings as spaCy's but test their large character sets only where they can apply.
:class:`Lexicon` caches every chunk's words, so a text costs one ``str.split`` and one
dictionary lookup per chunk, and gives each word an id and numpy features.

One known difference: spaCy runs its special matcher over the whole text, so a match
across a space, which it then discards, can still block another. On the Gutenberg sample
this changes 2 of 14,877 documents by one word: for ``feedin' 'em."`` the first pass
gives ``feedin ' ' em . "``; the matcher should rejoin ``' em`` into the exception
``'em``, but the exception ``''`` matching the two apostrophes across the space blocks
it, so spaCy keeps ``'`` ``em``, where gristmill (matching within each chunk) gives
``'em``, as spaCy's exception table intends.
"""

from __future__ import annotations

import json
import re
from itertools import chain
from pathlib import Path
from types import SimpleNamespace

import numpy as np

_WORDS_DATA = Path(__file__).parents[2] / "data" / "words_en.json"
_d = SimpleNamespace(**json.loads(_WORDS_DATA.read_text(encoding="utf-8")))
_d.EXCEPTIONS = tuple(_d.EXCEPTIONS)

__all__ = ["ConcatHashes", "Lexicon", "lexicon", "tokenize_chunk", "words"]


def _split_chars(s: str) -> list[str]:
    return s.strip().split(" ")


def _merge_chars(s: str) -> str:
    return s.strip().replace(" ", "|")


def _group_chars(s: str) -> str:
    return s.strip().replace(" ", "")


_ASTRAL = "\U00010000-\U0010FFFF"


def _one_of(name: str, extra: str = "", fast: bool = True) -> str:
    """A pattern for one character of spaCy's class ``name`` (plus ``extra`` set members).

    spaCy writes ``[{ALPHA}...]``; Python's ``re`` tests a set that has characters beyond
    U+FFFF by walking its ranges, so the fast form tests the BMP part as one set and
    the rest only behind a one-range guard.
    """
    bmp, astral = getattr(_d, name), getattr(_d, name + "_ASTRAL")
    if not fast:
        return f"[{bmp}{astral}{extra}]"
    return f"(?:[{bmp}{extra}]|(?=[{_ASTRAL}])[{astral}])"


def _affix_patterns(fast: bool = True) -> tuple[str, str, str]:
    """spaCy's English prefix, suffix and infix regexes (``fast``: the same matches, sooner).

    spacy.lang.punctuation.TOKENIZER_PREFIXES / TOKENIZER_SUFFIXES and
    spacy.lang.en.punctuation.TOKENIZER_INFIXES, joined as spacy.util.compile_*_regex
    does. The fast form also puts the literal before a lookbehind (``,(?<=X,)`` for
    ``(?<=X),``) so the lookbehind's big set is tested only where the literal is.
    """
    list_punct, list_quotes, list_currency = (_split_chars(x) for x in (_d.PUNCT, _d.QUOTES, _d.CURRENCY))
    ellipses = [r"\.\.+", "…"]
    icons = [_one_of("ICONS", fast=fast)]
    punct, hyphens = _merge_chars(_d.PUNCT), _merge_chars(_d.HYPHENS)
    currency, units, quotes = _merge_chars(_d.CURRENCY), _merge_chars(_d.UNITS), _group_chars(_d.QUOTES)
    a, a0 = _one_of("ALPHA", fast=fast), _one_of("ALPHA", "0-9", fast=fast)
    au = _one_of("ALPHA_UPPER", fast=fast)
    al_dot = _one_of("ALPHA_LOWER", rf"0-9%²\-\+{punct}(?:{quotes})", fast=fast)
    al_q, au_q = _one_of("ALPHA_LOWER", quotes, fast=fast), _one_of("ALPHA_UPPER", quotes, fast=fast)
    prefixes = (["§", "%", "=", "—", "–", r"\+(?![0-9])"] + list_punct + ellipses + list_quotes + list_currency
                + icons)
    suffixes = list_punct + ellipses + list_quotes + icons + ["'s", "'S", "’s", "’S", "—", "–"] + [
        r"(?<=[0-9])\+",
        r"(?<=°[FfCcKk])\.",
        rf"(?<=[0-9])(?:{currency})",
        rf"(?<=[0-9])(?:{units})",
        rf"\.(?<={al_dot}\.)" if fast else rf"(?<={al_dot})\.",
        rf"\.(?<={au}{au}\.)" if fast else rf"(?<={au}{au})\.",
    ]
    infixes = ellipses + icons + [
        r"(?<=[0-9])[+\-\*^](?=[0-9-])",
        rf"\.(?<={al_q}\.)(?={au_q})" if fast else rf"(?<={al_q})\.(?={au_q})",
        rf",(?<={a},)(?={a})" if fast else rf"(?<={a}),(?={a})",
        rf"(?=[-–—~])(?<={a0})(?:{hyphens})(?={a})" if fast else rf"(?<={a0})(?:{hyphens})(?={a})",
        rf"[:<>=/](?<={a0}[:<>=/])(?={a})" if fast else rf"(?<={a0})[:<>=/](?={a})",
    ]
    return ("|".join("^" + x for x in prefixes if x.strip()), "|".join(x + "$" for x in suffixes if x.strip()),
            "|".join(x for x in infixes if x.strip()))


_PREFIX_RE, _SUFFIX_RE, _INFIX_RE = (re.compile(x) for x in _affix_patterns())
_prefix_search = _PREFIX_RE.match  # every prefix is anchored: match is search
# Every suffix is at most 5 characters long except a run of dots, so the search can start
# near the end (lookbehinds still see the characters before): a match at the start
# position may be the tail of a longer run of dots, and then the whole string is searched.
_SUFFIX_WINDOW = 8


# A suffix ends with one of these characters or an icon, is a possessive 's, or follows a digit.
_SUFFIX_LAST = frozenset(x[-1] for x in _split_chars(_d.PUNCT) + _split_chars(_d.QUOTES) if x) | set(".…—–+")
_is_icon = re.compile(_one_of("ICONS")).match
_has_digit = re.compile("[0-9]").search
_POSSESSIVE = ("'s", "'S", "’s", "’S")


def _suffix_search(s: str) -> re.Match[str] | None:
    if not s or not (s[-1] in _SUFFIX_LAST or _has_digit(s) or s[-2:] in _POSSESSIVE or _is_icon(s[-1])):
        return None
    pos = len(s) - _SUFFIX_WINDOW
    if pos <= 0:
        return _SUFFIX_RE.search(s)
    m = _SUFFIX_RE.search(s, pos)
    if m is not None and m.start() == pos:
        return _SUFFIX_RE.search(s)
    return m


_infix_finditer = _INFIX_RE.finditer
# every infix match starts with one of these characters: a cheap test before the infix regex
_infix_possible = re.compile(rf"[.…+\-*^,:<>=/–—~{_d.ICONS}]|(?=[{_ASTRAL}])[{_d.ICONS_ASTRAL}]").search
_url_match = re.compile("(?u)" + _d.URL_PATTERN).match
_SPECIAL: dict[str, tuple[str, ...]] = {}
for _line in _d.EXCEPTIONS:
    _key, *_toks = _line.split(" ")
    _SPECIAL[_key] = tuple(_toks) if _toks else (_key,)



def _split(chunk: str, specials: dict[str, tuple[str, ...]] | None) -> tuple[str, ...]:
    """Tokens of one chunk by the affix rules (spaCy's ``_split_affixes`` + ``_attach_tokens``)."""
    if chunk.isalpha():  # no affix rule matches letters alone
        return (chunk,) if specials is None else specials.get(chunk, (chunk,))
    if specials is not None and chunk in specials:
        return specials[chunk]
    prefixes: list[str] = []
    suffixes: list[str] = []
    s = chunk
    last = -1
    while s and len(s) != last:
        if specials is not None and s in specials:
            break
        last = len(s)
        m = _prefix_search(s)
        pre = m.end() - m.start() if m else 0
        if pre:
            minus_pre = s[pre:]
            if minus_pre and specials is not None and minus_pre in specials:
                prefixes.append(s[:pre])
                s = minus_pre
                break
        rest = s[pre:] if pre else s
        m = _suffix_search(rest)
        suf = len(rest) - m.start() if m else 0
        if suf:
            minus_suf = s[:-suf]
            if minus_suf and specials is not None and minus_suf in specials:
                suffixes.append(s[-suf:])
                s = minus_suf
                break
        if pre and suf and pre + suf <= len(s):
            prefixes.append(s[:pre])
            suffixes.append(s[-suf:])
            s = s[pre:-suf]
        elif pre:
            prefixes.append(s[:pre])
            s = s[pre:]
        elif suf:
            suffixes.append(s[-suf:])
            s = s[:-suf]
    tokens = prefixes
    if s:
        if specials is not None and s in specials:
            tokens.extend(specials[s])
        elif not _infix_possible(s) or _url_match(s):
            tokens.append(s)
        else:
            start = 0
            for m in _infix_finditer(s):
                a, b = m.span()
                if a == 0:
                    continue
                if a != start:
                    tokens.append(s[start:a])
                if a != b:
                    tokens.append(s[a:b])
                start = b
            if s[start:]:
                tokens.append(s[start:])
    tokens.extend(reversed(suffixes))
    return tuple(tokens)


def _has_affix(key: str) -> bool:
    return bool(_prefix_search(key) or _suffix_search(key) or next(_infix_finditer(key), None))


# spaCy's "special matcher": exceptions that contain affixes are also found as token
# sequences (their affix-only tokenization) after the first pass, e.g. ``Mr`` ``.`` -> ``Mr.``.
_MATCH: dict[tuple[str, ...], str] = {}
for _key in _SPECIAL:
    if _has_affix(_key):
        _MATCH[_split(_key, None)] = _key
_MATCH_MAX = max(map(len, _MATCH))
_MATCH_FIRST = {p[0] for p in _MATCH}


def _apply_special_matcher(tokens: tuple[str, ...]) -> tuple[str, ...]:
    n = len(tokens)
    found = []
    for i in range(n):
        if tokens[i] not in _MATCH_FIRST:
            continue
        for j in range(i + 1, min(n, i + _MATCH_MAX) + 1):
            if tokens[i:j] in _MATCH:
                found.append((i, j))
    if not found:
        return tokens
    # longest first, then leftmost; a span is kept unless its first or last token is taken
    found.sort(key=lambda se: (se[0] - se[1], se[0]))
    seen: set[int] = set()
    kept = []
    for i, j in found:
        if i not in seen and j - 1 not in seen:
            kept.append((i, j))
        seen.update(range(i, j))
    kept.sort()
    out: list[str] = []
    pos = 0
    for i, j in kept:
        out.extend(tokens[pos:i])
        out.extend(_SPECIAL["".join(tokens[i:j])])
        pos = j
    out.extend(tokens[pos:])
    return tuple(out)


def tokenize_chunk(chunk: str) -> tuple[str, ...]:
    """spaCy's English tokens of one whitespace-free string."""
    tokens = _split(chunk, _SPECIAL)
    if len(tokens) > 1:
        tokens = _apply_special_matcher(tokens)
    return tokens


class Lexicon:
    """Interned words of the texts seen so far, with per-word features as numpy arrays.

    :meth:`encode` turns a text into word ids (the words of :func:`tokenize_chunk`, one
    chunk cache hit per whitespace-separated chunk). For word id ``i``: ``strings[i]``,
    ``length[i]`` (characters), ``flags[i]`` (:data:`HAS_ALPHA`: a letter somewhere;
    :data:`NON_SYMBOL`: a character outside datatrove's punctuation set) and ``hash[i]``,
    the word's polynomial hash sum((ord(c) + 1) * P**k) mod 2**64, so the hash of a
    concatenation of words can be assembled from its words (see :class:`ConcatHashes`).
    After ``limit`` distinct chunks the lexicon starts afresh (ids of earlier texts expire).
    """

    HAS_ALPHA = 1
    NON_SYMBOL = 2
    RECENT_TEXTS = 8192
    RECENT_WORDS = 4_000_000

    def __init__(self, limit: int = 500_000) -> None:
        self.limit = limit
        self._reset()

    def _reset(self) -> None:
        self.strings: list[str] = []
        self._ids: dict[str, int] = {}
        self._chunks: dict[str, tuple[int, ...]] = {}
        # the ids of recent texts: the next operator on the same batch finds them here
        self._recent: dict[str, np.ndarray] = {}
        self._recent_words = 0
        self.length = np.zeros(1024, np.int64)
        self.flags = np.zeros(1024, np.uint8)
        self.hash = np.zeros(1024, np.uint64)

    def __len__(self) -> int:
        return len(self.strings)

    def encode(self, text: str) -> np.ndarray:
        """Word ids (int64) of ``text`` (read-only; remembered for the last few thousand texts)."""
        ids = self._recent.get(text)
        if ids is not None:
            return ids
        if len(self._chunks) > self.limit:
            self._reset()
        ids = self._encode(text)
        ids.flags.writeable = False
        recent = self._recent
        recent[text] = ids
        self._recent_words += len(ids)
        while len(recent) > self.RECENT_TEXTS or self._recent_words > self.RECENT_WORDS:
            self._recent_words -= len(recent.pop(next(iter(recent))))
        return ids

    def _encode(self, text: str) -> np.ndarray:
        parts = text.split()
        entries = list(map(self._chunks.get, parts))
        if None in entries:
            for k, e in enumerate(entries):
                if e is None:
                    entries[k] = self._add_chunk(parts[k])
        return np.fromiter(chain.from_iterable(entries), np.int64)

    def _add_chunk(self, chunk: str) -> tuple[int, ...]:
        ids = self._chunks[chunk] = tuple(map(self._intern, tokenize_chunk(chunk)))
        return ids

    def id_of(self, word: str) -> int | None:
        """The id of ``word`` if some encoded text had it."""
        return self._ids.get(word)

    def _intern(self, word: str) -> int:
        i = self._ids.get(word)
        if i is not None:
            return i
        i = self._ids[word] = len(self.strings)
        self.strings.append(word)
        if i >= len(self.length):
            size = 2 * len(self.length)
            self.length = np.resize(self.length, size)
            self.flags = np.resize(self.flags, size)
            self.hash = np.resize(self.hash, size)
        self.length[i] = len(word)
        self.flags[i] = (self.HAS_ALPHA * any(c.isalpha() for c in word)
                         | self.NON_SYMBOL * any(c not in _SYMBOLS for c in word))
        h, p = 0, 1
        for c in word:
            h = (h + (ord(c) + 1) * p) & _MASK64
            p = (p * HASH_BASE) & _MASK64
        self.hash[i] = h
        return i


_SYMBOLS = frozenset(_d.DATATROVE_PUNCTUATION)
_MASK64 = (1 << 64) - 1
HASH_BASE = 0x9E3779B97F4A7C15  # odd, so invertible mod 2**64
_HASH_BASE_INV = pow(HASH_BASE, -1, 1 << 64)
_pow = np.ones(1, np.uint64)
_pow_inv = np.ones(1, np.uint64)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """HASH_BASE**k and its inverse mod 2**64 for k < n (at least)."""
    global _pow, _pow_inv
    if len(_pow) < n:
        size = max(n, 2 * len(_pow), 1 << 16)
        _pow = _cumpow(HASH_BASE, size)
        _pow_inv = _cumpow(_HASH_BASE_INV, size)
    return _pow, _pow_inv


def _cumpow(base: int, size: int) -> np.ndarray:
    out = np.full(size, base, np.uint64)
    out[0] = 1
    return np.cumprod(out)


class ConcatHashes:
    """Hashes of concatenations of consecutive words of one text, for any n.

    Built from the words' :attr:`Lexicon.hash` and :attr:`Lexicon.length`: with the
    text's words concatenated, ``prefix[k]`` is the hash of the first k words, and the
    hash of words i..i+n-1 is ``(prefix[i+n] - prefix[i]) / P**offset[i]`` mod 2**64.
    Equal concatenations get equal hashes; different ones collide with probability ~2**-64.
    """

    def __init__(self, hashes: np.ndarray, lengths: np.ndarray) -> None:
        self.offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        pw, self._pw_inv = _powers(int(self.offsets[-1]) + 1)
        self.prefix = np.zeros(len(hashes) + 1, np.uint64)
        np.cumsum(hashes * pw[self.offsets[:-1]], out=self.prefix[1:])

    def ngrams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Hash and characters of the concatenation of every n consecutive words."""
        m = len(self.prefix) - n
        if m <= 0:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64)
        off = self.offsets
        return (self.prefix[n:] - self.prefix[:m]) * self._pw_inv[off[:m]], off[n:] - off[:m]


_LEXICON: Lexicon | None = None


def lexicon() -> Lexicon:
    """The process's shared :class:`Lexicon` (one per worker)."""
    global _LEXICON
    if _LEXICON is None:
        _LEXICON = Lexicon()
    return _LEXICON


def words(text: str) -> list[str]:
    """The words of ``text`` as datatrove's English ``split_into_words`` gives them."""
    lex = lexicon()
    strings = lex.strings
    return [strings[i] for i in lex.encode(text).tolist()]
