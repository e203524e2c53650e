"""Atomic writes: a file or a folder appears complete under its name, or not at all.

Files: write a temporary file in the same directory, fsync it, ``os.replace`` it into
place, fsync the directory. Folders: fill a temporary folder next to the final one and
``os.rename`` it. Both renames are atomic on POSIX file systems, so a kill at any moment
leaves the previous version (or nothing), never a torn one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path next to ``path``, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``path.write_text(text)`` (UTF-8), atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def publish_dir(final: Path, fill: Callable[[Path], None], marker: str | None = None) -> bool:
    """Make folder ``final`` by ``fill(tmp)`` on a new temporary folder next to it, then a rename.

    An interrupted ``fill`` leaves no ``final`` (the temporary folder is removed). When
    another process published ``final`` first (it exists, with ``marker`` inside when one
    is given), that folder is kept and ours is dropped. Returns whether ours was published.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
        try:
            os.rename(tmp, final)  # atomic; fails when a non-empty ``final`` exists
            return True
        except OSError:
            if not final.is_dir() or (marker is not None and not (final / marker).is_file()):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
