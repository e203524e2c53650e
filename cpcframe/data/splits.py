"""Deterministic held-out splits chosen by a hash of each item's key.

Hashing the key (not drawing from a generator over positions) means that adding or
removing files moves few other items between the splits, and every process, worker and
later run computes the same split without storing it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence


def key_hash(seed: int | str, key: str) -> int:
    """A stable 32-bit hash of ``key`` salted with ``seed`` (CRC-32 of ``"seed:key"``)."""
    return zlib.crc32(f"{seed}:{key}".encode())


def hold_out(keys: Sequence[str], fraction: float, seed: int | str = "test") -> list[int]:
    """Positions in ``keys`` of a held-out share of ``round(fraction · n)`` items, at least
    one and at most ``n - 1`` when ``n >= 2`` (so neither side is empty); none when
    ``n < 2``. The items with the smallest :func:`key_hash` are held out; the result is
    sorted.
    """
    n = len(keys)
    if n < 2:
        return []
    k = min(max(int(round(fraction * n)), 1), n - 1)
    return sorted(sorted(range(n), key=lambda p: key_hash(seed, keys[p]))[:k])
