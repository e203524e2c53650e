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

import json
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import numpy as np
import torch
from torch import Tensor

from cpcframe import Probe, ProbeContext, UserError
from cpcframe.config.validators import non_negative, positive
from cpcframe.probing.mlp import MLPProbeConfig
from cpcframe.probing.classifiers import classifiers_validator, fit_probe_classifier, result_name


@attrs.frozen
class ImageLinearConfig:
    """Options of ``image_linear``.

    Attributes:
        level: ``context`` or ``latent`` features (the same for AMDIM's identity context).
        scale: which map of a multiscale encoder to use (AMDIM's global ``"1"``).
        baselines: also score a random-init model of the same architecture.
        batch_size: images per forward pass.
        max_train, max_test: labelled images used per split (0 = all; a seeded subset).
        max_iter: L-BFGS iterations of the linear classifier.
        l2: L2 weight of the linear classifier.
        classifiers: ``linear`` and/or ``mlp`` (AMDIM's second protocol: one hidden layer
            of 1024 units); the MLP's results are named ``<features>_mlp``.
        mlp: the MLP's options (:class:`cpcframe.probing.mlp.MLPProbeConfig`).
        pictures: matching-score pictures to write (AMDIM only; 0 = none).
        picture_scale: the local map the pictures score against.
        feature_name: name of the trained model's feature set ("" = ``amdim`` for the
            ``amdim`` encoder, else ``cpc``).
    """

    level: Literal["context", "latent"] = attrs.field(
        default="context", validator=attrs.validators.in_(("context", "latent")))
    scale: str = "1"
    baselines: bool = False
    batch_size: int = attrs.field(default=128, validator=positive)
    max_train: int = attrs.field(default=0, validator=non_negative)
    max_test: int = attrs.field(default=0, validator=non_negative)
    max_iter: int = attrs.field(default=200, validator=positive)
    l2: float = attrs.field(default=1e-4, validator=non_negative)
    classifiers: tuple[str, ...] = attrs.field(default=("linear",), validator=classifiers_validator)
    mlp: MLPProbeConfig = MLPProbeConfig()
    pictures: int = attrs.field(default=8, validator=non_negative)
    picture_scale: str = "7"
    feature_name: str = ""


def pooled(features: Any, scale: str) -> Tensor:
    """``(B, D)`` from a ``{scale: (B, h, w, D)}`` mapping (its ``scale`` map) or a
    ``(B, H, W, D)`` / ``(B, T, D)`` tensor, mean-pooled over locations."""
    if isinstance(features, Mapping):
        if scale not in features:
            raise UserError(f"image_linear: probe.scale = {scale!r} is not one of the encoder's scales "
                            f"{sorted(features)}")
        features = features[scale]
    f = features.float()
    return f.mean(dim=tuple(range(1, f.dim() - 1))) if f.dim() > 2 else f


class ImageLinearProbe(Probe):
    """Linear classification of frozen features, train split -> test split."""

    def __init__(self, config: ImageLinearConfig = ImageLinearConfig()):
        self.config = config

    # ---- data ---------------------------------------------------------------------
    @staticmethod
    def datasets(context: ProbeContext):
        from cpcframe.build import build_dataset, build_view_sampler
        from cpcframe.plugins import default_registry

        recipe, registry = context.recipe, default_registry()
        sampler = build_view_sampler(recipe, registry)
        if not hasattr(sampler, "eval_view"):
            raise UserError(f"image_linear: the view sampler {recipe.data.views.name!r} has no deterministic "
                            "eval_view(); use amdim_views or image_patches")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # training already reported the data's problems
            train, test = (build_dataset(recipe, registry, split=split, run_dir=context.run_dir,
                                         view_sampler=sampler) for split in ("train", "test"))
        return sampler, train, test

    @staticmethod
    def labelled(dataset, limit: int, seed: int) -> list[int]:
        """Indices of labelled items (at most ``limit``, a seeded subset, in order)."""
        targets = getattr(dataset, "targets", None)
        if targets is None:
            targets = [dataset[i].labels for i in range(len(dataset))]
        idx = [i for i, t in enumerate(targets) if t is not None and int(t) >= 0]
        if limit and len(idx) > limit:
            rng = np.random.default_rng(seed)
            idx = sorted(rng.choice(idx, size=limit, replace=False).tolist())
        return idx

    # ---- features -------------------------------------------------------------------
    def encode(self, models: dict, dataset, indices: list[int], sampler, device) -> tuple[dict[str, Tensor], Tensor]:
        """``{name: (N, D)}`` pooled features of every model and ``(N,)`` classes of
        ``indices``; each image is read and turned into its view once for all models."""
        cfg = self.config
        feats: dict[str, list[Tensor]] = {name: [] for name in models}
        labels: list[int] = []
        for start in range(0, len(indices), cfg.batch_size):
            examples = [dataset[i] for i in indices[start: start + cfg.batch_size]]
            views = torch.stack([sampler.eval_view(ex) for ex in examples]).to(device)
            for name, m in models.items():
                feats[name].append(pooled(m.encode(views, level=cfg.level), cfg.scale).cpu())
            labels.extend(int(ex.labels) for ex in examples)
        return {name: torch.cat(f) for name, f in feats.items()}, torch.tensor(labels, dtype=torch.long)

    # ---- entry point -------------------------------------------------------------------
    def run(self, model, context: ProbeContext) -> dict[str, dict[str, float]]:
        cfg = self.config
        sampler, train, test = self.datasets(context)
        train_idx = self.labelled(train, cfg.max_train, context.seed)
        test_idx = self.labelled(test, cfg.max_test, context.seed + 1)
        if not train_idx or not test_idx:
            raise UserError(f"image_linear: need labelled images in both splits; found {len(train_idx)} in "
                            f"'train' and {len(test_idx)} in 'test' (STL-10: use train_split "
                            "\"train+unlabeled\" or \"train\")")
        name = cfg.feature_name or ("amdim" if context.recipe.model.encoder.name == "amdim" else "cpc")
        models = {name: model}
        if context.baselines and context.random_model is not None:
            models["random_init"] = context.random_model
        details: dict[str, Any] = {"train_images": len(train_idx), "test_images": len(test_idx),
                                   "level": cfg.level, "scale": cfg.scale}
        results: dict[str, float] = {}
        modes = {id(m): m.training for m in models.values()}
        try:
            for m in models.values():
                m.eval()
            xtr, ytr = self.encode(models, train, train_idx, sampler, context.device)
            xte, yte = self.encode(models, test, test_idx, sampler, context.device)
            classes = max(len(getattr(train, "classes", []) or []), int(ytr.max()) + 1, int(yte.max()) + 1)
            details["feature_dim"] = int(xtr[name].shape[1])
            details["classes"] = classes
            details["chance"] = float(torch.bincount(yte, minlength=classes).max()) / len(yte)
            for feature_set in models:
                for kind in cfg.classifiers:
                    clf = fit_probe_classifier(kind, xtr[feature_set], ytr, classes, l2=cfg.l2,
                                               iterations=cfg.max_iter, mlp=cfg.mlp, seed=context.seed)
                    label = result_name(feature_set, kind)
                    results[label] = clf.accuracy(xte[feature_set], yte)
                    details[f"{label}_train_accuracy"] = clf.accuracy(xtr[feature_set], ytr)
            details["pictures"] = [str(p) for p in self.pictures(model, test, test_idx, sampler, context)]
        finally:
            for m in models.values():
                m.train(modes[id(m)])
        if context.run_dir is not None and context.run_dir.is_dir():
            (context.run_dir / "probe_image_details.json").write_text(json.dumps(details, indent=2) + "\n")
        return {"classification": results}

    def pictures(self, model, dataset, indices: list[int], sampler, context: ProbeContext) -> list:
        """AMDIM's matching-score maps for the first ``pictures`` test images (when the
        model is multiscale, the sampler makes two views and there is a run directory)."""
        from cpcframe_image.amdim.pictures import save_match_maps

        cfg = self.config
        if not cfg.pictures or context.run_dir is None or getattr(sampler, "num_views", 1) != 2:
            return []
        examples = [dataset[i] for i in indices[: cfg.pictures]]
        try:
            return save_match_maps(model, examples, sampler, context.run_dir / "pictures", context.device,
                                   seed=context.seed, scale=cfg.picture_scale)
        except ValueError as exc:  # not a multiscale encoder: no matching scores to show
            warnings.warn(f"image_linear: no pictures: {exc}", stacklevel=2)
            return []


def build_image_linear(config: ImageLinearConfig) -> ImageLinearProbe:
    """Linear classification on frozen global (AMDIM) or pooled patch (CPC) features."""
    return ImageLinearProbe(config)
