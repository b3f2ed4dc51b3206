"""Where independent work runs: Dask (`distributed`), on a local cluster by default.

The sweeps (:mod:`sorbet_hw.sweep`) and the main job's stages (:mod:`sorbet_hw.flow`) send
their independent pieces through here; Dask schedules them, and runs a piece again if its
worker dies. Nothing here is a job runner of its own.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from sorbet_hw.model.params import ParameterError
from sorbet_hw.tools import ToolError

SCHEDULER_TIMEOUT_S = 10


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def route_logs(log: Path | None) -> None:
    """Dask's own messages (warnings about workers it restarts or kills, cancelled tasks) go
    to ``log``, not to the user's terminal, which shows only the tool's lines."""
    logger = logging.getLogger("distributed")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = False
    if log is None:
        logger.addHandler(logging.NullHandler())
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@contextmanager
def _workers_ignore_interrupts():
    """Worker processes started in here ignore SIGINT (an ignored signal stays ignored in a
    child, and Python keeps it so): Ctrl-C reaches the whole terminal's process group, and it is
    the command that stops its workers, not each worker printing its own traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def connect(scheduler: str | None, workers: int | None, memory_limit: str = "auto",
            log: Path | None = None):
    """A Dask client: on the cluster at ``scheduler`` (an error within
    :data:`SCHEDULER_TIMEOUT_S` seconds if none answers), or on a new LocalCluster of
    ``workers`` processes (default: one a core), one thread each, with a memory limit each.
    Dask's messages go to ``log`` (:func:`route_logs`)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ToolError("Dask's `distributed` is not installed: run `pip install -e .`") from None
    route_logs(log)
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
    import warnings
    from sorbet_hw.interrupts import start_resource_tracker
    if log is not None:
        start_resource_tracker(log)
    with _workers_ignore_interrupts(), warnings.catch_warnings():
        # silence_logs: the workers print nothing below CRITICAL; this process's Dask
        # messages are routed again, since LocalCluster resets them to the terminal. Its
        # warnings (a diagnostics port taken by another cluster) are not the user's business.
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               memory_limit=memory_limit, dashboard_address=None,
                               silence_logs=logging.CRITICAL)
    route_logs(log)
    return Client(cluster), cluster


class Pending:
    """The results of a batch of calls, in order, once :meth:`result` is asked for: Dask
    futures gathered, or calls made then (a batch that was not worth a cluster)."""

    def __init__(self, gather):
        self._gather, self._results = gather, None

    def result(self) -> list:
        if self._results is None:
            self._results = self._gather()
        return self._results


def serial_submit(fn, *iterables, priority: int = 0) -> Pending:
    """The calls made one after another, in this process, when their results are asked for."""
    return Pending(lambda: list(map(fn, *iterables)))


class Executor:
    """``submit(fn, *iterables) -> Pending`` whose calls are Dask tasks, on a local cluster
    of ``workers`` processes (or the one at ``scheduler``), started on the first batch of
    more than one call, so a run whose work is all cached (or single) starts none. Calling
    it maps and waits: ``executor(fn, *iterables) -> list``. Among queued tasks a higher
    ``priority`` runs first."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None,
                 log: Path | None = None):
        self._workers, self._scheduler, self._log = workers, scheduler, log
        self._client = self._cluster = None
        self._lock = threading.Lock()

    def submit(self, fn, *iterables, priority: int = 0) -> Pending:
        args = [list(it) for it in iterables]
        if not args or not args[0]:
            return Pending(list)
        with self._lock:
            if len(args[0]) == 1 and self._client is None:     # nothing to share out
                return serial_submit(fn, *args)
            if self._client is None:
                self._client, self._cluster = connect(self._scheduler, self._workers, log=self._log)
            client = self._client
        futures = client.map(fn, *args, pure=False, priority=priority)
        return Pending(lambda: client.gather(futures))

    def __call__(self, fn, *iterables) -> list:
        return self.submit(fn, *iterables).result()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None


@contextmanager
def parallel_map(workers: int | None = None, scheduler: str | None = None, log: Path | None = None):
    """An :class:`Executor`, closed (its queued tasks cancelled) on the way out."""
    executor = Executor(workers, scheduler, log)
    try:
        yield executor
    finally:
        executor.close()
