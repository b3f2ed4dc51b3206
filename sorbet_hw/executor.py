"""Where independent work runs: Dask (`distributed`), on a local cluster by default.

The sweeps (:mod:`sorbet_hw.sweep`) and the main job's synthesis and energy stages
(:mod:`sorbet_hw.flow`) send their independent pieces through here; Dask schedules them,
and runs a piece again if its worker dies. Nothing here is a job runner of its own.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from sorbet_hw.model.params import ParameterError
from sorbet_hw.tools import ToolError

SCHEDULER_TIMEOUT_S = 10


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def connect(scheduler: str | None, workers: int | None, memory_limit: str = "auto"):
    """A Dask client: on the cluster at ``scheduler`` (an error within
    :data:`SCHEDULER_TIMEOUT_S` seconds if none answers), or on a new LocalCluster of
    ``workers`` processes (default: one a core), one thread each, with a memory limit each."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ToolError("Dask's `distributed` is not installed: run `pip install -e .`") from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s"), None
        except (OSError, TimeoutError, ValueError) as e:
            raise ToolError(f"no Dask scheduler answers at {scheduler} within "
                            f"{SCHEDULER_TIMEOUT_S} s ({one_line(e)}): start one with "
                            f"`dask scheduler`, or leave out --scheduler") from None
    n = (os.cpu_count() or 1) if workers is None else workers
    if n < 1:
        raise ParameterError(f"--workers = {n} must be at least 1")
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           memory_limit=memory_limit, dashboard_address=None)
    return Client(cluster), cluster


@contextmanager
def parallel_map(workers: int | None = None, scheduler: str | None = None):
    """A ``map(fn, *iterables) -> list`` (results in order) whose calls are Dask tasks, on
    a local cluster of ``workers`` processes (or the one at ``scheduler``); the cluster is
    started on the first call, so a run whose work is all cached starts none."""
    state: dict = {}

    def run(fn, *iterables) -> list:
        args = [list(it) for it in iterables]
        if not args or not args[0]:
            return []
        if len(args[0]) == 1 and "client" not in state:     # nothing to share out: no cluster
            return [fn(*(a[0] for a in args))]
        if "client" not in state:
            state["client"], state["cluster"] = connect(scheduler, workers)
        client = state["client"]
        return client.gather(client.map(fn, *args, pure=False))
    try:
        yield run
    finally:
        if "client" in state:
            state["client"].close()
            if state["cluster"] is not None:
                state["cluster"].close()
