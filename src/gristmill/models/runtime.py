"""How many CPU threads a model in this process should use.

torch uses every core by default, so two worker processes on two cores would each run
two threads and fight over the cores. :func:`set_torch_threads` picks, unless told:

* ``cores // workers`` when the caller knows how many worker processes share the machine
  (an operator's ``setup(ctx)`` gets it from the run: ``ctx.workers``);
* 1 in any other child process (a process-pool worker, assumed one per core);
* all cores in the main process (``workers: 1`` runs operators inline).
"""

from __future__ import annotations

import multiprocessing
import os

__all__ = ["cores", "default_threads", "set_torch_threads"]


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_threads(workers: int | None = None) -> int:
    """Threads for one model in this process when ``workers`` processes share the machine
    (None: not known; see the module docstring)."""
    if workers:
        return max(1, cores() // workers)
    if multiprocessing.parent_process() is not None:
        return 1
    return cores()


def set_torch_threads(threads: int | None = None, workers: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default :func:`default_threads` of ``workers``); return it."""
    import torch

    n = threads or default_threads(workers)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
