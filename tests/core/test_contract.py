"""Every registered model component, built from its defaults, runs forward and backward."""

from __future__ import annotations

import pytest
import torch

from cpcframe.infonce import info_nce
from cpcframe.plugins import default_registry

REGISTRY = default_registry()


def components(kind):
    return [pytest.param(c, id=f"{c.plugin}:{c.name}") for c in REGISTRY if c.kind == kind]


def backward_through(features):
    tensors = [features] if isinstance(features, torch.Tensor) else list(features.values())
    total = sum(t.float().sum() for t in tensors)
    total.backward()


def has_grad(module):
    params = [p for p in module.parameters() if p.requires_grad]
    return not params or any(p.grad is not None and torch.isfinite(p.grad).all() for p in params)


@pytest.mark.parametrize("component", components("encoder"))
def test_encoder_contract(component):
    torch.manual_seed(0)
    encoder = component.build()
    assert isinstance(encoder.output_dim, int) and encoder.output_dim > 0
    features = encoder(encoder.example_input(2))
    maps = [features] if isinstance(features, torch.Tensor) else list(features.values())
    for z in maps:
        assert z.shape[0] == 2 and z.shape[-1] == encoder.output_dim, z.shape
        assert torch.isfinite(z).all()
    backward_through(features)
    assert has_grad(encoder)


@pytest.mark.parametrize("component", components("context_model"))
def test_context_model_contract(component):
    torch.manual_seed(0)
    model = component.build(input_dim=8)
    latents = model.example_input(2)
    out = model(latents)
    maps = [out] if isinstance(out, torch.Tensor) else list(out.values())
    for c in maps:
        assert c.shape[0] == 2 and c.shape[-1] == model.output_dim
    backward_through(out)
    assert has_grad(model)


@pytest.mark.parametrize("component", components("critic"))
def test_critic_contract(component):
    torch.manual_seed(0)
    try:
        critic = component.build(latent_dim=8, context_dim=6)
    except ValueError as exc:
        # A critic that compares context and latent vectors directly (AMDIM) may require
        # equal sizes, but must say so eagerly, naming both.
        assert "latent_dim=8" in str(exc) and "context_dim=6" in str(exc), exc
        critic = component.build(latent_dim=8, context_dim=8)
    latents, contexts, batch = critic.example_input(4)
    contrasts = critic(latents, contexts, batch)
    assert contrasts
    loss = sum(c.weight * info_nce(c).loss for c in contrasts)
    assert torch.isfinite(loss)
    loss.backward()
    assert has_grad(critic)


@pytest.mark.parametrize("component", components("view_sampler"))
def test_view_sampler_contract(component):
    sampler = component.build()
    example = sampler.example()
    draws = [sampler.sample(example, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert len(draws[0]) == sampler.num_views
    batch = sampler.collate([draws[0], draws[2]])
    assert len(batch) == sampler.num_views

    def flat(views):
        return [t for v in views for t in ([v] if isinstance(v, torch.Tensor) else v.values())]

    assert all(torch.equal(a, b) for a, b in zip(flat(draws[0]), flat(draws[1]))), "not seeded by the generator"
    for t in flat(batch):
        assert t.shape[0] == 2
