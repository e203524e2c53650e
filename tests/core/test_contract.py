"""Every registered component, built from its defaults, keeps its interface's contract.

Encoders, context models and critics run forward and backward; every context model is
causal along its ``causal_axis`` (perturb the latents past ``t``: the context up to ``t``
stays the same; a deliberately leaky model below shows the check fails); every view
sampler's views are a function of its generator's seed (the same seed gives the same
views, whatever the global random state; other seeds give other views).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import cpcframe

from cpcframe.infonce import InfoNCEConfig, info_nce
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


# ---------------------------------------------------------------------------- causality

def tensors_of(features):
    return [features] if isinstance(features, torch.Tensor) else [features[k] for k in sorted(features)]


def perturbed_after(latents, axis: int, t: int, g: torch.Generator):
    """``latents`` with every index ``> t`` along ``axis`` replaced by other values."""
    def perturb(z):
        z = z.clone()
        future = z.narrow(axis, t + 1, z.shape[axis] - t - 1)
        future.copy_(future + 3.0 * torch.randn(future.shape, generator=g, dtype=z.dtype))
        return z
    if isinstance(latents, torch.Tensor):
        return perturb(latents)
    return {k: perturb(v) for k, v in latents.items()}


def causality_leaks(model: cpcframe.ContextModel, latents) -> list[str]:
    """Where the context up to ``t`` changed when only latents past ``t`` changed, for
    every ``t`` along ``model.causal_axis`` (float64, eval mode: no dropout, and rounding
    cannot hide a small leak)."""
    axis = model.causal_axis
    model = model.double().eval()
    latents = {k: v.detach().double() for k, v in latents.items()} if isinstance(latents, dict) \
        else latents.detach().double()
    length = tensors_of(latents)[0].shape[axis]
    g = torch.Generator().manual_seed(0)
    leaks = []
    with torch.no_grad():
        base = tensors_of(model(latents))
        for t in range(length - 1):
            changed = tensors_of(model(perturbed_after(latents, axis, t, g)))
            for i, (a, b) in enumerate(zip(base, changed)):
                past_a, past_b = a.narrow(axis, 0, t + 1), b.narrow(axis, 0, t + 1)
                diff = float((past_a - past_b).abs().max())
                if diff > 1e-9 * max(1.0, float(past_a.abs().max())):
                    leaks.append(f"output {i} at index <= {t} along axis {axis} changed by {diff:.3g}")
    return leaks


def assert_causal(model: cpcframe.ContextModel, latents) -> None:
    leaks = causality_leaks(model, latents)
    assert not leaks, f"{type(model).__name__} is not causal: " + "; ".join(leaks[:3])


@pytest.mark.parametrize("component", components("context_model"))
def test_context_model_is_causal(component):
    torch.manual_seed(0)
    model = component.build(input_dim=8)
    assert isinstance(model.causal_axis, int) and model.causal_axis >= 1  # never the batch axis
    latents = model.example_input(2)
    assert tensors_of(latents)[0].shape[model.causal_axis] >= 3, "example_input too short to test causality"
    assert_causal(model, latents)


class LeakyGRU(cpcframe.ContextModel):
    """Bidirectional: c_t sees every z, future included."""

    def __init__(self, input_dim: int = 8):
        super().__init__()
        self.rnn = nn.GRU(input_dim, 4, batch_first=True, bidirectional=True)
        self.output_dim = 8

    def forward(self, latents):
        return self.rnn(latents)[0]


class OneStepAhead(cpcframe.ContextModel):
    """A centred kernel of 3 over time: c_t sees z_{t+1}."""

    def __init__(self, input_dim: int = 8):
        super().__init__()
        self.conv = nn.Conv1d(input_dim, 6, 3, padding=1)
        self.output_dim = 6

    def forward(self, latents):
        return self.conv(latents.transpose(1, 2)).transpose(1, 2)


class RowBelow(cpcframe.ContextModel):
    """A grid model whose row i sees row i + 1 (a 3x1 kernel centred on the row)."""

    def __init__(self, input_dim: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(input_dim, 6, (3, 1), padding=(1, 0))
        self.output_dim = 6

    def forward(self, latents):
        return self.conv(latents.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class ColumnMixing(RowBelow):
    """Row-causal (a 1x3 kernel), mixing columns of the same row: allowed."""

    def __init__(self, input_dim: int = 8):
        super().__init__(input_dim)
        self.conv = nn.Conv2d(input_dim, 6, (1, 3), padding=(0, 1))


@pytest.mark.parametrize("model, latents", [
    (LeakyGRU(), torch.randn(2, 12, 8)),
    (OneStepAhead(), torch.randn(2, 12, 8)),
    (RowBelow(), torch.randn(2, 5, 4, 8)),
], ids=["bidirectional", "one-step-ahead", "grid-row-below"])
def test_the_causality_check_fails_for_a_leaky_model(model, latents):
    torch.manual_seed(0)
    with pytest.raises(AssertionError, match="is not causal"):
        assert_causal(model, latents)
    leaks = causality_leaks(model, latents)
    assert any(f"index <= {latents.shape[1] - 2} " in leak for leak in leaks)  # seen at every t


def test_the_causality_check_passes_a_row_causal_grid_model():
    torch.manual_seed(0)
    assert_causal(ColumnMixing(), torch.randn(2, 5, 4, 8))
    # The same model is not causal along the columns, and the check sees that.
    model = ColumnMixing()
    model.causal_axis = 2
    assert causality_leaks(model, torch.randn(2, 5, 4, 8))


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
    # Every contrast also runs with negatives shared by its query groups.
    shared = InfoNCEConfig(num_negatives=2, share_negatives=True)
    assert all(torch.isfinite(info_nce(c, shared).loss) for c in critic(latents, contexts, batch))


@pytest.mark.parametrize("component", components("critic"))
def test_critic_query_groups_predict_from_one_context(component):
    """A query group (``Contrast.query_group``, whose queries may share negatives) is the
    queries of one context location: group 1's queries reach one location per item."""
    torch.manual_seed(0)
    try:
        critic = component.build(latent_dim=8, context_dim=6)
    except ValueError:
        critic = component.build(latent_dim=8, context_dim=8)
    critic.eval()  # no dropout between the context and the queries
    latents, contexts, batch = critic.example_input(2)
    contexts = [c.detach().requires_grad_() if isinstance(c, torch.Tensor) else c for c in contexts]
    for contrast in critic(latents, contexts, batch):
        G = contrast.query_group
        if G == 1:
            continue
        assert isinstance(contexts[0], torch.Tensor), "a critic with query groups reads one context tensor"
        (grad,) = torch.autograd.grad(contrast.queries[:, G:2 * G].sum(), contexts[0], retain_graph=True)
        reached = grad.abs().flatten(1, -2).sum(-1) > 0  # (B, locations)
        assert reached.sum(1).tolist() == [1] * reached.shape[0], component.name


def flat_views(views):
    return [t for v in views for t in ([v] if isinstance(v, torch.Tensor) else [v[k] for k in sorted(v)])]


def same_views(a, b) -> bool:
    a, b = flat_views(a), flat_views(b)
    return len(a) == len(b) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b))


def draw(sampler, example, seed: int, global_seed: int):
    """Views from a generator seeded ``seed``, with the global random state (torch,
    Python, NumPy) set to ``global_seed``: only the generator may decide the views."""
    torch.manual_seed(global_seed)
    random.seed(global_seed)
    np.random.seed(global_seed)
    return sampler.sample(example, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("component", components("view_sampler"))
def test_view_sampler_contract(component):
    sampler = component.build()
    example = sampler.example()
    first = draw(sampler, example, seed=0, global_seed=1)
    assert len(first) == sampler.num_views
    # The same seed gives the same views, whatever the global random state.
    assert same_views(first, draw(sampler, example, seed=0, global_seed=2)), "not seeded by the generator alone"
    # The views depend on the seed: some other seed gives other views.
    others = [draw(sampler, example, seed=s, global_seed=1) for s in range(1, 9)]
    assert not all(same_views(first, o) for o in others), "the views do not depend on the generator's seed"
    batch = sampler.collate([first, others[0]])
    assert len(batch) == sampler.num_views
    for t in flat_views(batch):
        assert t.shape[0] == 2
