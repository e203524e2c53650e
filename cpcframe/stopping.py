"""Stopping a command cleanly: Ctrl-C (SIGINT) and SIGTERM, in every phase.

SIGTERM is what SLURM (``scancel``, time limits), Kubernetes, systemd and ``torchrun``
send before they stop a job, and they send it to every process of the job, loader
workers included (those leave stopping to the main process, see
:mod:`cpcframe.data.workers`); Ctrl-C is SIGINT, sent to the terminal's process group.

One :class:`StopRequest` lives for the whole command (``cpcframe run`` installs it before
anything else; :meth:`cpcframe.training.trainer.Trainer.run` when used from Python).
Its handler always sets a flag, then:

* while training (inside :meth:`StopRequest.deferred`): nothing more; the trainer checks
  the flag after every step (agreed by all ranks), saves a checkpoint and raises
  ``TrainingInterrupted``. A second Ctrl-C stops at once.
* in every other phase (set-up, data preparation, the final probe), when the request
  was made with ``interrupt=True``: it raises :class:`StopSignal` at once. Code that
  swallows it (a third-party import that wraps ``import gmpy2`` in a bare ``except``)
  cannot make the stop go away: the flag stays set and :meth:`StopRequest.check` raises
  it again at the next phase boundary.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: The request whose handlers are installed (the innermost), if any.
_active: list["StopRequest"] = []


class StopSignal(KeyboardInterrupt):
    """A stop signal outside the training loop. A ``KeyboardInterrupt``, so that code
    which cleans up after Ctrl-C cleans up after SIGTERM too.

    Attributes:
        reason: ``SIGINT`` or ``SIGTERM``.
        phase: what the command was doing (``set-up``, ``data preparation``, ...).
        note: what was saved, and how to continue.
    """

    def __init__(self, reason: str, phase: str = "", note: str = ""):
        super().__init__(reason, phase, note)
        self.reason, self.phase, self.note = reason, phase, note

    def __str__(self) -> str:
        during = f" during {self.phase}" if self.phase else ""
        return f"stopped by {self.reason}{during}" + (f"; {self.note}" if self.note else "")


def active_stop_request() -> "StopRequest | None":
    """The installed request (``cpcframe run``'s), or ``None``."""
    return _active[-1] if _active else None


class StopRequest:
    """The flag the handlers set; use as a context manager to install them (re-entrant).

    Attributes:
        requested: a stop was asked for in this process.
        reason: what asked (``SIGINT``, ``SIGTERM``); the default stands for a stop that
            another rank received.
        phase: the phase :meth:`check` and the handler name in their message.
        interrupt: outside :meth:`deferred`, the handler raises :class:`StopSignal`.
    """

    def __init__(self, interrupt: bool = False) -> None:
        self.requested = False
        self.reason = "a stop request"
        self.phase = "set-up"
        self.interrupt = interrupt
        self._deferred = 0
        self._depth = 0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        deferred = self._deferred or not self.interrupt
        if self.requested and signum == signal.SIGINT and deferred:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        if not self.requested:
            self.reason = signal.Signals(signum).name
        self.requested = True
        if not deferred:
            raise StopSignal(self.reason, self.phase)

    @contextlib.contextmanager
    def deferred(self, phase: str = "training") -> Iterator["StopRequest"]:
        """Within: a signal only sets the flag (the caller checks it when it can stop)."""
        previous, self.phase = self.phase, phase
        self._deferred += 1
        try:
            yield self
        finally:
            self._deferred -= 1
            self.phase = previous

    def enter_phase(self, phase: str) -> None:
        """Name what the command does now (for messages), after checking the flag."""
        self.check()
        self.phase = phase

    def check(self, phase: str | None = None) -> None:
        """Raise :class:`StopSignal` when a stop was requested (one that was swallowed too)."""
        if self.requested:
            raise StopSignal(self.reason, phase or self.phase)

    def __enter__(self) -> "StopRequest":
        if self._depth == 0:
            for signum in SIGNALS:
                try:
                    self._previous[signum] = signal.signal(signum, self._handle)
                except ValueError:  # not the main thread: leave the handlers alone
                    pass
            _active.append(self)
        self._depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth:
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        if self in _active:
            _active.remove(self)
