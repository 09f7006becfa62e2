"""Texts named in operator parameters: benchmarks to decontaminate against, protected references.

A :class:`TextSource` is a file (any format gristmill reads) or inline items; :func:`iter_texts`
streams ``(id, text)`` pairs from it. A bad record in such a file is an error, not a smaller set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gristmill.ops.base import Params


class TextSource(Params):
    """A named set of texts: a file read with gristmill's readers, or inline ``items``."""

    name: str = Field(description="Name used in output columns and drop reasons (e.g. gsm8k).")
    path: str | None = Field(None, description="The file, directory or glob (any input format gristmill reads); "
                                               "relative to the recipe's folder.")
    fields: list[str] = Field(["text"], min_length=1, description="Columns whose text makes up one item, "
                                                                  "joined with newlines in this order.")
    format: str | None = Field(None, description="Reader format; None detects it from the file name.")
    id_field: str | None = Field(None, description="Column naming an item (e.g. task_id); None: see the operator.")
    items: list[str] | None = Field(None, description="Texts given inline instead of a file; their ids are "
                                                      "their positions.")

    @model_validator(mode="after")
    def _one_source(self) -> TextSource:
        if (self.path is None) == (self.items is None):
            raise ValueError(f"{self.name!r}: give exactly one of path and items")
        return self


def iter_texts(source: TextSource, path: Path | None, what: str,
               default_id: Literal["position", "reader"] = "position") -> Iterator[tuple[str, str]]:
    """``(id, text)`` of every item of ``source`` (``path`` is its resolved file); raises on a bad record
    or an empty file. Without ``id_field`` an item is named by its 0-based position or the reader's id."""
    if source.items is not None:
        yield from ((str(i), t) for i, t in enumerate(source.items))
        return
    from gristmill.io import BadRecord, ReaderOptions, open_reader

    first = source.fields[0]
    n = 0
    for rec in open_reader(path, ReaderOptions(format=source.format, text_column=first)):
        if isinstance(rec, BadRecord):
            where = f"{rec.source}:{rec.line}" if rec.line is not None else rec.source
            raise ValueError(f"{what} {source.name!r}: {where}: unreadable record: {rec.reason}")
        parts = [rec["text"] if f == first else rec.get(f) for f in source.fields]
        if source.id_field:
            ident = rec.get(source.id_field)
        else:
            ident = n if default_id == "position" else rec["id"]
        n += 1
        yield str(ident), "\n".join(str(p) for p in parts if p is not None)
    if not n:
        raise ValueError(f"{what} {source.name!r}: {path} is empty")
