"""Stopping a run cleanly: Ctrl-C and SIGTERM ask the trainer to stop after this step.

SIGTERM is what SLURM and Kubernetes send before they preempt or cancel a job, and what
``torchrun`` forwards to its workers; Ctrl-C is SIGINT. Either one sets a flag; the
trainer checks it after every step (agreed by all ranks), saves a checkpoint and raises
``TrainingInterrupted``. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import signal
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The flag the handlers set; use as a context manager to install them.

    Attributes:
        requested: a stop was asked for in this process.
        reason: what asked (``SIGINT``, ``SIGTERM``); the default stands for a stop that
            another rank received.
    """

    def __init__(self) -> None:
        self.requested = False
        self.reason = "a stop request"
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True
        self.reason = signal.Signals(signum).name

    def __enter__(self) -> "StopRequest":
        for signum in SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
