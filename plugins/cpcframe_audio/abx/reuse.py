"""Less repeated work inside ``zerospeech-libriabx2``'s scoring, with bit-identical numbers.

The dependency scores a condition by iterating over triplet groups (A, B, X) and calling
its ``get_distance_group_dtw(X, A)`` and ``(X, B)`` on zero-padded ``(N, S, D)`` group
tensors. Its iterators hand it the same (X, A) pair again for every B phone: on the
quickstart corpus 36 % of the ``phone/across`` calls repeat an earlier one. The function
is deterministic, so :func:`reusing_libriabx2` keeps each result by the bytes of its inputs
(the groups, their sizes, the flags) and returns a copy when the same inputs come back;
the dependency still computes every distance and DTW it reports.

Its Cython ``dtw_batch`` reads the item sizes one by one from a tensor (a 0-d tensor per
item pair, then used as slice bounds); given the same sizes as Python ints it runs the
same arithmetic on the same arrays about 30 % faster (measured on an AMD EPYC, groups of
10 x 10 items of 3 to 15 frames: 1.2 ms -> 0.87 ms per call).

Both are installed into the dependency's module for the duration of a ``with`` block and
undone after it; ``tests/audio/test_abx_backend.py`` checks that scores are the same
with and without.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator


class _IntSizes:
    """``libri_light_dtw`` whose ``dtw_batch`` receives the sizes as lists of ints."""

    def __init__(self, module):
        self._module = module

    def dtw_batch(self, x, y, sx, sy, dist_mat, ignore_diag=False, symetric=False):
        return self._module.dtw_batch(x, y, sx.tolist(), sy.tolist(), dist_mat, ignore_diag, symetric)

    def __getattr__(self, name):
        return getattr(self._module, name)


def _key(tensors, *flags) -> tuple:
    digest = hashlib.blake2b(digest_size=16)
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.numpy().tobytes())
    return (digest.digest(), *flags)


@contextlib.contextmanager
def reusing_libriabx2() -> Iterator[dict]:
    """Within the block, ``zrc_abx2``'s group DTW is memoised and its DTW loop gets int sizes.

    Yields the cache (``{key: (Nx, Na) distances}``), so a caller can see how much was reused.
    """
    import zrc_abx2.ABX_src.abx_group_computation as group

    original, original_dtw = group.get_distance_group_dtw, group.dtw
    cache: dict = {}

    def get_distance_group_dtw(a1, a2, size1, size2, pooling, ignore_diag=False, symmetric=False,
                               distance_function=group.get_cosine_distance_batch):
        key = _key((a1, a2, size1, size2), pooling, ignore_diag, symmetric, distance_function)
        if key not in cache:
            cache[key] = original(a1, a2, size1, size2, pooling, ignore_diag=ignore_diag, symmetric=symmetric,
                                  distance_function=distance_function)
        return cache[key].clone()  # the caller writes into it (its symmetric diagonal)

    group.get_distance_group_dtw, group.dtw = get_distance_group_dtw, _IntSizes(original_dtw)
    try:
        yield cache
    finally:
        group.get_distance_group_dtw, group.dtw = original, original_dtw
