"""Streaming readers and writers of records.

``open_reader(path, ReaderOptions(...))`` yields record dicts and :class:`BadRecord`
items; ``open_writer(path, format, ...)`` takes ``pyarrow.Table`` shards.
"""

from gristmill.io.base import BadRecord, InputError, ReaderOptions
from gristmill.io.readers import FORMATS, Reader, open_reader
from gristmill.io.text import split_chunks
from gristmill.io.writers import WRITER_FORMATS, Writer, WriterOptions, open_writer

__all__ = [
    "FORMATS",
    "WRITER_FORMATS",
    "BadRecord",
    "InputError",
    "Reader",
    "ReaderOptions",
    "Writer",
    "WriterOptions",
    "open_reader",
    "open_writer",
    "split_chunks",
]
