"""Generation operators: parameters + a task from :mod:`gristmill.llm.tasks` + a base class
(:mod:`gristmill.ops.generate.base`); one module per operator (``generate.self_instruct`` ->
``self_instruct.py``). ``judge.score`` is :mod:`gristmill.ops.judge`.

``generate.template`` and ``generate.random_walk`` need no model; the others talk to the
backend named in their ``backend`` parameter, through the run's response cache. Every generated
row has an ``id`` derived from its parent (or the run's seed rows), ``source``, ``gen.parent``
and the ``gen.*`` token columns; every reject has a ``_reason`` in the ``rule: detail`` form
and, when a completion was involved, its raw text in ``gen.raw``. Rows shaped as instruction /
input / output also get ``text`` = the whole example (:func:`~gristmill.ops.generate.common.example_text`),
so text operators downstream see all of it.
"""
