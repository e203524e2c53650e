"""The run directory: its files and the lock that keeps two runs out of one directory."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from cpcframe.errors import UserError


class RunDir:
    """Paths of a run directory.

    ``recipe.toml`` (resolved recipe), ``checkpoint.pt`` (full training state),
    ``model.safetensors`` (weights only), ``metrics.jsonl``, ``curves.png``,
    ``summary.json``, ``probe.json``.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock_fd: int | None = None

    recipe = property(lambda self: self.root / "recipe.toml")
    checkpoint = property(lambda self: self.root / "checkpoint.pt")
    weights = property(lambda self: self.root / "model.safetensors")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    curves = property(lambda self: self.root / "curves.png")
    summary = property(lambda self: self.root / "summary.json")
    probe = property(lambda self: self.root / "probe.json")
    lock_file = property(lambda self: self.root / ".lock")

    def probe_details(self, name: str) -> Path:
        """What probe ``name`` adds to ``probe.json`` (``probe_speech_details.json``)."""
        return self.root / f"probe_{name}_details.json"

    def lock(self) -> None:
        """Take the directory's lock or fail with a clear message (released at exit)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                holder = ""
                try:
                    holder = self.lock_file.read_text().strip()
                except OSError:
                    pass
                who = f" (process {holder})" if holder else ""
                raise UserError(f"another run is writing into {self.root}{who}; "
                                "wait for it or choose another --out") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
