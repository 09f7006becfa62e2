"""Compatibility alias: the run directory is read by :mod:`gristmill.pipeline.run_reader`.

``RunData`` is :class:`~gristmill.pipeline.run_reader.RunReader`; import that instead. This
module goes once no caller imports it (tests/ops/test_bias.py does today).
"""

from gristmill.pipeline.run_reader import RunReader as RunData

__all__ = ["RunData"]
