"""The one data structure every critic produces and the InfoNCE engine consumes.

A :class:`Contrast` describes a batch of InfoNCE problems in the same shape for every
model family, so the engine never special-cases one:

* **CPC on sequences** (audio, text; van den Oord et al. 2018, arXiv 1807.03748):
  query ``(t, k)`` is ``W_k c_t``; its positive is location ``t + k`` of the same item.
  ``Q = T·K`` queries, ``L = T`` locations, ``P = 1``; the ``K`` queries of a position form
  a ``query_group`` (they may share their sampled negatives).
* **CPC on 2-D grids** (image patches): query ``(i, j, k)`` predicts the patch ``k`` rows
  below; locations are the flattened grid, ``L = H·W``.
* **AMDIM** (Bachman et al. 2019, arXiv 1906.00910): query = the global feature of view 1
  (``Q = 1``); every location of view 2's 5x5 map is a positive (``P = 25``); each
  (query, positive) pair is one NCE term whose negatives are shared.

Candidates are all ``(item, location)`` pairs of ``keys``: ``C = N_items · L``. With
cross-device negatives ``keys`` holds the gathered global batch and ``item_offset`` says
where the local items sit in it.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor


def _fail(name: str, message: str) -> None:
    raise ValueError(f"Contrast {name!r}: {message}")


@attrs.frozen(eq=False)
class Contrast:
    """A batch of InfoNCE problems.

    Attributes:
        queries: ``(B, Q, D)`` prediction vectors, ``Q`` per local batch item.
        keys: ``(N, L, D)`` candidate encodings, ``L`` locations for each of ``N >= B`` items.
        positives: ``(Q, P)`` long; ``positives[q, p]`` is a location in ``[0, L)`` of the
            query's own item that is a positive for query ``q``; ``-1`` marks padding.
        steps: ``(Q,)`` long in ``[0, len(step_names))``: the prediction step (or head)
            of each query, used to report loss and accuracy per step.
        step_names: one name per step, e.g. ``("k1", ..., "k12")``.
        name: names this contrast in metrics (``"1t5"`` for AMDIM's 1->5 pair).
        weight: factor of this contrast's loss in the model's total loss.
        groups: ``(N,)`` long group id of each key item (e.g. speaker) for group policies.
        query_mask: ``(B, Q)`` bool, ``False`` for padded queries.
        key_mask: ``(N, L)`` bool, ``False`` for padded locations (never candidates).
        item_offset: index in ``keys`` of local item 0 (``rank · B`` after an all-gather).
        mixture: ``α > 0`` makes an item's ``Q`` queries alternative heads (AMDIM's
            mixture-based representation, section 3.4): the terms ``ℓ_qp`` of all heads
            for positive ``p`` combine into ``-α·log Σ_q exp(-ℓ_qp / α)``, the optimum of
            ``Σ_q π_q ℓ_qp - α·H(π)`` over head weights ``π``. ``0`` (default): every term
            counts on its own.
        query_group: ``G``: runs of ``G`` consecutive queries predict from one context (CPC:
            the ``K`` steps ``W_k c_t`` of one position ``t``, so ``G = K``); with the
            engine's ``share_negatives`` they draw one set of negatives per run, as
            CPC_audio does. ``Q`` must be a multiple of it; ``1`` (default): every query on
            its own.
    """

    queries: Tensor
    keys: Tensor
    positives: Tensor
    steps: Tensor
    step_names: tuple[str, ...]
    name: str = ""
    weight: float = 1.0
    groups: Tensor | None = None
    query_mask: Tensor | None = None
    key_mask: Tensor | None = None
    item_offset: int = 0
    mixture: float = 0.0
    query_group: int = 1

    def __attrs_post_init__(self) -> None:
        q, k, n = self.queries, self.keys, self.name
        if q.dim() != 3:
            _fail(n, f"queries must be (B, Q, D), got shape {tuple(q.shape)}")
        if k.dim() != 3:
            _fail(n, f"keys must be (N, L, D), got shape {tuple(k.shape)}")
        if q.shape[2] != k.shape[2]:
            _fail(n, f"queries have D={q.shape[2]} but keys have D={k.shape[2]}")
        B, Q, _ = q.shape
        N, L, _ = k.shape
        if not 0 <= self.item_offset <= N - B:
            _fail(n, f"item_offset={self.item_offset} places {B} local items outside {N} key items")
        if self.positives.dim() != 2 or self.positives.shape[0] != Q:
            _fail(n, f"positives must be (Q={Q}, P), got shape {tuple(self.positives.shape)}")
        if self.positives.dtype != torch.long:
            _fail(n, f"positives must be torch.long, got {self.positives.dtype}")
        if self.positives.numel() and (self.positives.max() >= L or self.positives.min() < -1):
            _fail(n, f"positives must lie in [-1, L={L}), got range "
                     f"[{int(self.positives.min())}, {int(self.positives.max())}]")
        if self.steps.shape != (Q,):
            _fail(n, f"steps must be (Q={Q},), got shape {tuple(self.steps.shape)}")
        if not self.step_names:
            _fail(n, "step_names must name at least one step")
        if self.steps.numel() and (self.steps.min() < 0 or self.steps.max() >= len(self.step_names)):
            _fail(n, f"steps must lie in [0, {len(self.step_names)})")
        if self.groups is not None and self.groups.shape != (N,):
            _fail(n, f"groups must be (N={N},), got shape {tuple(self.groups.shape)}")
        if self.query_mask is not None and self.query_mask.shape != (B, Q):
            _fail(n, f"query_mask must be (B={B}, Q={Q}), got {tuple(self.query_mask.shape)}")
        if self.key_mask is not None and self.key_mask.shape != (N, L):
            _fail(n, f"key_mask must be (N={N}, L={L}), got {tuple(self.key_mask.shape)}")
        if not self.mixture >= 0:
            _fail(n, f"mixture must be >= 0, got {self.mixture}")
        if not (isinstance(self.query_group, int) and self.query_group >= 1 and Q % self.query_group == 0):
            _fail(n, f"query_group must be a positive divisor of Q={Q}, got {self.query_group!r}")

    @property
    def batch_size(self) -> int:
        return self.queries.shape[0]

    @property
    def num_steps(self) -> int:
        return len(self.step_names)

    def metric_name(self, step: int) -> str:
        """``"k3"``, ``"1t5"`` or ``"1t5/k3"``: the non-empty parts joined by ``/``."""
        parts = [p for p in (self.name, self.step_names[step]) if p]
        return "/".join(parts) or "all"
