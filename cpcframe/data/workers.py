"""Loader workers leave stopping to the main process.

A scheduler stops a job by sending SIGTERM to every process of it (SLURM ``scancel``
signals the whole job step, systemd the whole control group, a shell its process group),
and Ctrl-C sends SIGINT to the terminal's process group. By default a loader worker dies
of either, and the main process, which was about to save a checkpoint, sees a crashed
worker instead ("DataLoader worker exited unexpectedly"). So workers ignore both
signals until the main process :meth:`~WorkerSignals.release`\\ s them: it stops the run
(checkpoint first) and then shuts its loader down, which ends the workers. After the
release (or at the main process's exit) a SIGTERM ends a worker again, as the loader's
own shutdown of a stuck worker expects, with exit status 0 (a loader reports a worker
killed by a signal as a crash); a worker whose main process died exits by itself (the
loader's watchdog).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerSignals:
    """A loader's ``worker_init_fn`` that installs the workers' handlers (picklable, so
    it works with every start method)."""

    def __init__(self) -> None:
        self._released = multiprocessing.get_context().RawValue("b", 0)
        atexit.register(self.release)

    @property
    def released(self) -> bool:
        return bool(self._released.value)

    def release(self) -> None:
        """Let the signals end the workers again (the main process is done with them)."""
        self._released.value = 1

    def __call__(self, worker_id: int) -> None:
        released = self._released

        def handle(signum: int, frame: Any) -> None:
            # Python runs this handler late: a job-wide SIGTERM that arrived while the worker
            # waited in C code may run it only after the release. Dying *of* the signal then
            # makes the main process's SIGCHLD guard report a "killed" worker in the middle
            # of its clean shutdown, so a released worker exits with status 0 instead.
            if released.value:
                os._exit(0)
            # otherwise a stop sent to the whole job: the main process handles it

        for signum in _SIGNALS:
            signal.signal(signum, handle)


def release_workers(loader: Any) -> None:
    """Release the workers of ``loader`` (a no-op for a loader without them)."""
    init = getattr(loader, "worker_init_fn", None)
    if isinstance(init, WorkerSignals):
        init.release()
