"""How many CPU threads a model in this process should use.

torch uses every core by default, so two worker processes on two cores would each run
two threads and fight over the cores. :func:`set_torch_threads` picks, unless told:

* ``cores // $GRISTMILL_WORKERS`` when the executor exports its worker count;
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


def default_threads() -> int:
    """Threads for one model in this process (see the module docstring)."""
    workers = os.environ.get("GRISTMILL_WORKERS", "")
    if workers.isdigit() and int(workers) > 0:
        return max(1, cores() // int(workers))
    if multiprocessing.parent_process() is not None:
        return 1
    return cores()


def set_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default :func:`default_threads`); return it."""
    import torch

    n = threads or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
