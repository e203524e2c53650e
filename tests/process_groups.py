"""Waiting for a stopped job's process group to end (the stop tests)."""

from __future__ import annotations

import os
import time


def group_is_gone(pgid: int, seconds: float = 30, poll: float = 0.1) -> bool:
    """Whether process group ``pgid`` has no process left within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(poll)
    return False
