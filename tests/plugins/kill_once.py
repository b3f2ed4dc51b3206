"""A Dask worker preload for the tests (never part of the tool): the worker that first
claims the marker file named by $KILL_ONCE_MARKER exits abruptly at the start of a sweep
point, as a worker killed by the system would. One claim: the marker is deleted first, so two
workers racing for it kill one."""
import os


def dask_setup(worker):
    import sorbet_hw.sweep as sweep
    original = sweep.run_point

    def run_point(*args, **kwargs):
        try:
            os.unlink(os.environ["KILL_ONCE_MARKER"])
        except (KeyError, FileNotFoundError):
            return original(*args, **kwargs)
        os._exit(1)
    sweep.run_point = run_point
