"""The LLM library: backends behind one interface, and generation tasks as pure functions.

``backends`` turn prompts into completions (embedded llama.cpp, transformers, OpenAI-
compatible HTTP, a scripted mock for tests), all behind :class:`Backend`; ``cache`` keeps
every completion in SQLite so reruns and resumed runs send only missing requests;
``tasks`` hold the prompt/parse logic of each generation operator, testable without a model.

The library never imports :mod:`gristmill.ops`: the operators built on it (and their base
classes, :mod:`gristmill.ops.generate.base`) live in :mod:`gristmill.ops.generate` and
:mod:`gristmill.ops.judge`.
"""
