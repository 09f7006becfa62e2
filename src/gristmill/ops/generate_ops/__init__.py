"""Generation operators: parameters + a task from :mod:`gristmill.generate.tasks` + a base class.

``generate.template`` and ``generate.random_walk`` need no model; the others talk to the
backend named in their ``backend`` parameter (see :mod:`gristmill.generate.operator`),
through the run's response cache. Every generated row has an ``id`` derived from its
parent (or the run's seed rows), ``source``, ``gen.parent`` and the ``gen.*`` token
columns; every reject has a ``_reason`` in the ``rule: detail`` form and, when a
completion was involved, its raw text in ``gen.raw``. Rows shaped as instruction /
input / output also get ``text`` = the whole example (:func:`example_text`), so text
operators downstream see all of it.
"""

from gristmill.ops.generate_ops.common import example_text
from gristmill.ops.generate_ops.grounded import QAFromDocuments, RandomWalkQA
from gristmill.ops.generate_ops.instruct import EvolInstruct, SelfInstruct
from gristmill.ops.generate_ops.rewrite import JudgeScore, Paraphrase
from gristmill.ops.generate_ops.template import TemplateGenerate

__all__ = ["EvolInstruct", "JudgeScore", "Paraphrase", "QAFromDocuments", "RandomWalkQA", "SelfInstruct",
           "TemplateGenerate", "example_text"]
