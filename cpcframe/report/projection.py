"""2-D maps of feature vectors: UMAP, t-SNE, or PCA when neither is installed.

UMAP (``umap-learn``) and t-SNE (scikit-learn) keep neighbourhoods and show clusters
best; they are optional (``pip install cpcframe[report]``). PCA needs nothing beyond
torch, keeps the directions of largest variance and is exact and fast: a fair first look
(two components of a 256-dimensional context seldom separate 40 phones, the nonlinear
maps often do). The page says which method drew a map.
"""

from __future__ import annotations

import importlib.util

import attrs
import numpy as np

from cpcframe.errors import UserError

METHODS = ("auto", "umap", "tsne", "pca")
_PACKAGE = {"umap": ("umap", "umap-learn"), "tsne": ("sklearn", "scikit-learn")}


@attrs.frozen
class Projection:
    """``points``: ``(N, 2)`` coordinates; ``method``: what drew them, in words."""

    points: np.ndarray
    method: str


def available(method: str) -> bool:
    """Whether ``method``'s package can be imported (PCA always can)."""
    return method == "pca" or importlib.util.find_spec(_PACKAGE[method][0]) is not None


def resolve_method(method: str) -> str:
    """``auto`` -> the first available of UMAP, t-SNE, PCA; a named one must be installed."""
    if method not in METHODS:
        raise UserError(f"unknown feature map method {method!r}; choose from {', '.join(METHODS)}")
    if method == "auto":
        return next(m for m in ("umap", "tsne", "pca") if available(m))
    if not available(method):
        module, package = _PACKAGE[method]
        raise UserError(f"feature map method {method!r} needs {package} (pip install cpcframe[report])")
    return method


def standardize(x: np.ndarray) -> np.ndarray:
    """``(N, D)`` -> zero mean, unit variance per dimension (constant dimensions stay 0)."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, float]:
    """``(N, D)`` -> ``(N, 2)`` scores on the first two principal axes and the share of
    variance they explain. Signs are fixed (largest loading positive) so maps are stable."""
    import torch

    xc = torch.from_numpy(np.asarray(x, dtype=np.float64))
    xc = xc - xc.mean(dim=0)
    _, s, vh = torch.linalg.svd(xc, full_matrices=False)  # xc = U diag(s) Vh
    axes = vh[:2]  # (2, D)
    signs = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))
    axes = axes * torch.where(signs == 0, 1.0, signs)
    points = (xc @ axes.T).numpy()
    if points.shape[1] < 2:  # a single feature dimension
        points = np.concatenate([points, np.zeros((len(points), 2 - points.shape[1]))], axis=1)
    total = float((s ** 2).sum())
    return points, float((s[:2] ** 2).sum()) / total if total > 0 else 0.0


def project(features: np.ndarray, method: str = "auto", seed: int = 0) -> Projection:
    """A 2-D map of ``(N, D)`` features (standardised first); see the module docstring."""
    method = resolve_method(method)
    x = standardize(features)
    n = len(x)
    if method == "umap":
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, n - 1)), random_state=seed)
        return Projection(np.asarray(reducer.fit_transform(x)), "UMAP (umap-learn)")
    if method == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, perplexity=max(2.0, min(30.0, (n - 1) / 3)), init="pca",
                    random_state=seed)
        return Projection(tsne.fit_transform(x), "t-SNE (scikit-learn)")
    points, explained = pca_2d(x)
    note = "" if available("umap") or available("tsne") else \
        "; install umap-learn or scikit-learn (pip install cpcframe[report]) for UMAP or t-SNE"
    return Projection(points, f"PCA (first two components, {100 * explained:.0f}% of the variance{note})")
