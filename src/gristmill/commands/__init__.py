"""CLI commands beyond the pipeline: each module registers its commands on a typer app.

Modules import heavy libraries (torch, transformers) inside the command functions, so
``gristmill --help`` stays fast. Exit codes, ``fail()`` and the options several commands
share are declared once, in :mod:`gristmill.commands.common`.
"""
