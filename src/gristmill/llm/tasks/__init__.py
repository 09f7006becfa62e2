"""Generation tasks: the prompt/parse logic of each generation operator, testable without a model.

One module per task: ``template`` (rules, no model), ``self_instruct``, ``evol_instruct``,
``grounded_qa``, ``random_walk``, ``paraphrase``, ``judge``. Each has ``format_prompt``-
style functions that build prompts and ``parse``-style functions that turn a completion
into rows or raise :class:`~gristmill.llm.types.ParseError` with the reject reason
(``rule: detail``); multi-step methods (Self-Instruct, Evol-Instruct) also have a
``run_*`` function that drives the steps through a ``complete(prompts, decoding)`` callable.
"""
