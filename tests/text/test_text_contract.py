"""Every registered text component builds from its defaults (small sizes where the defaults
are the paper's) and runs forward and backward with the sequence plugin's gru and cpc_steps."""

from __future__ import annotations

import attrs
import pytest
import torch

from cpcframe import ContrastiveModel, DatasetRequest, Example, InfoNCEConfig
from cpcframe.batch import Batch
from cpcframe.model import contrastive_loss
from cpcframe.plugins import default_registry

from textdata import make_document

REGISTRY = default_registry()
TEXT = [c for c in REGISTRY if c.plugin == "text"]
# Paper-size defaults (2400-dim encoder, 20k vocabulary) shrunk for a fast test.
SMALL = {"sentence_conv": dict(vocab_size=300, embedding_dim=16, dim=32),
         "hf_sentence_encoder": dict(vocab_size=300, hidden_size=16, num_layers=1, num_heads=2, max_positions=64)}


def test_the_text_plugin_registers_its_components():
    names = {(c.kind, c.name) for c in TEXT}
    assert names == {("encoder", "sentence_conv"), ("encoder", "hf_sentence_encoder"),
                     ("view_sampler", "sentence_windows"), ("dataset", "text_files"),
                     ("dataset", "text_folder"), ("dataset", "hf_text"), ("dataset", "synthetic_text"),
                     ("probe", "sentence_classification")}
    assert all(c.config is not None and c.description for c in TEXT)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_encoder_forward_backward(name):
    component = REGISTRY.get("encoder", name)
    default = component.default_config()  # the defaults themselves must be valid
    torch.manual_seed(0)
    encoder = component.build(attrs.evolve(default, **SMALL[name]))
    context = REGISTRY.get("context_model", "gru").build(
        REGISTRY.get("context_model", "gru").config(hidden_size=24), input_dim=encoder.output_dim)
    critic = REGISTRY.get("critic", "cpc_steps").build(
        REGISTRY.get("critic", "cpc_steps").config(steps=3), latent_dim=encoder.output_dim, context_dim=24)
    model = ContrastiveModel(encoder, context, critic)
    view = encoder.example_input(3)
    z = encoder(view)
    assert z.shape == (3, view["ids"].shape[1], encoder.output_dim) and torch.isfinite(z).all()
    out = contrastive_loss(model(Batch((view,), torch.arange(3))), InfoNCEConfig(negatives="batch"))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    grads = {n: p.grad for n, p in encoder.named_parameters() if p.requires_grad}
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads.values()), \
        [n for n, g in grads.items() if g is None]


def test_view_sampler_defaults():
    component = REGISTRY.get("view_sampler", "sentence_windows")
    sampler = component.build()
    example = sampler.example()
    assert isinstance(example, Example) and len(example.data) >= sampler.min_length() == 8
    draws = [sampler.sample(example, torch.Generator().manual_seed(s)) for s in range(4)]
    (view,) = sampler.collate(draws)
    assert view["ids"].shape[:2] == (4, 8) and view["mask"].shape == view["ids"].shape


@pytest.mark.parametrize("name", ["text_files", "text_folder", "hf_text", "synthetic_text"])
def test_dataset_builds_with_defaults_and_feeds_the_model(tmp_path, name):
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(3):
        (root / f"d{i}.txt").write_text(make_document(i, 10))
    required = {"text_files": {"paths": [str(root / "*.txt")]}, "text_folder": {"root": str(root)},
                "synthetic_text": {"num_documents": 12}}
    if name == "hf_text":
        import datasets

        datasets.Dataset.from_dict({"text": [make_document(i, 10) for i in range(3)]}).save_to_disk(
            str(tmp_path / "hf"))
        required["hf_text"] = {"path": str(tmp_path / "hf")}
    component = REGISTRY.get("dataset", name)
    sampler = REGISTRY.get("view_sampler", "sentence_windows").build()
    dataset = component.build(component.config(**required[name]), request=DatasetRequest(
        cache_dir=tmp_path / "cache", min_length=sampler.min_length(), run_dir=tmp_path / "run"))
    assert len(dataset) == len(dataset.groups) > 0 and isinstance(dataset.skipped, dict)
    (view,) = sampler.collate([sampler.sample(dataset[i], torch.Generator().manual_seed(i))
                               for i in range(len(dataset))])
    encoder = REGISTRY.get("encoder", "sentence_conv").build(
        REGISTRY.get("encoder", "sentence_conv").config(vocab_size=dataset.vocab_size, embedding_dim=8, dim=8))
    dataset.check_model(ContrastiveModel(encoder, torch.nn.Identity(), torch.nn.Identity()))
    encoder(view).sum().backward()


def test_probe_builds_with_defaults():
    probe = REGISTRY.get("probe", "sentence_classification").build()
    assert probe.config.folds == 10 and probe.config.level == "latent"
