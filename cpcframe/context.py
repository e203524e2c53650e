"""The ``ContextModel`` interface: latents ``z`` -> context ``c`` (g_ar in CPC)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import nn

from cpcframe.encoder import Features


class ContextModel(nn.Module, ABC):
    """Summarises latents into context features that predictions are made from.

    A context model must be causal along the axis the critic predicts over: ``c_t``
    may depend on ``z_{<=t}`` only (a GRU over time; a masked PixelCNN over grid rows,
    where row ``i`` sees rows ``<= i``). AMDIM uses the identity, the default
    (:mod:`cpcframe.identity`).

    Attributes:
        output_dim: ``H``, the channel size of the context.
        causal_axis: the axis of latents and context along which the model is causal:
            output index ``t`` along it depends on input indices ``<= t`` only. ``1``
            (the default) is time for ``(B, T, C)`` sequences and the rows of
            ``(B, H, W, C)`` grids; the contract tests perturb the latents past ``t`` along
            it and check the context up to ``t`` stays the same.
    """

    output_dim: int
    causal_axis: int = 1

    @abstractmethod
    def forward(self, latents: Features) -> Features:
        """``(B, T, C) -> (B, T, H)`` for sequences, ``(B, H, W, C) -> (B, H, W, H')`` for grids."""

    def example_input(self, batch_size: int = 2) -> Features:
        """Small valid latents for the contract tests; the default is a ``(B, 12, input_dim)`` sequence."""
        raise NotImplementedError(f"{type(self).__name__} does not implement example_input()")
