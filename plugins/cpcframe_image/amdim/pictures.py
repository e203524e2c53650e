"""Matching-score maps: where in one view does an image's global feature find itself?

For an image, two augmented views are encoded; the global vector ``phi_1(f_1(x1))`` of
view 1 is scored against every location of view 2's local map ``phi_7(f_7(x2))``
(``s_ij = <phi_1, phi_7_ij> / sqrt(n_rkhs)``, AMDIM's matching score, eq. 3 and figure 3
of Bachman et al. 2019). The map is upsampled over view 2 (location ``(i, j)`` drawn over
the ``(i, j)``-th cell of a uniform grid: a simplification, the receptive fields overlap).

Files: ``RUN_DIR/pictures/match_000.png``, ... (matplotlib's Agg canvas, no display needed).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from cpcframe import Example
from cpcframe_image.augment import denormalize


@torch.no_grad()
def match_scores(model, view1: Tensor, view2: Tensor, scale: str = "7") -> Tensor:
    """``(B, h, w)`` scores of view 1's global feature against view 2's ``scale`` map."""
    B = view1.shape[0]
    feats = model.encode(torch.cat([view1, view2]), level="latent")
    if not isinstance(feats, dict) or "1" not in feats or scale not in feats:
        raise ValueError(f"matching-score maps need a multiscale encoder with scales '1' and {scale!r}")
    glob = feats["1"][:B].reshape(B, -1)  # (b, d)
    local = feats[scale][B:]  # (b, h, w, d)
    return torch.einsum("bd,bhwd->bhw", glob, local) / math.sqrt(glob.shape[1])


def _image(view: Tensor, mean, std):
    return denormalize(view.float().cpu(), mean, std).permute(1, 2, 0).numpy()


def save_match_maps(model, examples: list[Example], sampler, out_dir: Path, device: torch.device,
                    seed: int = 0, scale: str = "7") -> list[Path]:
    """Write one PNG per example: view 1, view 2, and view 2 under its matching-score map.

    ``sampler`` is the run's ``amdim_views`` sampler (its augmentations make the views,
    from a generator seeded by ``seed`` and the example's position).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not examples:
        return []
    views = [sampler.sample(ex, torch.Generator().manual_seed(seed * 1000003 + i)) for i, ex in enumerate(examples)]
    v1 = torch.stack([v[0] for v in views]).to(device)
    v2 = torch.stack([v[1] for v in views]).to(device)
    scores = match_scores(model, v1, v2, scale).float().cpu()  # (B, h, w)
    S = v2.shape[-1]
    h, w = scores.shape[1:]
    upsampled = F.interpolate(scores[:, None], size=(S, S), mode="bilinear", align_corners=False)[:, 0]
    mean, std = sampler.config.mean, sampler.config.std
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ex in enumerate(examples):
        fig = Figure(figsize=(7.5, 2.8), dpi=100)
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 3)
        axes[0].imshow(_image(v1[i], mean, std))
        axes[0].set_title("view 1 (global feature)", fontsize=8)
        axes[1].imshow(_image(v2[i], mean, std))
        axes[1].set_title("view 2", fontsize=8)
        axes[2].imshow(_image(v2[i], mean, std))
        shown = axes[2].imshow(upsampled[i].numpy(), cmap="inferno", alpha=0.6)
        axes[2].set_title(f"scores over view 2's {h}x{w} map '{scale}'", fontsize=8)
        fig.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.04)
        for ax in axes:
            ax.set_axis_off()
        fig.suptitle(f"{ex.key or f'image {i}'}", fontsize=8)
        path = out_dir / f"match_{i:03d}.png"
        fig.savefig(path)
        paths.append(path)
    return paths
