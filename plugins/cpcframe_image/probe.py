"""``image_linear``: linear classification on frozen image features (the linear evaluation of
AMDIM, Bachman et al. 2019, and CPC v1 on ImageNet, van den Oord et al. 2018).

Features per image, from the view sampler's deterministic ``eval_view`` (resize and centre
crop, no augmentation):

* AMDIM (a multiscale encoder): the global ``"1"`` vector (``scale``), as the paper's
  linear classifier reads ``rkhs_1``;
* CPC patches (a grid): the ``(B, H, W, C)`` context (or latents, ``level``) mean-pooled
  over the grid.

The classifier (softmax regression, L-BFGS, standardised features) is trained on the
dataset's ``train`` split and scored on its ``test`` split (``image_folder`` without split
folders: a deterministic held-out share). Unlabelled items (class ``-1``, e.g. STL-10's
unlabelled part) are left out. With baselines the same is done for the random-init model.

Result: ``{"classification": {"amdim": acc, "random_init": acc}}`` (the trained model's
feature set is named after its family: ``amdim``, or ``cpc`` for other encoders).
The probe also writes ``probe_image_details.json`` and, for AMDIM, matching-score
pictures (``pictures/match_XXX.png``, see :mod:`cpcframe_image.amdim.pictures`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor

from cpcframe import Probe, ProbeHarness, ProbeOptions, UserError, mean_pool, validators


@attrs.frozen(kw_only=True)
class ImageLinearConfig(ProbeOptions):
    """Options of ``image_linear``, beside the shared ones of :class:`cpcframe.ProbeOptions`.

    Attributes:
        scale: which map of a multiscale encoder to use (AMDIM's global ``"1"``).
        max_train, max_test: labelled images used per split (0 = all; a seeded subset).
        pictures: matching-score pictures to write (AMDIM only; 0 = none).
        picture_scale: the local map the pictures score against.
        feature_name: name of the trained model's feature set ("" = ``amdim`` for the
            ``amdim`` encoder, else ``cpc``).
    """

    scale: str = "1"
    batch_size: int = ProbeOptions.override("batch_size", 128)
    max_train: int = attrs.field(default=0, validator=validators.non_negative)
    max_test: int = attrs.field(default=0, validator=validators.non_negative)
    pictures: int = attrs.field(default=8, validator=validators.non_negative)
    picture_scale: str = "7"
    feature_name: str = ""


def pooled(features: Any, scale: str) -> Tensor:
    """``(B, D)`` from a ``{scale: (B, h, w, D)}`` mapping (its ``scale`` map) or a
    ``(B, H, W, D)`` / ``(B, T, D)`` tensor, mean-pooled over locations."""
    if isinstance(features, Mapping) and scale not in features:
        raise UserError(f"image_linear: probe.scale = {scale!r} is not one of the encoder's {sorted(features)}")
    return mean_pool((features[scale] if isinstance(features, Mapping) else features).float())


class ImageLinearProbe(Probe):
    """Linear classification of frozen features, train split -> test split."""

    config: ImageLinearConfig

    @staticmethod
    def labelled(dataset, limit: int, seed: int) -> list[int]:
        """Indices of labelled items (at most ``limit``, a seeded subset, in order)."""
        targets = getattr(dataset, "targets", None)
        if targets is None:
            targets = [dataset[i].labels for i in range(len(dataset))]
        idx = [i for i, t in enumerate(targets) if t is not None and int(t) >= 0]
        if limit and len(idx) > limit:
            idx = sorted(np.random.default_rng(seed).choice(idx, size=limit, replace=False).tolist())
        return idx

    def views(self, dataset, indices: list[int], sampler, labels: list[int]):
        """Batches ``(B, C, H, W)`` of the ``eval_view`` of ``indices`` (each image read
        once); their classes are appended to ``labels``."""
        for start in range(0, len(indices), self.config.batch_size):
            examples = [dataset[i] for i in indices[start: start + self.config.batch_size]]
            labels.extend(int(ex.labels) for ex in examples)
            yield torch.stack([sampler.eval_view(ex) for ex in examples])

    def run(self, model, harness: ProbeHarness) -> dict[str, dict[str, float]]:
        cfg, sampler = self.config, harness.view_sampler()
        if not hasattr(sampler, "eval_view"):
            raise UserError(f"image_linear: the view sampler {harness.recipe.data.views.name!r} has no "
                            "deterministic eval_view(); use amdim_views or image_patches")
        train, test = harness.dataset("train"), harness.dataset("test")
        train_idx = self.labelled(train, cfg.max_train, harness.seed)
        test_idx = self.labelled(test, cfg.max_test, harness.seed + 1)
        if not train_idx or not test_idx:
            raise UserError(f"image_linear: need labelled images in both splits; found {len(train_idx)} in "
                            f"'train' and {len(test_idx)} in 'test' (STL-10: use train_split "
                            "\"train+unlabeled\" or \"train\")")
        name = cfg.feature_name or ("amdim" if harness.recipe.model.encoder.name == "amdim" else "cpc")
        models = harness.feature_models(model, name)
        pool = lambda features: pooled(features, cfg.scale)  # noqa: E731
        with harness.eval_mode(*models.values()):
            ytr, yte = [], []
            xtr = harness.encode(models, self.views(train, train_idx, sampler, ytr), pool)
            xte = harness.encode(models, self.views(test, test_idx, sampler, yte), pool)
            ytr, yte = torch.tensor(ytr, dtype=torch.long), torch.tensor(yte, dtype=torch.long)
            classes = max(len(getattr(train, "classes", []) or []), int(ytr.max()) + 1, int(yte.max()) + 1)
            details: dict[str, Any] = {
                "train_images": len(train_idx), "test_images": len(test_idx), "level": cfg.level,
                "scale": cfg.scale, "feature_dim": int(xtr[name].shape[1]), "classes": classes,
                "chance": float(torch.bincount(yte, minlength=classes).max()) / len(yte)}
            results = harness.score(xtr, ytr, xte, yte, num_classes=classes, details=details)
            details["pictures"] = [str(p) for p in self.pictures(model, test, test_idx, sampler, harness)]
        harness.write_details(details, "image")
        return {"classification": results}

    def pictures(self, model, dataset, indices: list[int], sampler, harness: ProbeHarness) -> list:
        """AMDIM's matching-score maps for the first ``pictures`` test images (when the
        model is multiscale, the sampler makes two views and there is a run directory)."""
        from cpcframe_image.amdim.pictures import save_match_maps

        cfg = self.config
        folder = harness.artifact("pictures")
        if not cfg.pictures or folder is None or getattr(sampler, "num_views", 1) != 2:
            return []
        examples = [dataset[i] for i in indices[: cfg.pictures]]
        try:
            return save_match_maps(model, examples, sampler, folder, harness.device,
                                   seed=harness.seed, scale=cfg.picture_scale)
        except ValueError as exc:  # not a multiscale encoder: no matching scores to show
            warnings.warn(f"image_linear: no pictures: {exc}", stacklevel=2)
            return []


def build_image_linear(config: ImageLinearConfig) -> ImageLinearProbe:
    """Linear classification on frozen global (AMDIM) or pooled patch (CPC) features."""
    return ImageLinearProbe(config)
