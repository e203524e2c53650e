"""``sentence_conv``: the sentence encoder of sentence CPC.

van den Oord et al. 2018, section 3.3: "a simple sentence encoder g_enc (a
1D-convolution + ReLU + mean-pooling) that embeds a whole sentence into a
2400-dimension vector z, followed by a GRU (2400 hidden units)". Word embeddings are
620-dimensional and the vocabulary 20k words as in skip-thought (Kiros et al. 2015),
whose evaluation CPC follows.

Padding never changes a sentence's embedding: pad embeddings are zeroed, which is
exactly the zero padding a ``same`` convolution applies at the sentence's real end, so
every real position's output is the same whatever the padded length; pooling then
averages only over real positions.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import torch
from torch import Tensor, nn

from cpcframe import Encoder, UserError, validators


def _odd(_instance, attribute, value) -> None:
    if value < 1 or value % 2 == 0:
        raise ValueError(f"must be a positive odd number (centred 'same' convolution), got {value}")


@attrs.frozen
class SentenceConvConfig:
    """Options of ``sentence_conv`` (defaults: the paper's 2400-dim encoder).

    Attributes:
        vocab_size: rows of the embedding table; must cover the tokenizer's vocabulary.
        embedding_dim: word embedding size (skip-thought: 620).
        dim: ``C``, the sentence embedding size (CPC: 2400).
        kernel_size: width of the 1-D convolution over words (odd).
    """

    vocab_size: int = attrs.field(default=20000, validator=validators.positive)
    embedding_dim: int = attrs.field(default=620, validator=validators.positive)
    dim: int = attrs.field(default=2400, validator=validators.positive)
    kernel_size: int = attrs.field(default=3, validator=_odd)


def unpack_sentences(view: Mapping[str, Tensor], name: str) -> tuple[Tensor, Tensor]:
    """Validate a ``{"ids": (B, S, L), "mask": (B, S, L)}`` view; return ``ids, mask``."""
    if not isinstance(view, Mapping) or "ids" not in view or "mask" not in view:
        raise ValueError(f"{name} expects a view {{'ids': (B, S, L), 'mask': (B, S, L)}} "
                         f"(e.g. from the sentence_windows sampler), got {type(view).__name__}")
    ids, mask = view["ids"], view["mask"]
    if ids.dim() != 3 or ids.shape != mask.shape:
        raise ValueError(f"{name}: ids and mask must both be (B, S, L), got "
                         f"{tuple(ids.shape)} and {tuple(mask.shape)}")
    return ids, mask.bool()


def example_sentences(batch_size: int, vocab_size: int, sentences: int = 4, max_len: int = 7) -> dict[str, Tensor]:
    """A ``(B, S, L)`` window of random sentences of random lengths (contract tests)."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, max_len + 1, (batch_size, sentences), generator=g)
    mask = torch.arange(max_len) < lengths[..., None]  # (B, S, L)
    ids = torch.randint(0, vocab_size, mask.shape, generator=g) * mask
    return {"ids": ids, "mask": mask}


def masked_mean(h: Tensor, mask: Tensor) -> Tensor:
    """``(N, L, C)`` features, ``(N, L)`` mask -> ``(N, C)`` mean over real positions (0 if none)."""
    count = mask.sum(1, keepdim=True).clamp(min=1).to(h.dtype)  # (N, 1)
    return torch.einsum("nlc,nl->nc", h, mask.to(h.dtype)) / count


class SentenceConvEncoder(Encoder):
    """``{"ids", "mask"}: (B, S, L) -> (B, S, C)``: embed, 1-D conv, ReLU, masked mean-pool."""

    def __init__(self, config: SentenceConvConfig):
        super().__init__()
        self.vocab_size = config.vocab_size
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.conv = nn.Conv1d(config.embedding_dim, config.dim, config.kernel_size,
                              padding=config.kernel_size // 2)
        self.output_dim = config.dim

    def example_input(self, batch_size: int = 2) -> dict[str, Tensor]:
        return example_sentences(batch_size, self.vocab_size)

    def check_vocabulary(self, size: int) -> None:
        """Raise a :class:`UserError` when a tokenizer of ``size`` ids does not fit."""
        if size > self.vocab_size:
            raise UserError(f"sentence_conv: the tokenizer has {size} tokens but the encoder's "
                            f"vocab_size is {self.vocab_size}; set model.encoder.vocab_size >= {size}")

    def forward(self, view: Mapping[str, Tensor]) -> Tensor:
        ids, mask = unpack_sentences(view, "sentence_conv")
        B, S, L = ids.shape
        if ids.numel():
            top = int(ids.max())  # also turns an out-of-range id into a message, not a device assert
            if top >= self.vocab_size:
                raise UserError(f"sentence_conv: token id {top} is outside vocab_size={self.vocab_size}; "
                                f"the tokenizer is bigger than the encoder's embedding table "
                                f"(set model.encoder.vocab_size to the tokenizer's size or more)")
        ids = ids.reshape(B * S, L)
        mask = mask.reshape(B * S, L)
        x = self.embedding(ids) * mask[..., None].to(self.embedding.weight.dtype)  # (N, L, E), pads = 0
        h = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (N, L, C)
        return masked_mean(h, mask).view(B, S, self.output_dim)


def build_sentence_conv(config: SentenceConvConfig) -> SentenceConvEncoder:
    """Sentence CPC encoder: word embeddings -> 1-D conv -> ReLU -> mean-pool."""
    return SentenceConvEncoder(config)
