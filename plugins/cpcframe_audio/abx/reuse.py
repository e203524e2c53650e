"""Less repeated work inside ``zerospeech-libriabx2``'s scoring, with bit-identical numbers.

The dependency scores a condition by iterating over triplet groups (A, B, X) and calling
its ``get_distance_group_dtw(X, A)`` and ``(X, B)`` on zero-padded ``(N, S, D)`` group
tensors. Its iterators hand it the same (X, A) pair again for every B phone: on the
quickstart corpus 36 % of the ``phone/across`` calls repeat an earlier one. The function
is deterministic, so :func:`reusing_libriabx2` keeps each result by what its inputs are
(the dataset items in each group, which its ``get_group`` is made to tag, replaying the
group's random draw; the bytes of an untagged tensor; the flags) and returns a copy when
the same inputs come back; the dependency still computes every distance and DTW it reports.

Its Cython ``dtw_batch`` reads the item sizes one by one from a tensor (a 0-d tensor per
item pair, then used as slice bounds); given the same sizes as Python ints it runs the
same arithmetic on the same arrays about 30 % faster (measured on an AMD EPYC, groups of
10 x 10 items of 3 to 15 frames: 1.2 ms -> 0.87 ms per call).

All three are installed into the dependency's modules for the duration of a ``with`` block and
undone after it; ``tests/audio/test_abx_backend.py`` checks that scores are the same
with and without.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator


class _IntSizes:
    """``libri_light_dtw`` whose ``dtw_batch`` receives the sizes as lists of ints."""

    def __init__(self, module):
        self._module = module

    def dtw_batch(self, x, y, sx, sy, dist_mat, ignore_diag=False, symetric=False):
        return self._module.dtw_batch(x, y, sx.tolist(), sy.tolist(), dist_mat, ignore_diag, symetric)

    def __getattr__(self, name):
        return getattr(self._module, name)


ITEMS = "_cpcframe_abx_items"  # the attribute naming the dataset items of a group tensor


def _key(tensors, *flags) -> tuple:
    """What identifies a group DTW: the items in each group (tagged by :func:`reusing_libriabx2`'s
    ``get_group``) or, for an untagged tensor, its bytes."""
    parts = []
    for t in tensors:
        items = getattr(t, ITEMS, None)
        if items is None:
            t = t.detach().cpu().contiguous()
            items = (str(t.dtype), tuple(t.shape), hashlib.blake2b(t.numpy().tobytes(), digest_size=16).digest())
        parts.append(items)
    return (*parts, *flags)


@contextlib.contextmanager
def reusing_libriabx2() -> Iterator[dict]:
    """Within the block, ``zrc_abx2``'s group DTW is memoised and its DTW loop gets int sizes.

    Yields the cache (``{key: (Nx, Na) distances}``), so a caller can see how much was reused.
    """
    import zrc_abx2.ABX_src.abx_group_computation as group
    from zrc_abx2.ABX_src.ABXIterators.abx_iterators import ABXIterator

    original, original_dtw, original_group = group.get_distance_group_dtw, group.dtw, ABXIterator.get_group
    cache: dict = {}

    def get_group(self, i_start, i_end):
        taken = list(range(i_start, i_end))
        sampled = len(taken) > self.max_size_group
        state = random.getstate() if sampled else None
        data, size, loc_id = original_group(self, i_start, i_end)
        if sampled:  # replay its draw to learn which items it took
            after = random.getstate()
            random.setstate(state)
            taken = random.sample(taken, k=self.max_size_group)
            if random.getstate() != after:  # it drew otherwise: leave this group to the bytes key
                random.setstate(after)
                return data, size, loc_id
        items = (id(self.abxDataset), tuple(self.indices_items[i] for i in taken))
        setattr(data, ITEMS, items)
        setattr(size, ITEMS, items)
        return data, size, loc_id

    def get_distance_group_dtw(a1, a2, size1, size2, pooling, ignore_diag=False, symmetric=False,
                               distance_function=group.get_cosine_distance_batch):
        key = _key((a1, a2, size1, size2), pooling, ignore_diag, symmetric, distance_function)
        if key not in cache:
            cache[key] = original(a1, a2, size1, size2, pooling, ignore_diag=ignore_diag, symmetric=symmetric,
                                  distance_function=distance_function)
        return cache[key].clone()  # the caller writes into it (its symmetric diagonal)

    group.get_distance_group_dtw, group.dtw, ABXIterator.get_group = (get_distance_group_dtw,
                                                                      _IntSizes(original_dtw), get_group)
    try:
        yield cache
    finally:
        group.get_distance_group_dtw, group.dtw, ABXIterator.get_group = original, original_dtw, original_group
