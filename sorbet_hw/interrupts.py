"""Ctrl-C and SIGTERM: every command stops within seconds, with its children, in one line.

:func:`stop_on_signals` is installed by the CLI for every command. On the first SIGINT or
SIGTERM it kills every process the command started (Dask workers, simulators, Yosys, nextpnr,
the C++ compiler: the whole tree, with SIGKILL, so none of them prints on its way out) and
raises :class:`KeyboardInterrupt` in the main thread, so that the command's ``finally``
blocks remove their temporaries and release their locks. Nothing is left under a final name
because every output is written under a temporary one and renamed when complete
(:mod:`sorbet_hw.files`). The CLI prints the one line; everything the dying libraries print
after it goes to ``BUILD/logs/interrupted.log``. A watchdog ends the process after
:data:`GRACE_S` seconds if something still holds it (a thread pool waiting on its work, a
library that swallowed the exception).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

GRACE_S = 5.0
_state = {"signal": None, "log": None, "said": False}


def descendants() -> list:
    """Every live process this one started (psutil comes with Dask), but Python's resource
    tracker: it ends by itself when this process does, after releasing what it tracks;
    killed, it is started again with warnings about what it lost."""
    import psutil
    try:
        procs = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    kept = []
    for p in procs:
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                kept.append(p)
        except psutil.Error:
            pass
    return kept


def kill_children() -> None:
    """SIGKILL the whole tree below this process, then reap what can be reaped."""
    import psutil
    for _ in range(3):                 # a dying parent may have just started another child
        procs = descendants()
        if not procs:
            return
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=2)


def received() -> int | None:
    """The signal that stopped the command, or None."""
    return _state["signal"]


def say_once(line: str) -> None:
    """Print the command's one line about the interruption, then send whatever else reaches
    stderr (a library's message on its way out) to the log instead of the terminal."""
    if _state["said"]:
        return
    _state["said"] = True
    print(line, file=sys.stderr, flush=True)
    log = _state["log"]
    try:
        if log is not None:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        else:
            fd = os.open(os.devnull, os.O_WRONLY)
        sys.stderr.flush()
        os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        pass


MESSAGE = "sorbet-hw: interrupted; stopped every process it started, and nothing unfinished was left under a final name"


def _watchdog(status: int) -> None:
    kill_children()
    say_once(MESSAGE)
    os._exit(status)


def start_resource_tracker(log: Path) -> None:
    """Start Python's resource tracker (which every worker process shares) with its stderr on
    ``log``: when workers are stopped it reports the semaphores it cleans up after them, a
    message for the log, not the terminal. Called just before worker processes start, so
    that a command that starts none writes no log."""
    from multiprocessing import resource_tracker
    if getattr(resource_tracker._resource_tracker, "_fd", None) is not None:
        return                           # already running
    try:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(fd, 2)
        resource_tracker.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def stop_on_signals(log: Path | None = None) -> None:
    """Install the handlers (main thread only); ``log`` receives what is printed after the
    interruption's one line."""
    _state["log"] = log
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        if _state["signal"] is not None:
            return                     # already stopping
        _state["signal"] = signum
        timer = threading.Timer(GRACE_S, _watchdog, (128 + signum,))
        timer.daemon = True
        timer.start()
        kill_children()
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def ignore_in_child() -> None:
    """A worker process's initializer: Ctrl-C reaches the terminal's whole process group, and
    it is the command that stops its workers (:func:`kill_children`), so a worker prints
    nothing of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
