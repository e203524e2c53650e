"""Helpers for datasets that build a cache folder once and reuse it (decoded audio,
tokenized text, labels): a key that changes with everything the cache depends on, and an
atomic publish so that a crash or a concurrent builder never leaves a half-written folder.

A dataset typically does::

    final = context.cache_dir / "my_plugin" / f"corpus-{cache_key(settings)}"
    if not (final / "index.json").is_file():
        publish_dir(final, write_everything, marker="index.json")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cpcframe.runs.atomic import publish_dir  # noqa: F401  (re-exported: datasets publish caches with it)

log = logging.getLogger(__name__)


def cache_key(settings: Any, length: int = 20) -> str:
    """A stable hex digest (``length`` characters) of JSON-able ``settings``.

    Keys are sorted and non-JSON values are written with ``str``, so equal settings give
    equal digests in every process and Python version.
    """
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@contextlib.contextmanager
def exclusive(lock_path: Path, waiting: str = "") -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (``flock``; created if missing) for the block.

    The processes of a distributed run, or concurrent runs, that prepare the same dataset
    take turns: the first decodes or tokenizes and publishes its cache, the others then
    find it and only open it, instead of all decoding the same corpus at once. A file lock
    waits as long as it takes, unlike a collective's barrier with its timeout. ``waiting``
    is logged when another process holds the lock. Without ``fcntl`` (Windows) it does
    nothing, and so it does where the lock file cannot be created (a read-only cache).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock_path = Path(lock_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+b")
    except OSError as exc:
        log.debug("no lock %s (%s): preparing without one", lock_path, exc)
        yield
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log.warning("%s", waiting)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
