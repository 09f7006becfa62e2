"""English word tokenizer that reproduces datatrove's ``split_into_words(text, "eng")``.

datatrove (0.10.1) tokenizes English with ``spacy.blank("en")`` and then drops
whitespace tokens. spaCy's tokenizer is context-free per whitespace-separated chunk: it
peels prefixes and suffixes off a chunk (punctuation, quotes, currency, ``'s``, a period
after a lower-case letter or two capitals, ...), stops at a tokenizer exception
(``don't`` -> ``do n't``, ``Mr.``, ``:)``), keeps URLs whole, and splits the rest on
infixes (hyphens and ``--`` between letters, ``...``, ``.`` between a lower-case and an
upper-case letter, ``,`` ``:`` ``/`` ``=`` between letters). :func:`words` runs the same
algorithm (spaCy's ``Tokenizer.explain``) with spaCy 3.8's English rules, which
:mod:`gristmill.ops._spacy_en` holds, and caches the tokens of every chunk it has seen,
so a document costs one ``str.split`` and one dictionary lookup per chunk.

Known difference: spaCy re-applies multi-token exceptions across chunk boundaries in a
second pass (its "special matcher"), which on the Gutenberg sample changes 2 of 14,877
documents by one token (``feedin' 'em`` gives ``' 'em`` here and ``' ' em`` in spaCy).
"""

from __future__ import annotations

import re

from gristmill.ops import _spacy_en as _d

__all__ = ["words", "tokenize_chunk", "clear_cache"]

_CACHE_LIMIT = 2_000_000


def _split_chars(s: str) -> list[str]:
    return s.strip().split(" ")


def _merge_chars(s: str) -> str:
    return s.strip().replace(" ", "|")


def _group_chars(s: str) -> str:
    return s.strip().replace(" ", "")


_LIST_PUNCT = _split_chars(_d.PUNCT)
_LIST_QUOTES = _split_chars(_d.QUOTES)
_LIST_CURRENCY = _split_chars(_d.CURRENCY)
_LIST_ELLIPSES = [r"\.\.+", "…"]
_LIST_ICONS = [f"[{_d.ICONS}]"]
_PUNCT = _merge_chars(_d.PUNCT)
_HYPHENS = _merge_chars(_d.HYPHENS)
_CURRENCY = _merge_chars(_d.CURRENCY)
_UNITS = _merge_chars(_d.UNITS)
_CONCAT_QUOTES = _group_chars(_d.QUOTES)
_A, _AL, _AU = _d.ALPHA, _d.ALPHA_LOWER, _d.ALPHA_UPPER

# spacy.lang.punctuation.TOKENIZER_PREFIXES / TOKENIZER_SUFFIXES and spacy.lang.en.punctuation.TOKENIZER_INFIXES
_PREFIXES = (["§", "%", "=", "—", "–", r"\+(?![0-9])"] + _LIST_PUNCT + _LIST_ELLIPSES + _LIST_QUOTES
             + _LIST_CURRENCY + _LIST_ICONS)
_SUFFIXES = (_LIST_PUNCT + _LIST_ELLIPSES + _LIST_QUOTES + _LIST_ICONS + ["'s", "'S", "’s", "’S", "—", "–"] + [
    r"(?<=[0-9])\+",
    r"(?<=°[FfCcKk])\.",
    rf"(?<=[0-9])(?:{_CURRENCY})",
    rf"(?<=[0-9])(?:{_UNITS})",
    rf"(?<=[0-9{_AL}%²\-\+{_PUNCT}(?:{_CONCAT_QUOTES})])\.",
    rf"(?<=[{_AU}][{_AU}])\.",
])
_INFIXES = _LIST_ELLIPSES + _LIST_ICONS + [
    r"(?<=[0-9])[+\-\*^](?=[0-9-])",
    rf"(?<=[{_AL}{_CONCAT_QUOTES}])\.(?=[{_AU}{_CONCAT_QUOTES}])",
    rf"(?<=[{_A}]),(?=[{_A}])",
    rf"(?<=[{_A}0-9])(?:{_HYPHENS})(?=[{_A}])",
    rf"(?<=[{_A}0-9])[:<>=/](?=[{_A}])",
]

_prefix_search = re.compile("|".join("^" + p for p in _PREFIXES if p.strip())).search
_suffix_search = re.compile("|".join(p + "$" for p in _SUFFIXES if p.strip())).search
_infix_finditer = re.compile("|".join(p for p in _INFIXES if p.strip())).finditer
_url_match = re.compile("(?u)" + _d.URL_PATTERN).match
_SPECIAL: dict[str, tuple[str, ...]] = {}
for _line in _d.EXCEPTIONS:
    _key, *_toks = _line.split(" ")
    _SPECIAL[_key] = tuple(_toks) if _toks else (_key,)



def _split(chunk: str, specials: dict[str, tuple[str, ...]] | None) -> tuple[str, ...]:
    """Tokens of one chunk by the affix rules (spaCy's ``_split_affixes`` + ``_attach_tokens``)."""
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
        elif _url_match(s):
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


_cache: dict[str, tuple[str, ...]] = {}


def words(text: str) -> list[str]:
    """The words of ``text`` as datatrove's English ``split_into_words`` gives them."""
    cache = _cache
    get = cache.get
    out: list[str] = []
    extend = out.extend
    for chunk in text.split():
        toks = get(chunk)
        if toks is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            toks = cache[chunk] = tokenize_chunk(chunk)
        extend(toks)
    return out


def clear_cache() -> None:
    """Forget the tokens of the chunks seen so far (the cache holds at most 2 million)."""
    _cache.clear()

