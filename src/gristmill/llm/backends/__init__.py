"""LLM backends behind one interface: embedded llama.cpp (default), transformers, OpenAI-compatible HTTP, mock.

Build one from a spec dict with :func:`create_backend`; each returns one
:class:`~gristmill.llm.types.Completion` per prompt, errors included.
"""

from gristmill.llm.backends.base import BackendSpec, BaseBackend, UnsupportedDecoding, create_backend, find_smollm2_gguf
from gristmill.llm.backends.mock import MockBackend

__all__ = ["BackendSpec", "BaseBackend", "MockBackend", "UnsupportedDecoding", "create_backend",
           "find_smollm2_gguf"]
