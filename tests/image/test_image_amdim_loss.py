"""The engine on the ``amdim`` critic's contrasts equals AMDIM's own loss formula.

The reference (``benchmarks/amdim_public_loss.py``, also the stand-in of the AMDIM step
benchmark) re-implements ``NCE_MI_MULTI._model_scores`` and ``LossMultiNCE`` of
the public AMDIM code (github.com/Philip-Bachman/amdim-public, ``costs.py``) in plain
tensor code on channels-first maps, with the public code's mask tricks (positives masked
into the negative set at ``-tclip`` and excluded by ``mask_neg``), the random 5x5 source
location of ``_sample_src_ftr`` and the loss AMDIM optimises:
``loss_1t5 + loss_1t7 + loss_5t5 + lgt_reg``.
"""

from __future__ import annotations

import sys

import pytest
import torch

from cpcframe import Batch, InfoNCEConfig
from cpcframe.infonce import info_nce
from cpcframe.model import contrastive_loss
from cpcframe_image.amdim.critics import AmdimCritic, AmdimCriticConfig
from cpcframe_image.amdim.encoders import AmdimEncoder, AmdimEncoderConfig

from testpaths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from amdim_public_loss import TCLIP, ref_loss as amdim_loss, tanh_clip  # noqa: E402

def encoded_views(batch_size=6, seed=0):
    """Real encoder maps of two batches of random images (a small AMDIM encoder)."""
    torch.manual_seed(seed)
    encoder = AmdimEncoder(AmdimEncoderConfig(image_size=32, ndf=8, n_rkhs=32, n_depth=2))
    x = torch.randn(2 * batch_size, 3, 32, 32)
    maps = encoder(x)
    # Leaf copies (channels-last) so both computations get gradients w.r.t. the same tensors.
    views = [{k: v[i * batch_size:(i + 1) * batch_size].detach().clone().requires_grad_() for k, v in maps.items()}
             for i in (0, 1)]
    return views, Batch(views=(x[:batch_size], x[batch_size:]), groups=torch.zeros(batch_size, dtype=torch.long))


def channels_first(view):
    return [view[k].permute(0, 3, 1, 2) for k in ("1", "5", "7")]


@pytest.mark.parametrize("lam", [0.04, 0.05])
def test_engine_equals_amdim_nce_mi_multi(lam):
    views, batch = encoded_views()
    critic = AmdimCritic(AmdimCriticConfig(), latent_dim=32, context_dim=32)
    config = InfoNCEConfig(negatives="other_sequences", num_negatives=0, temperature=1.0,
                           clip=TCLIP, score_penalty=lam)
    torch.manual_seed(123)  # the 5->5 source locations
    ours = contrastive_loss(critic(views, views, batch), config).loss
    grads_ours = torch.autograd.grad(ours, [views[i][k] for i in (0, 1) for k in ("1", "5", "7")])

    torch.manual_seed(123)
    ref = amdim_loss(*channels_first(views[0]), *channels_first(views[1]), lam)
    grads_ref = torch.autograd.grad(ref, [views[i][k] for i in (0, 1) for k in ("1", "5", "7")])

    assert torch.isfinite(ref) and ref.item() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    for g_ours, g_ref in zip(grads_ours, grads_ref):
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-6)


def test_five_to_five_samples_one_location_per_image():
    views, batch = encoded_views(batch_size=4)
    critic = AmdimCritic(AmdimCriticConfig(pairs=("5t5",)), latent_dim=32, context_dim=32)
    torch.manual_seed(5)
    sources = critic.sources(views)
    torch.manual_seed(5)
    loc = torch.randint(0, 25, (4,))
    flat = views[0]["5"].reshape(4, 25, 32)
    torch.testing.assert_close(sources[("5", 0)], flat[torch.arange(4), loc])
    contrasts = critic(views, views, batch)
    assert [c.name for c in contrasts] == ["5t5_12", "5t5_21"]
    assert all(c.queries.shape == (4, 1, 32) and c.positives.shape == (1, 25) for c in contrasts)
    assert all(c.weight == 0.5 for c in contrasts)


def test_temperature_instead_of_critic_scaling_gives_the_same_loss():
    """Scaling in the critic (default) or with [loss] temperature = sqrt(n_rkhs) is the same."""
    views, batch = encoded_views()
    scaled = AmdimCritic(AmdimCriticConfig(pairs=("1t5", "1t7")), 32, 32)
    raw = AmdimCritic(AmdimCriticConfig(pairs=("1t5", "1t7"), scale_scores=False), 32, 32)
    base = dict(negatives="other_sequences", clip=TCLIP, score_penalty=0.05)
    a = contrastive_loss(scaled(views, views, batch), InfoNCEConfig(**base)).loss
    b = contrastive_loss(raw(views, views, batch), InfoNCEConfig(**base, temperature=32 ** 0.5)).loss
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ---- mixture-based representation (AMDIM section 3.4) ----------------------------------

def mixture_reference(queries, keys, alpha, lam):
    """Plain NCE terms per head and location, combined as -α·log Σ_heads exp(-ℓ/α).

    queries (B, k, D) already scaled; keys (B, L, D). Negatives: every location of every
    other image; scores clipped with tanh after the penalty is taken."""
    B, k, _ = queries.shape
    L = keys.shape[1]
    raw = torch.einsum("bkd,nld->bknl", queries, keys)  # (b, head, n: key image, l)
    penalty = lam * raw.pow(2).mean()
    s = tanh_clip(raw, TCLIP)
    own = torch.eye(B, dtype=torch.bool)[:, None, :, None].expand(B, k, B, L)
    pos = s[own].view(B, k, L)  # (b, head, l): own image's locations
    neg = s[~own].view(B, k, (B - 1) * L)
    neg_lse = torch.logsumexp(neg, dim=-1, keepdim=True)
    terms = torch.logaddexp(pos, neg_lse) - pos  # (b, head, l)
    mixed = -alpha * torch.logsumexp(-terms / alpha, dim=1)  # (b, l)
    return mixed.mean() + penalty, terms


@pytest.mark.parametrize("alpha", [0.3, 1.0, 5.0])
def test_mixture_contrasts_equal_the_plain_mixture_objective(alpha):
    views, batch = encoded_views()
    torch.manual_seed(0)
    critic = AmdimCritic(AmdimCriticConfig(pairs=("1t5", "1t7"), mixture_heads=3, entropy_weight=alpha), 32, 32)
    config = InfoNCEConfig(negatives="other_sequences", clip=TCLIP, score_penalty=0.05)
    contrasts = critic(views, views, batch)
    assert all(c.mixture == alpha and c.queries.shape[1] == 3 for c in contrasts)
    ours = contrastive_loss(contrasts, config).loss
    ref = 0.0
    for src, trg in (("1", "5"), ("1", "7")):
        for a, b in ((0, 1), (1, 0)):
            q = critic.heads(views[a][src].reshape(6, 32)) * critic.scale
            value, _ = mixture_reference(q, views[b][trg].reshape(6, -1, 32), alpha, 0.05)
            ref = ref + 0.5 * value
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    ours.backward()
    assert critic.heads.w1.grad is not None and critic.heads.w1.grad.abs().sum() > 0


def test_mixture_loss_is_below_every_heads_own_loss_and_tends_to_the_best_head():
    """-α·logsumexp(-ℓ/α) <= min_j ℓ_j, and -> min_j ℓ_j as α -> 0 (q picks the best head)."""
    views, batch = encoded_views()
    torch.manual_seed(0)
    for alpha, close in ((1.0, False), (1e-3, True)):
        critic = AmdimCritic(AmdimCriticConfig(pairs=("1t7",), mixture_heads=4, entropy_weight=alpha), 32, 32)
        contrast = critic(views, views, batch)[0]
        mixed = info_nce(contrast, InfoNCEConfig(negatives="other_sequences", clip=TCLIP)).loss
        q = critic.heads(views[0]["1"].reshape(6, 32)) * critic.scale
        _, terms = mixture_reference(q, views[1]["7"].reshape(6, -1, 32), alpha, 0.0)
        best = terms.min(dim=1).values.mean()
        assert mixed <= best + 1e-5
        assert mixed < terms.mean()
        if close:
            torch.testing.assert_close(mixed, best, rtol=1e-3, atol=1e-3)
