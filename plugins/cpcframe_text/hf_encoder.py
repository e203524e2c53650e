"""``hf_sentence_encoder``: any ``transformers`` encoder model as the sentence encoder.

Each sentence of a ``(B, S, L)`` window is run through the model on its own and its
last hidden states are mean-pooled over real tokens (or the first token is taken), so
the output is ``(B, S, H)`` like ``sentence_conv``'s. Pair it with a tokenizer from the
same model directory (``[data.dataset.tokenizer] pretrained = ...`` and
``add_special_tokens = true``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs
from torch import Tensor, nn

from cpcframe import Encoder, UserError, validators
from cpcframe_text.encoders import example_sentences, masked_mean, unpack_sentences


@attrs.frozen
class HFSentenceEncoderConfig:
    """Options of ``hf_sentence_encoder``.

    Attributes:
        model: a local model directory (or, with network, a hub name) for ``AutoModel``;
            empty: a BERT built from the ``vocab_size`` ... ``max_positions`` settings
            below, with random weights (a transformer sentence encoder trained from scratch).
        pretrained: load the saved weights of ``model``; ``false`` builds the same
            architecture from its config with random weights.
        pooling: ``mean`` over real tokens, or ``first`` (the ``[CLS]`` position).
        freeze: keep the transformer's weights fixed (train only a projection, if any).
        projection: a linear map to this size after pooling (0 = none).
        vocab_size, hidden_size, num_layers, num_heads, max_positions: the BERT built
            when ``model`` is empty (``vocab_size`` must cover the tokenizer's).
    """

    model: str = ""
    pretrained: bool = True
    pooling: Literal["mean", "first"] = "mean"
    freeze: bool = False
    projection: int = attrs.field(default=0, validator=validators.non_negative)
    vocab_size: int = attrs.field(default=20000, validator=validators.positive)
    hidden_size: int = attrs.field(default=256, validator=validators.positive)
    num_layers: int = attrs.field(default=4, validator=validators.positive)
    num_heads: int = attrs.field(default=4, validator=validators.positive)
    max_positions: int = attrs.field(default=512, validator=validators.positive)

    def __attrs_post_init__(self) -> None:
        if not self.model and self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}")


def _load_model(config: HFSentenceEncoderConfig) -> nn.Module:
    from transformers import AutoConfig, AutoModel, BertConfig, BertModel

    if not config.model:
        # No pooler: only the hidden states are used, and unused weights would get no gradient.
        return BertModel(BertConfig(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size,
            num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
            intermediate_size=4 * config.hidden_size, max_position_embeddings=config.max_positions),
            add_pooling_layer=False)
    try:
        if config.pretrained:
            return AutoModel.from_pretrained(config.model)
        return AutoModel.from_config(AutoConfig.from_pretrained(config.model))
    except (OSError, ValueError) as exc:
        raise UserError(f"hf_sentence_encoder: cannot load {config.model!r}: {exc}") from None


class HFSentenceEncoder(Encoder):
    """``{"ids", "mask"}: (B, S, L) -> (B, S, H)`` through a Hugging Face encoder."""

    def __init__(self, config: HFSentenceEncoderConfig):
        super().__init__()
        self.model = _load_model(config)
        self.pooling = config.pooling
        if config.freeze:
            self.model.requires_grad_(False)
        hidden = int(self.model.config.hidden_size)
        self.vocab_size = int(self.model.config.vocab_size)
        self.projection = nn.Linear(hidden, config.projection) if config.projection else nn.Identity()
        self.output_dim = config.projection or hidden

    def example_input(self, batch_size: int = 2) -> dict[str, Tensor]:
        return example_sentences(batch_size, self.vocab_size)

    def check_vocabulary(self, size: int) -> None:
        if size > self.vocab_size:
            raise UserError(f"hf_sentence_encoder: the tokenizer has {size} tokens but the model's "
                            f"vocabulary has {self.vocab_size}; use the model's own tokenizer")

    def forward(self, view: Mapping[str, Tensor]) -> Tensor:
        ids, mask = unpack_sentences(view, "hf_sentence_encoder")
        B, S, L = ids.shape
        ids, mask = ids.reshape(B * S, L), mask.reshape(B * S, L)
        hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (N, L, H)
        pooled = hidden[:, 0] if self.pooling == "first" else masked_mean(hidden, mask)
        return self.projection(pooled).view(B, S, self.output_dim)


def build_hf_sentence_encoder(config: HFSentenceEncoderConfig) -> HFSentenceEncoder:
    """A transformers encoder (local directory, or a BERT from scratch) with mean pooling."""
    return HFSentenceEncoder(config)
