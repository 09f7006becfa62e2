"""Processes of a test's subprocess tree, for checking that none outlives a killed run."""

from __future__ import annotations

from pathlib import Path


def session_members(sid: int) -> list[int]:
    """Live processes (zombies excluded) in session ``sid``: the process started with
    ``start_new_session=True`` and every descendant, even one re-parented after its parent died."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] not in "ZX":
            found.append(int(d.name))
    return found
