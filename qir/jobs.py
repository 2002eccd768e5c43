"""How many forked worker processes a parallel step of the compile may use (the RTL conversion of
``qir.rtl.separate``, the adder-graph search of ``qir-lower-cmvm``)."""
from __future__ import annotations

import multiprocessing
import os
import threading


def fork_workers(env: str, jobs: int, small: bool) -> int:
    """Worker processes for ``jobs`` independent jobs: one per available CPU (the environment
    variable ``env`` = N overrides), at most one per job; 1 (run them in this process) for a
    ``small`` step when ``env`` is unset, without ``fork``, or in a process with other threads (a
    forked child of a threaded one, e.g. a notebook or a server, can inherit a lock held by
    another thread)."""
    value = os.environ.get(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    n = int(value) if value and value.isdigit() and int(value) > 0 else cpus
    if value is None and small:
        n = 1
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        n = 1
    return max(1, min(n, jobs))
