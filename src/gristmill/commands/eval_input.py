"""Reading the inputs of ``gristmill eval``, all through :mod:`gristmill.io`.

Texts and chats come from :func:`gristmill.io.readers.open_reader` (any format the pipeline
reads); prediction/reference pairs are read line by line (two files align by line) with
:class:`gristmill.io.base.Opened` (``.gz`` / ``.zst`` too), :func:`gristmill.io.base.read_lines`
(a line over the record size limit is not held whole) and :func:`gristmill.io.jsonl.parse_line`
(the pipeline's JSON reasons). A malformed record is skipped and named ``file:line: reason``;
a missing file exits 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.commands.common import fail

__all__ = ["Loaded", "read_pairs", "read_texts", "require", "warn_skipped"]

SHOW_SKIPPED = 10


@dataclass
class Loaded:
    """Rows read from a data file: ids, values, and the records skipped (``file:line: reason``)."""

    ids: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line is not None else source


def read_texts(path: Path, text_field: str, option: str, chat: bool = False, limit: int | None = None) -> Loaded:
    """The ``text_field`` strings of the records in ``path`` (any format :func:`gristmill.io.readers.open_reader`
    reads), or with ``chat`` the conversations in ``messages`` (OpenAI) / ``conversations`` (ShareGPT)."""
    from gristmill.io.base import BadRecord, InputError, ReaderOptions
    from gristmill.io.readers import open_reader

    if not path.exists():
        fail(f"{option} {path}: no such file or directory")
    if chat:
        shapes = {"messages": "openai", "conversations": "sharegpt"}
        if text_field not in shapes:
            fail(f"--field {text_field!r}: chat rows are read from 'messages' (OpenAI) or 'conversations' (ShareGPT)")
        options = ReaderOptions(format=shapes[text_field])
    else:
        options = ReaderOptions(text_column=text_field)
    try:
        reader = open_reader(path, options)
    except InputError as exc:
        fail(f"{option} {exc}")
    got = Loaded()
    for item in reader:
        if limit is not None and len(got.values) >= limit:
            break
        if isinstance(item, BadRecord):
            got.skipped.append(f"{_where(item.source, item.line)}: {item.reason}")
            continue
        got.ids.append(str(item["id"]))
        got.values.append(item["messages"] if chat else item["text"])
    return got


# ---- prediction / reference pairs: line by line ---------------------------------------------

_Line = tuple[int, bytes, int]  # (line number, bytes, full size when over the limit else 0)


def _lines(path: Path, option: str) -> list[_Line]:
    from gristmill.io.base import Opened, ReaderOptions, read_lines

    if not path.is_file():
        fail(f"{option} {path}: no such file")
    try:
        with Opened(path) as f:
            return list(read_lines(f.stream, ReaderOptions().max_record_bytes))
    except (OSError, EOFError) as exc:  # a truncated .gz / .zst, an I/O error
        fail(f"{option} {path}: unreadable ({exc})")


def _is_plain(path: Path) -> bool:
    return path.name.lower().removesuffix(".gz").removesuffix(".zst").endswith(".txt")


def _blank(line: _Line) -> bool:
    return not line[1].strip()


def _text(line: _Line) -> str:
    return line[1].decode("utf-8", errors="replace").removeprefix("\ufeff").rstrip("\r\n")


def _field_value(line: _Line, name: str, is_reference: bool) -> Any:
    """The field ``name`` of a JSON line: a string (a reference may also be a list of strings)."""
    from gristmill.io.base import ReaderOptions, size_reason
    from gristmill.io.jsonl import not_object, parse_line

    n, raw, size = line
    if size:
        raise ValueError(size_reason(size, ReaderOptions().max_record_bytes))
    obj = parse_line(raw.removeprefix(b"\xef\xbb\xbf") if n == 1 else raw)  # ValueError with the reason
    if not isinstance(obj, dict):
        raise ValueError(not_object(obj))
    if name not in obj or obj[name] is None:
        raise ValueError(f"missing field {name!r}")
    v = obj[name]
    if isinstance(v, str):
        return v
    if is_reference and isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return v
    raise ValueError(f"field {name!r} is {type(v).__name__}, expected a string"
                     + (" or a list of strings" if is_reference else ""))


def read_pairs(predictions: Path, references: Path | None, pred_field: str, ref_field: str) -> Loaded:
    """(prediction, reference) pairs: from one JSONL with both fields, or two files aligned line by line
    (``.txt``: one example per line; else JSONL with the field). A bad line drops its pair."""
    got = Loaded()
    if references is None:
        for line in _lines(predictions, "--predictions"):
            if _blank(line):
                continue
            try:
                pair = (_field_value(line, pred_field, False), _field_value(line, ref_field, True))
            except ValueError as exc:
                got.skipped.append(f"{predictions}:{line[0]}: {exc}")
                continue
            got.ids.append(str(line[0]))
            got.values.append(pair)
        return got
    preds, refs = _lines(predictions, "--predictions"), _lines(references, "--references")
    while preds and _blank(preds[-1]) and not _is_plain(predictions):
        preds.pop()
    while refs and _blank(refs[-1]) and not _is_plain(references):
        refs.pop()
    if len(preds) != len(refs):
        fail(f"--predictions {predictions} has {len(preds)} lines but --references {references} has {len(refs)}")
    for p, r in zip(preds, refs):
        values = []
        for path, line, name, is_ref in ((predictions, p, pred_field, False), (references, r, ref_field, True)):
            try:
                values.append(_text(line) if _is_plain(path) else _field_value(line, name, is_ref))
            except ValueError as exc:
                got.skipped.append(f"{path}:{line[0]}: {exc}")
                break
        if len(values) == 2:
            got.ids.append(str(p[0]))
            got.values.append((values[0], values[1]))
    return got


def require(got: Loaded, path: Path, what: str = "records") -> None:
    """Exit 2 when nothing usable was read; say what was skipped."""
    if got.values:
        return
    why = f" ({len(got.skipped)} skipped; first: {got.skipped[0]})" if got.skipped else ""
    fail(f"{path}: no usable {what}{why}")


def warn_skipped(got: Loaded) -> None:
    """The skipped records on stderr (the first :data:`SHOW_SKIPPED`, each ``file:line: reason``)."""
    if not got.skipped:
        return
    print(f"warning: skipped {len(got.skipped)} malformed record(s):", file=sys.stderr)
    for s in got.skipped[:SHOW_SKIPPED]:
        print(f"  {s}", file=sys.stderr)
    if len(got.skipped) > SHOW_SKIPPED:
        print(f"  ... and {len(got.skipped) - SHOW_SKIPPED} more (see the report)", file=sys.stderr)
