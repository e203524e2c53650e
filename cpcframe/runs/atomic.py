"""Atomic writes: a file or a folder appears complete under its name, or not at all.

Files: write a temporary file in the same directory, fsync it, ``os.replace`` it into
place, fsync the directory. Folders: fill a temporary folder next to the final one and
``os.rename`` it. Both renames are atomic on POSIX file systems, so a kill at any moment
leaves the previous version (or nothing), never a torn one. A kill can leave the
temporary behind; :func:`is_temporary` recognises those names, and a run removes them
when it starts (:meth:`cpcframe.runs.layout.RunDir.remove_temporaries`).

A write that fails because the file system is full raises :class:`DiskFull`, which says
so (``torch.save`` itself reports a full disk as ``basic_ios::clear: iostream error``).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from cpcframe.errors import UserError

#: What the temporaries of :func:`write_atomic` (``mkstemp``) and :func:`publish_dir` look like.
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?:[a-z0-9_]{8}\.tmp|tmp-\d+-[0-9a-f]{8})$")
#: A file system with less space than this left after a failed write counts as full.
_NEARLY_FULL = 1 << 20


class DiskFull(UserError):
    """A write failed because the file system has no space (or quota) left."""


def is_temporary(name: str) -> str | None:
    """The final name a temporary file or folder name was for, or ``None`` if it is none."""
    match = _TEMPORARY.match(name)
    return match.group("name") if match else None


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full(exc: BaseException, folder: Path | None = None) -> bool:
    """Whether ``exc`` (or an exception it came from) means "no space left": ``ENOSPC`` or
    ``EDQUOT``, those words in a library's message, or a failed write to ``folder`` while
    its file system is (nearly) full."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(e)
        if "No space left on device" in text or "os error 28" in text or "Disk quota exceeded" in text:
            return True
        e = e.__cause__ or e.__context__
    if folder is not None and isinstance(exc, (OSError, RuntimeError)):
        free = _free_bytes(folder)
        return free is not None and free < _NEARLY_FULL
    return False


def disk_full_error(path: Path, exc: BaseException | None = None) -> DiskFull:
    """The :class:`DiskFull` error of a failed write to ``path``."""
    free = _free_bytes(path.parent)
    left = f", {free:,} bytes free" if free is not None else ""
    reason = f" ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror else ""
    return DiskFull(f"disk full: cannot write {path}{reason}{left}; free some space "
                    f"(or write elsewhere) and try again")


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_temporary(path: Path, write: Callable[[Path], None]) -> Path:
    """``write`` into a new temporary file next to ``path``, fsynced; removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if disk_full(exc):
            raise disk_full_error(path, exc) from None
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
    except BaseException as exc:
        full = disk_full(exc, path.parent)  # before the temporary's space is given back
        tmp.unlink(missing_ok=True)
        if full:
            raise disk_full_error(path, exc) from None
        raise
    return tmp


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path next to ``path``, then move it into place.

    Raises:
        DiskFull: the file system is full (the previous file at ``path`` is intact).
    """
    return write_atomic_group([(Path(path), write)])[0]


def write_atomic_group(writes: Sequence[tuple[Path, Callable[[Path], None]]]) -> list[Path]:
    """Several files written as nearly one: every temporary is written first, then they
    are moved into place one right after the other, in order (the last one commits).

    A failure or a kill while writing leaves every previous file; only a kill between the
    renames (microseconds, not the time of a write) leaves the first ones newer.
    """
    temporaries: list[Path] = []
    try:
        for path, write in writes:
            temporaries.append(_write_temporary(Path(path), write))
        for tmp, (path, _) in zip(temporaries, writes):
            os.replace(tmp, path)
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
    for folder in dict.fromkeys(Path(p).parent for p, _ in writes):
        _fsync_dir(folder)
    return [Path(p) for p, _ in writes]


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
    except BaseException as exc:
        full = disk_full(exc, final.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise disk_full_error(final, exc) from None
        raise
