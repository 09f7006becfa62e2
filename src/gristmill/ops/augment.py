"""Rule-based data augmentation: entity swaps, typo/word noise, and mixing two rows.

Each operator works on two kinds of rows:

* token rows: a ``tokens`` list of strings and a ``tags`` list of BIO tags of the same length
  (what the CoNLL reader gives); new rows keep one tag per token, and a ``text`` column, when
  the row has one, is rewritten as the tokens joined by spaces;
* text rows: a ``text`` string (used when the row has no usable tokens/tags).

New rows get the original's id with a suffix (``~swap1``, ``~noise``, ``~mix1``) and
``augment.of`` set to the original's id (null on the originals, which are kept unless
``keep_original`` is off). Every random choice comes from a generator seeded by ``seed``
and the row id, so a row's copies do not depend on the batch it is in (``augment.mix``
excepted: it pairs rows within a batch) or on how often the operator ran.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from gristmill.ops.base import Generator, GlobalOp, Params, StepResult
from gristmill.records import ID, from_rows

__all__ = ["EntitySwap", "NoiseInjection", "TextMix", "AUGMENT_OF", "entity_spans", "typo", "noisy_tokens"]

AUGMENT_OF = "augment.of"

_QWERTY = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _neighbours() -> dict[str, str]:
    pos = {c: (r, i) for r, row in enumerate(_QWERTY) for i, c in enumerate(row)}
    out: dict[str, str] = {}
    for c, (r, i) in pos.items():
        near = [d for d, (r2, i2) in pos.items() if d != c and abs(r2 - r) <= 1 and abs(i2 - i) <= 1]
        out[c] = "".join(sorted(near))
    return out


ADJACENT = _neighbours()


def _rng(seed: int, *parts: Any) -> random.Random:
    """A generator that depends only on ``seed`` and ``parts`` (str seeds hash with SHA-512)."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def _token_row(row: dict[str, Any], tokens: str, tags: str) -> bool:
    tk, tg = row.get(tokens), row.get(tags)
    return isinstance(tk, list) and isinstance(tg, list) and len(tk) == len(tg) and len(tk) > 0 \
        and all(isinstance(t, str) for t in tk) and all(isinstance(t, str) for t in tg)


def entity_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(start, end, type)`` of the BIO entities in ``tags`` (an ``I-x`` that continues no ``x``
    entity starts one, as in seqeval's default mode)."""
    spans: list[tuple[int, int, str]] = []
    start, kind = -1, ""
    for i, t in enumerate(list(tags) + ["O"]):
        continues = t.startswith("I-") and kind == t[2:] and start >= 0
        if start >= 0 and not continues:
            spans.append((start, i, kind))
            start, kind = -1, ""
        if t[:2] in ("B-", "I-") and not continues:
            start, kind = i, t[2:]
    return spans


def _schema(batch: pa.Table, extra: Sequence[tuple[str, pa.DataType]]) -> pa.Schema:
    fields = list(batch.schema)
    for name, typ in extra:
        if name not in batch.column_names:
            fields.append(pa.field(name, typ))
    return pa.schema(fields)


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return from_rows(rows, schema=schema) if rows else schema.empty_table()


def _with_tokens(row: dict[str, Any], p: Any, tokens: list[str], tags: list[str]) -> dict[str, Any]:
    out = dict(row)
    out[p.tokens_column], out[p.tags_column] = tokens, tags
    if isinstance(row.get(p.text_column), str):
        out[p.text_column] = " ".join(tokens)
    return out


class _Columns(Params):
    tokens_column: str = Field("tokens", description="Column holding the list of tokens of a token row.")
    tags_column: str = Field("tags", description="Column holding one BIO tag per token.")
    text_column: str = Field("text", description="Text column, used for rows without tokens/tags (and rewritten "
                             "from the tokens on token rows that have it).")
    seed: int = Field(0, description="Seed of the random choices (combined with each row id).")
    keep_original: bool = Field(True, description="Output the input rows as well as the new copies.")


# --------------------------------------------------------------------------------------------------
# entity swap


class EntitySwap(GlobalOp):
    """Copy rows with each entity replaced by another entity of the same type from the data's own inventory.

    ``fit`` collects every entity span (by type) of the token rows, plus the names in
    ``entities_file`` (JSON ``{"type": ["name", ...]}``). Token rows: each copy replaces
    every entity span by a different span of the same type, drawn at random, with the tags
    realigned (``B-x`` then ``I-x`` over the new span's tokens); ``copies`` copies per row
    with entities, ids ``<id>~swap1``, ``~swap2``... Text rows: occurrences (whole words,
    case-sensitive) of capitalised inventory names are replaced by another name of the same
    type, one copy per row with a match. Drops nothing; rows without entities (or whose
    entity types have only one name in the inventory) get no copy. Types are not checked
    for sense: "Paris" can replace "London" in "London Marathon" only if the marathon's
    tags mark London alone.
    """

    name = "augment.entity_swap"
    version = "1"

    class Params(_Columns):
        copies: int = Field(1, ge=1, le=20, description="Copies per row that has entities.")
        entities_file: str | None = Field(None, description="JSON {type: [names]} added to the inventory; the "
                                          "only inventory for text-only data.")
        max_inventory: int = Field(5000, ge=1, description="At most this many distinct spans kept per type.")

    example_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.inventory: dict[str, list[tuple[str, ...]]] = {}

    def reads(self) -> list[str]:
        # tokens/tags or text, whichever a row has: neither is required of every batch
        return [ID]

    def writes(self) -> list[str]:
        return [AUGMENT_OF]

    def input_files(self) -> list[Path]:
        return [self.resolve_path(self.params.entities_file)] if self.params.entities_file else []

    def summarize(self, batch: pa.Table) -> dict[str, list[tuple[str, ...]]]:
        p = self.params
        found: dict[str, set[tuple[str, ...]]] = {}
        if p.tokens_column not in batch.column_names or p.tags_column not in batch.column_names:
            return {}
        for row in batch.select([p.tokens_column, p.tags_column]).to_pylist():
            if _token_row(row, p.tokens_column, p.tags_column):
                for s, e, kind in entity_spans(row[p.tags_column]):
                    found.setdefault(kind, set()).add(tuple(row[p.tokens_column][s:e]))
        return {k: sorted(v) for k, v in found.items()}

    def fit(self, summaries: list[Any]) -> None:
        merged: dict[str, set[tuple[str, ...]]] = {}
        for s in summaries:
            for kind, spans in (s or {}).items():
                merged.setdefault(kind, set()).update(map(tuple, spans))
        if self.params.entities_file:
            path = self.resolve_path(self.params.entities_file)
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a JSON object {{type: [names]}}")
            for kind, names in data.items():
                merged.setdefault(str(kind), set()).update(tuple(str(n).split()) for n in names if str(n).split())
        self.inventory = {k: sorted(v)[: self.params.max_inventory] for k, v in sorted(merged.items())}
        self._text_patterns = None

    def _text_names(self) -> tuple[re.Pattern[str] | None, dict[str, str]]:
        if getattr(self, "_text_patterns", None) is None:
            kind_of: dict[str, str] = {}
            for kind, spans in self.inventory.items():
                for span in spans:
                    name = " ".join(span)
                    if name[:1].isupper() and len(name) > 1 and re.search(r"\w", name):
                        kind_of.setdefault(name, kind)
            names = sorted(kind_of, key=lambda n: (-len(n), n))
            pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, names)) + r")(?!\w)") if names else None
            self._text_patterns = (pattern, kind_of)
        return self._text_patterns

    def _drop_on_pickle(self) -> dict[str, Any]:
        return {"_text_patterns": None}

    def _pick(self, rng: random.Random, kind: str, current: tuple[str, ...]) -> tuple[str, ...] | None:
        pool = self.inventory.get(kind, [])
        if len(pool) < 2 and not (pool and pool[0] != current):
            return None
        for _ in range(8):
            cand = pool[rng.randrange(len(pool))]
            if cand != current:
                return cand
        return None

    def swap_tokens(self, row_id: str, k: int, tokens: list[str],
                    tags: list[str]) -> tuple[list[str], list[str]] | None:
        """Copy ``k`` of a token row with its entities swapped, or None when nothing could be swapped."""
        rng = _rng(self.params.seed, row_id, "swap", k)
        out_tokens: list[str] = []
        out_tags: list[str] = []
        pos, changed = 0, False
        for s, e, kind in entity_spans(tags):
            out_tokens += tokens[pos:s]
            out_tags += tags[pos:s]
            new = self._pick(rng, kind, tuple(tokens[s:e]))
            if new is None:
                new = tuple(tokens[s:e])
            else:
                changed = True
            out_tokens += list(new)
            out_tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(new) - 1)
            pos = e
        out_tokens += tokens[pos:]
        out_tags += tags[pos:]
        return (out_tokens, out_tags) if changed else None

    def swap_text(self, row_id: str, text: str) -> str | None:
        """A text row with its known names swapped, or None when none is found."""
        pattern, kind_of = self._text_names()
        if pattern is None:
            return None
        rng = _rng(self.params.seed, row_id, "swap-text")
        changed = False

        def repl(m: re.Match[str]) -> str:
            nonlocal changed
            new = self._pick(rng, kind_of[m.group(0)], tuple(m.group(0).split()))
            if new is None:
                return m.group(0)
            changed = True
            return " ".join(new)

        out = pattern.sub(repl, text)
        return out if changed else None

    def apply(self, batch: pa.Table) -> StepResult:
        p = self.params
        schema = _schema(batch, [(AUGMENT_OF, pa.string())])
        rows: list[dict[str, Any]] = []
        for row in batch.to_pylist():
            if p.keep_original:
                rows.append({**row, AUGMENT_OF: row.get(AUGMENT_OF)})
            rid = str(row.get(ID))
            if _token_row(row, p.tokens_column, p.tags_column):
                for k in range(1, p.copies + 1):
                    swapped = self.swap_tokens(rid, k, row[p.tokens_column], row[p.tags_column])
                    if swapped is not None:
                        rows.append({**_with_tokens(row, p, *swapped), ID: f"{rid}~swap{k}", AUGMENT_OF: rid})
            elif isinstance(row.get(p.text_column), str):
                new = self.swap_text(rid, row[p.text_column])
                if new is not None:
                    rows.append({**row, p.text_column: new, ID: f"{rid}~swap1", AUGMENT_OF: rid})
        return StepResult(_table(rows, schema))


# --------------------------------------------------------------------------------------------------
# noise


def typo(word: str, rng: random.Random, ops: Sequence[str]) -> str:
    """``word`` with one character-level typo: swap two adjacent letters, delete one, insert or
    replace one with a neighbouring key on a QWERTY keyboard. Words without a letter, and
    deletions that would empty a word, are left as they are."""
    letters = [i for i, c in enumerate(word) if c.lower() in ADJACENT]
    if not letters or not ops:
        return word
    op = ops[rng.randrange(len(ops))]
    i = letters[rng.randrange(len(letters))]
    c = word[i]
    near = ADJACENT[c.lower()]
    key = near[rng.randrange(len(near))]
    key = key.upper() if c.isupper() else key
    if op == "swap" and len(word) > 1:
        j = i + 1 if i + 1 < len(word) else i - 1
        a, b = min(i, j), max(i, j)
        return word[:a] + word[b] + word[a] + word[b + 1:]
    if op == "delete" and len(word) > 1:
        return word[:i] + word[i + 1:]
    if op == "insert":
        return word[:i + 1] + key + word[i + 1:]
    if op == "replace":
        return word[:i] + key + word[i + 1:]
    return word


def noisy_tokens(tokens: list[str], tags: list[str] | None, rng: random.Random, char_rate: float, word_rate: float,
                 char_ops: Sequence[str], word_ops: Sequence[str], touch_entities: bool) -> tuple[list[str],
                                                                                                 list[str] | None, int]:
    """Tokens (and tags) with character typos and word drops/duplicates/swaps; the number of edits.

    Entity tokens (tag not ``O``) are left alone unless ``touch_entities``, and then only get
    typos: dropping, duplicating or moving them would break their spans. The last remaining
    token is never dropped.
    """
    out_t: list[str] = []
    out_g: list[str] = []
    edits = 0
    n = len(tokens)
    skip_next = False
    for i, tok in enumerate(tokens):
        if skip_next:
            skip_next = False
            continue
        tag = tags[i] if tags is not None else "O"
        free = tag == "O"
        if free and word_ops and rng.random() < word_rate:
            op = word_ops[rng.randrange(len(word_ops))]
            if op == "drop" and (len(out_t) + (n - i - 1)) > 0:
                edits += 1
                continue
            if op == "duplicate":
                out_t += [tok, tok]
                out_g += [tag, tag]
                edits += 1
                continue
            nxt_free = i + 1 < n and (tags is None or tags[i + 1] == "O")
            if op == "swap" and nxt_free:
                out_t += [tokens[i + 1], tok]
                out_g += [tag, tag]
                edits += 1
                skip_next = True
                continue
        if (free or touch_entities) and char_ops and rng.random() < char_rate:
            new = typo(tok, rng, char_ops)
            edits += new != tok
            tok = new
        out_t.append(tok)
        out_g.append(tag)
    return out_t, (out_g if tags is not None else None), edits


class NoiseInjection(Generator):
    """Copy rows with typos (swap, delete, insert, adjacent-key replace) and word drops, duplicates and swaps.

    Each word gets a character typo with probability ``char_rate`` and a word edit with
    probability ``word_rate``; a share ``row_rate`` of the rows (chosen by seed and id) get a
    copy, id ``<id>~noise``, when at least one edit happened. Token rows keep one tag per
    token: entity tokens are never dropped, duplicated or moved, and get typos only with
    ``touch_entities``. Text rows are split on white space; the copy joins the words with
    single spaces, so line breaks and runs of spaces are dropped from it. Drops no row.
    """

    name = "augment.noise"
    version = "1"

    class Params(_Columns):
        char_rate: float = Field(0.1, ge=0, le=1, description="Probability that a word gets one character typo.")
        word_rate: float = Field(0.05, ge=0, le=1, description="Probability that a word is dropped, duplicated "
                                 "or swapped with the next one.")
        row_rate: float = Field(1.0, ge=0, le=1, description="Share of rows that get a noisy copy.")
        char_ops: list[str] = Field(default_factory=lambda: ["swap", "delete", "insert", "replace"],
                                    description="Character edits to draw from: swap, delete, insert, replace.")
        word_ops: list[str] = Field(default_factory=lambda: ["drop", "duplicate", "swap"],
                                    description="Word edits to draw from: drop, duplicate, swap.")
        touch_entities: bool = Field(False, description="Allow typos inside entity tokens (never word edits).")

    example_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        bad = sorted(set(self.params.char_ops) - {"swap", "delete", "insert", "replace"}) + \
            sorted(set(self.params.word_ops) - {"drop", "duplicate", "swap"})
        if bad:
            raise ValueError(f"unknown noise operations {bad}; char_ops: swap, delete, insert, replace; "
                             "word_ops: drop, duplicate, swap")

    def reads(self) -> list[str]:
        # tokens/tags or text, whichever a row has: neither is required of every batch
        return [ID]

    def writes(self) -> list[str]:
        return [AUGMENT_OF]

    def noisy(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The noisy copy of ``row``, or None (not chosen, no usable column, or no edit drawn)."""
        p = self.params
        rid = str(row.get(ID))
        rng = _rng(p.seed, rid, "noise")
        if rng.random() >= p.row_rate:
            return None
        if _token_row(row, p.tokens_column, p.tags_column):
            tokens, tags, edits = noisy_tokens(row[p.tokens_column], row[p.tags_column], rng, p.char_rate,
                                               p.word_rate, p.char_ops, p.word_ops, p.touch_entities)
            return {**_with_tokens(row, p, tokens, tags or []), ID: f"{rid}~noise", AUGMENT_OF: rid} if edits else None
        text = row.get(p.text_column)
        if not isinstance(text, str) or not text.split():
            return None
        words, _, edits = noisy_tokens(text.split(), None, rng, p.char_rate, p.word_rate, p.char_ops, p.word_ops,
                                       True)
        return {**row, p.text_column: " ".join(words), ID: f"{rid}~noise", AUGMENT_OF: rid} if edits else None

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        for row in batch.to_pylist():
            if self.params.keep_original:
                rows.append({**row, AUGMENT_OF: row.get(AUGMENT_OF)})
            copy = self.noisy(row)
            if copy is not None:
                rows.append(copy)
        return rows, []

    def output_schema(self, batch: pa.Table) -> pa.Schema:
        return _schema(batch, [(AUGMENT_OF, pa.string())])


# --------------------------------------------------------------------------------------------------
# mix


class TextMix(Generator):
    """Add rows made of two rows joined: token rows' sentences concatenated with their tags, texts joined.

    Each row (a share ``rate`` of them, chosen by seed and id) is joined with a partner drawn
    from the same batch (so pairs never cross batches), of the same kind (token or text);
    the copy has id ``<id>~mix``, ``augment.of`` the first row's id and ``augment.mixed_with``
    the partner's. Columns other than tokens/tags/text come from the first row; the
    partner's are dropped. A batch with a single usable row gets no mixes. Drops no row.
    """

    name = "augment.mix"
    version = "1"

    class Params(_Columns):
        rate: float = Field(0.5, ge=0, le=1, description="Share of rows that get a mixed copy.")
        separator: str = Field(" ", description="String put between two joined texts.")

    example_params: ClassVar[dict[str, Any]] = {}

    def reads(self) -> list[str]:
        # tokens/tags or text, whichever a row has: neither is required of every batch
        return [ID]

    def writes(self) -> list[str]:
        return [AUGMENT_OF, "augment.mixed_with"]

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        p = self.params
        src = batch.to_pylist()
        token_idx = [i for i, r in enumerate(src) if _token_row(r, p.tokens_column, p.tags_column)]
        text_idx = [i for i, r in enumerate(src) if i not in set(token_idx)
                    and isinstance(r.get(p.text_column), str) and r[p.text_column].strip()]
        kind = {i: token_idx for i in token_idx} | {i: text_idx for i in text_idx}
        rows: list[dict[str, Any]] = []
        for i, row in enumerate(src):
            if p.keep_original:
                rows.append({**row, AUGMENT_OF: row.get(AUGMENT_OF),
                             "augment.mixed_with": row.get("augment.mixed_with")})
            pool = kind.get(i, [])
            if len(pool) < 2:
                continue
            rid = str(row.get(ID))
            rng = _rng(p.seed, rid, "mix")
            if rng.random() >= p.rate:
                continue
            j = pool[rng.randrange(len(pool) - 1)]
            j = pool[-1] if j == i else j
            other = src[j]
            if pool is token_idx:
                tail = list(other[p.tags_column])
                if tail[0].startswith("I-"):  # would otherwise continue the first row's last entity
                    tail[0] = "B-" + tail[0][2:]
                new = _with_tokens(row, p, row[p.tokens_column] + other[p.tokens_column],
                                   row[p.tags_column] + tail)
            else:
                new = {**row, p.text_column: row[p.text_column] + p.separator + other[p.text_column]}
            rows.append({**new, ID: f"{rid}~mix", AUGMENT_OF: rid, "augment.mixed_with": str(other.get(ID))})
        return rows, []

    def output_schema(self, batch: pa.Table) -> pa.Schema:
        return _schema(batch, [(AUGMENT_OF, pa.string()), ("augment.mixed_with", pa.string())])
