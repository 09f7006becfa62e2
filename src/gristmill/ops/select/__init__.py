"""Operators that pick rows of a corpus for a task (``select.search``: rows relevant to a few examples).

Not to be confused with :mod:`gristmill.select`, the ``gristmill select`` command's selection of
training data by training signal."""
