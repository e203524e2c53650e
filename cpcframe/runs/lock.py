"""The lock that keeps two writers out of one run directory (``flock`` on its lock file).

The operating system releases it when the process ends, however it ends, so a crashed
run never leaves a stale lock. The file holds the holder's process id for the message.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from cpcframe.errors import UserError


class DirectoryLock:
    """An exclusive, non-blocking lock on ``path`` (created with its folder if missing)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`UserError` naming the process that holds it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                holder = ""
                try:
                    holder = self.path.read_text().strip()
                except OSError:
                    pass
                who = f" (process {holder})" if holder else ""
                raise UserError(f"another run is writing into {self.path.parent}{who}; "
                                "wait for it or choose another --out") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
