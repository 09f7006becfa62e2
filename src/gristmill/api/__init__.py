"""The Python API: what ``import gristmill`` offers (the package re-exports these names lazily).

* :func:`run` runs a recipe (a file, a dict, a validated ``Recipe``): ``gristmill run`` calls it;
* :class:`Pipeline` builds a recipe in code, validates it like a recipe file, runs or applies it;
* :func:`op` builds a registered operator, :func:`apply` runs operators over data in memory (a list
  of dicts, a pandas DataFrame, a pyarrow Table, a ``datasets.Dataset``) into a :class:`Result`;
* :func:`load_run` reads a run directory back as a :class:`Run`.

No model library is imported here: operators load their models in ``setup``, on first use.
"""

from gristmill.api.operators import Result, StepLike, apply, op
from gristmill.api.pipeline import Pipeline
from gristmill.api.runs import Run, RunIncomplete, load_run, run
from gristmill.recipe import RecipeError

__all__ = ["Pipeline", "RecipeError", "Result", "Run", "RunIncomplete", "StepLike", "apply", "load_run", "op", "run"]
