"""Sentence encoders: padding never changes an embedding; vocabularies are checked; HF models work."""

from __future__ import annotations

import pytest
import torch

from cpcframe import ContrastiveModel, InfoNCEConfig, UserError
from cpcframe.batch import Batch
from cpcframe.model import contrastive_loss
from cpcframe_sequence.context_models import RecurrentConfig, build_gru
from cpcframe_sequence.critics import StepCriticConfig, build_step_critic
from cpcframe_text.data.cache import Document
from cpcframe_text.encoders import SentenceConvConfig, build_sentence_conv
from cpcframe_text.hf_encoder import HFSentenceEncoderConfig, build_hf_sentence_encoder
from cpcframe_text.views import SentenceWindows, SentenceWindowsConfig, pad_sentences

SMALL = SentenceConvConfig(vocab_size=50, embedding_dim=12, dim=16, kernel_size=5)


def window(sentences: list[list[int]], pad_to: int) -> dict[str, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sentences])
    ids, mask = pad_sentences(torch.tensor([t for s in sentences for t in s]), lengths, pad_to)
    return {"ids": ids[None], "mask": mask[None]}


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_padding_never_changes_a_sentence_embedding(kernel_size):
    torch.manual_seed(0)
    encoder = build_sentence_conv(SentenceConvConfig(vocab_size=50, embedding_dim=12, dim=16,
                                                     kernel_size=kernel_size))
    sentences = [[5, 9, 3], [7], [4, 8, 15, 16, 23, 42, 11, 2]]
    reference = encoder(window(sentences, 8))  # (1, 3, C)
    for pad_to in (9, 13, 40):
        padded = window(sentences, pad_to)
        padded["ids"][~padded["mask"]] = 31  # whatever id sits under the mask must not matter
        torch.testing.assert_close(encoder(padded), reference, atol=1e-6, rtol=0)
    # one sentence alone (as a probe embeds it) == the same sentence inside a window
    for i, s in enumerate(sentences):
        torch.testing.assert_close(encoder(window([s], len(s)))[0, 0], reference[0, i], atol=1e-6, rtol=0)


def test_collated_batch_embeddings_do_not_depend_on_batch_mates():
    torch.manual_seed(0)
    encoder = build_sentence_conv(SMALL)
    sampler = SentenceWindows(SentenceWindowsConfig(window=3, max_tokens=6))
    from cpcframe import Example
    short = Example(Document.from_sentences([[1, 2], [3], [4, 5, 6]]))
    long = Example(Document.from_sentences([[7] * 20, [8] * 3, [9] * 11]))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    alone = sampler.collate([sampler.sample(short, g())])[0]
    together = sampler.collate([sampler.sample(short, g()), sampler.sample(long, g())])[0]
    assert alone["ids"].shape == (1, 3, 3) and together["ids"].shape == (2, 3, 6)  # truncated to max_tokens
    torch.testing.assert_close(encoder(together)[:1], encoder(alone), atol=1e-6, rtol=0)


def test_empty_sentence_gives_zeros_not_nan():
    encoder = build_sentence_conv(SMALL)
    view = {"ids": torch.zeros(1, 2, 4, dtype=torch.long), "mask": torch.zeros(1, 2, 4, dtype=torch.bool)}
    view["mask"][0, 0, :2] = True
    z = encoder(view)
    assert torch.isfinite(z).all() and torch.equal(z[0, 1], torch.zeros(SMALL.dim))


def test_vocabulary_too_small_is_a_clear_error():
    encoder = build_sentence_conv(SMALL)
    with pytest.raises(UserError, match="vocab_size"):
        encoder.check_vocabulary(51)
    encoder.check_vocabulary(50)
    view = window([[1, 2, 50]], 3)
    with pytest.raises(UserError, match="token id 50 is outside vocab_size=50"):
        encoder(view)


def test_bad_view_is_rejected():
    encoder = build_sentence_conv(SMALL)
    with pytest.raises(ValueError, match="expects a view"):
        encoder(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="odd"):
        SentenceConvConfig(kernel_size=4)


def cpc_model(encoder):
    gru = build_gru(RecurrentConfig(hidden_size=16), input_dim=encoder.output_dim)
    critic = build_step_critic(StepCriticConfig(steps=3), latent_dim=encoder.output_dim, context_dim=16)
    return ContrastiveModel(encoder, gru, critic)


def test_sentence_conv_trains_with_gru_and_cpc_steps():
    torch.manual_seed(0)
    model = cpc_model(build_sentence_conv(SMALL))
    view = model.encoder.example_input(4)
    batch = Batch((view,), torch.arange(4))
    out = contrastive_loss(model(batch), InfoNCEConfig(negatives="batch"))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert set(out.metrics) >= {"acc/k1", "acc/k2", "acc/k3"}
    assert model.encoder.embedding.weight.grad.abs().sum() > 0


def test_paper_size_defaults():
    config = SentenceConvConfig()
    assert (config.vocab_size, config.embedding_dim, config.dim) == (20000, 620, 2400)


def tiny_bert(tmp_path):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    BertModel(config).save_pretrained(str(tmp_path / "bert"))
    return str(tmp_path / "bert")


def test_hf_sentence_encoder_from_a_local_directory(tmp_path):
    path = tiny_bert(tmp_path)
    encoder = build_hf_sentence_encoder(HFSentenceEncoderConfig(model=path, projection=8))
    assert encoder.output_dim == 8 and encoder.vocab_size == 60
    encoder.eval()  # no dropout: compare paddings exactly
    sentences = [[2, 5, 9, 3], [2, 7, 3]]
    z = encoder(window(sentences, 4))
    assert z.shape == (1, 2, 8)
    torch.testing.assert_close(encoder(window(sentences, 11)), z, atol=1e-5, rtol=0)
    encoder.train()
    model = cpc_model(encoder)
    out = contrastive_loss(model(Batch((encoder.example_input(3),), torch.arange(3))), InfoNCEConfig())
    out.loss.backward()
    assert any(p.grad is not None for p in encoder.model.parameters())
    with pytest.raises(UserError, match="tokenizer has 61 tokens"):
        encoder.check_vocabulary(61)


def test_hf_sentence_encoder_random_init_and_frozen(tmp_path):
    path = tiny_bert(tmp_path)
    loaded = build_hf_sentence_encoder(HFSentenceEncoderConfig(model=path))
    fresh = build_hf_sentence_encoder(HFSentenceEncoderConfig(model=path, pretrained=False, freeze=True))
    assert not any(p.requires_grad for p in fresh.model.parameters())
    a = loaded.model.embeddings.word_embeddings.weight
    b = fresh.model.embeddings.word_embeddings.weight
    assert a.shape == b.shape and not torch.equal(a, b)
    with pytest.raises(UserError, match="cannot load"):
        build_hf_sentence_encoder(HFSentenceEncoderConfig(model=str(tmp_path / "missing")))


def test_hf_sentence_encoder_from_scratch_settings():
    encoder = build_hf_sentence_encoder(HFSentenceEncoderConfig(vocab_size=40, hidden_size=8, num_layers=1,
                                                                num_heads=2, max_positions=16, pooling="first"))
    z = encoder(encoder.example_input(2))
    assert z.shape == (2, 4, 8)
    with pytest.raises(ValueError, match="divisible"):
        HFSentenceEncoderConfig(hidden_size=10, num_heads=4)
