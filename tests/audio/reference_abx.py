"""A plain NumPy ABX, written for the tests, to check what ``zerospeech-libriabx2`` computes.

It follows the libri-light protocol as that code implements it, step by step:

* an item is the frames ``ceil(onset/step - 1/2)`` to ``floor(offset/step - 1/2)`` of its
  utterance (end exclusive); items without a frame are dropped;
* frames are L2-normalised; the frame distance is the angle ``arccos(a·b) / pi``;
* the distance of two items is the DTW cost (steps right, down, diagonal) divided by
  the length of the path found by walking back from the end (ties: diagonal, then
  left, then up);
* a cell is the items of one (context,) speaker and phone. For phones ``a != b`` of a
  speaker, a triplet is X, A of phone ``a`` and B of phone ``b``; it is right when
  ``d(X, A) < d(X, B)`` and counts half when they are equal. Within speaker, X and A
  are two different items of the same cell; across speaker, A and B come from one
  speaker and X (phone ``a``, same context) from another;
* the error of a (speaker, a, b[, context][, X speaker]) entry is 1 - its share of
  right triplets; entries are averaged over the contexts (and X speakers), then over
  speakers, then over the phone pairs.

Cells are never subsampled here: compare with the dependency at ``max_size_group`` and
``max_x_across`` larger than any cell.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np


def span(onset: float, offset: float, step: float, frames: int) -> tuple[int, int]:
    rate = 1.0 / step
    return max(0, int(math.ceil(rate * onset - 0.5))), min(frames, int(math.floor(rate * offset - 0.5)))


def dtw(cost: np.ndarray) -> float:
    """Path-length-normalised DTW of an ``(N, M)`` frame-distance matrix."""
    n, m = cost.shape
    acc = np.empty((n, m), dtype=np.float32)
    acc[0, 0] = cost[0, 0]
    for i in range(1, n):
        acc[i, 0] = cost[i, 0] + acc[i - 1, 0]
    for j in range(1, m):
        acc[0, j] = cost[0, j] + acc[0, j - 1]
    for i in range(1, n):
        for j in range(1, m):
            acc[i, j] = cost[i, j] + min(acc[i - 1, j], acc[i - 1, j - 1], acc[i, j - 1])
    i, j, length = n - 1, m - 1, 1
    while i > 0 and j > 0:
        up, left, diag = acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1]
        if diag <= left and diag <= up:
            i, j = i - 1, j - 1
        elif left <= up:
            j -= 1
        else:
            i -= 1
        length += 1
    length += j if i == 0 else 0
    length += i if j == 0 else 0
    return float(acc[n - 1, m - 1] / np.float32(length))


def distance(x: np.ndarray, y: np.ndarray) -> float:
    """Angular DTW distance of two ``(T, D)`` items of unit-norm frames."""
    cost = np.arccos(np.clip(x @ y.T, -1.0, 1.0)) / np.pi
    return dtw(cost.astype(np.float32))


def _score(xs, as_, bs, same: bool) -> float:
    """Share of right triplets; with ``same`` the X and A come from one cell, X != A."""
    right, total = 0.0, 0
    for ix, x in enumerate(xs):
        d_b = [distance(x, b) for b in bs]
        for ia, a in enumerate(as_):
            if same and ia == ix:
                continue
            d_a = distance(x, a) if not same or ix < ia else distance(a, x)  # the dependency's order
            for d in d_b:
                right += 1.0 if d_a < d else 0.5 if d_a == d else 0.0
                total += 1
    return right / total


def abx_error(features: dict[str, np.ndarray], items, step: float, context: str, speaker: str) -> float:
    """ABX error (0 to 1) in one condition: ``context`` ``within``/``any``, ``speaker`` ``within``/``across``."""
    cells: dict[tuple, list[np.ndarray]] = defaultdict(list)
    for item in items:
        frames = features[item.file]
        start, end = span(item.onset, item.offset, step, len(frames))
        if end <= start:
            continue
        x = frames[start:end].astype(np.float64)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        ctx = (item.prev, item.next) if context == "within" else None
        cells[(ctx, item.speaker, item.phone)].append(x.astype(np.float32))
    phones = defaultdict(set)  # (context, speaker) -> phones
    for ctx, spk, phone in cells:
        phones[(ctx, spk)].add(phone)
    entries: dict[tuple, list[float]] = defaultdict(list)  # (speaker, a, b) -> errors to average
    for (ctx, spk), present in phones.items():
        for a in present:
            for b in present - {a}:
                A, B = cells[(ctx, spk, a)], cells[(ctx, spk, b)]
                if speaker == "within":
                    if len(A) < 2:
                        continue
                    entries[(spk, a, b)].append(1 - _score(A, A, B, same=True))
                else:
                    for (c2, s2, p2), X in cells.items():
                        if c2 == ctx and p2 == a and s2 != spk:
                            entries[(spk, a, b)].append(1 - _score(X, A, B, same=False))
    per_pair: dict[tuple, list[float]] = defaultdict(list)
    for (spk, a, b), errors in entries.items():
        per_pair[(a, b)].append(float(np.mean(errors)))
    return float(np.mean([np.mean(v) for v in per_pair.values()]))
