"""The probe harness: everything a probe needs besides its science.

A probe's ``run(model, harness)`` gets the run's data, the random-init twin, eval mode and
the scoring of every classifier its options name from one :class:`ProbeHarness`, so a
probe file holds only what it measures: which examples, which features, which labels.

Example (the inside of a probe's ``run``; ``views`` and ``labels`` are the probe's own)::

    train, test = harness.dataset("train"), harness.dataset("test")
    models = harness.feature_models(model)       # {"cpc": model, "random_init": twin}
    with harness.eval_mode(*models.values()):
        x = harness.encode(models, views(train))  # {"cpc": (N, D), "random_init": (N, D)}
        x_test = harness.encode(models, views(test))
    return {"my_task": harness.score(x, labels(train), x_test, labels(test))}
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from cpcframe.batch import View, view_to
from cpcframe.encoder import Features
from cpcframe.probing.classifiers import result_name
from cpcframe.probing.classifier import ProbeClassifier, accuracy
from cpcframe.probing.options import CLASSIFIER_KIND, ProbeOptions

if TYPE_CHECKING:
    from cpcframe.config.recipe import Recipe
    from cpcframe.model import ContrastiveModel
    from cpcframe.registry import Registry
    from cpcframe.views import ViewSampler


def mean_pool(features: Features) -> Tensor:
    """``(B, ..., D) -> (B, D)``: the mean over every location (time steps, grid cells)."""
    if not isinstance(features, Tensor):
        raise TypeError(f"mean_pool needs a (B, ..., D) tensor, got {type(features).__name__}; pass pool=")
    return features.mean(dim=tuple(range(1, features.dim() - 1))) if features.dim() > 2 else features


#: Added to the run's seed for the random-init twin's weights (a fixed, documented init).
RANDOM_INIT_SEED_OFFSET = 7919


class ProbeHarness:
    """What a probe gets besides the trained model.

    Attributes:
        run_dir: the run directory (``None`` outside a run).
        recipe: the run's resolved :class:`cpcframe.config.Recipe`.
        device: where to compute features.
        baselines: also score the baselines (the random-init twin, hand-made features).
        seed: seed of the probe's own randomness (the run's seed).
        options: the probe's options (``recipe.probe.config``, a :class:`cpcframe.ProbeOptions`).
    """

    def __init__(self, run_dir: str | Path | None, recipe: "Recipe", device: torch.device | str = "cpu",
                 baselines: bool = False, random_model: "ContrastiveModel | None" = None,
                 seed: int | None = None, *, registry: "Registry | None" = None, options: Any = None):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.recipe = recipe
        self.device = torch.device(device)
        self.baselines = baselines
        self.seed = recipe.seed if seed is None else seed
        self.options = recipe.probe.config if options is None else options
        self._registry = registry
        self._twin = random_model
        self._view_sampler: ViewSampler | None = None
        self._datasets: dict[tuple[str, int | None], Any] = {}
        self._classifiers: dict[str, ProbeClassifier] | None = None

    # ---- the run's components ---------------------------------------------------------
    @property
    def registry(self) -> "Registry":
        """The components the run was loaded with (default: the installed plugins)."""
        if self._registry is None:
            from cpcframe.plugins import default_registry

            self._registry = default_registry()
        return self._registry

    def view_sampler(self) -> "ViewSampler":
        """The recipe's view sampler (built once)."""
        if self._view_sampler is None:
            from cpcframe.build import build_view_sampler

            self._view_sampler = build_view_sampler(self.recipe, self.registry)
        return self._view_sampler

    def dataset(self, split: str = "train", *, min_length: int | None = None) -> Any:
        """The recipe's dataset for ``split`` (built once per split and ``min_length``,
        the shortest usable item: by default the view sampler's, ``0`` keeps every item).
        Warnings about the data are silenced: training already reported them."""
        key = (split, min_length)
        if key not in self._datasets:
            from cpcframe.build import build_dataset

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._datasets[key] = build_dataset(self.recipe, self.registry, split=split, run_dir=self.run_dir,
                                                    view_sampler=self.view_sampler(), min_length=min_length)
        return self._datasets[key]

    @property
    def has_test_split(self) -> bool:
        """Whether the dataset gives held-out items for ``split="test"`` (else a probe holds
        out a share of the training split itself)."""
        dataset = next(iter(self._datasets.values()), None)
        if dataset is None:
            dataset = self.dataset("train")
        return bool(getattr(dataset, "test_split_available", False))

    def random_init(self) -> "ContrastiveModel":
        """An untrained model of the run's architecture on :attr:`device`, in eval mode: the
        random-init baseline. Built once, its weights drawn after
        ``torch.manual_seed(recipe.seed + 7919)``; the global RNG is left as it was."""
        if self._twin is None:
            from cpcframe.build import build_model

            with torch.random.fork_rng():
                torch.manual_seed(self.recipe.seed + RANDOM_INIT_SEED_OFFSET)
                twin = build_model(self.recipe, self.registry)
            self._twin = twin.to(self.device).eval()
        return self._twin

    def feature_models(self, model: nn.Module, name: str = "cpc") -> dict[str, nn.Module]:
        """The models whose features a probe scores: ``{name: model}``, plus the random-init
        twin as ``random_init`` when :attr:`baselines`."""
        return {name: model, **({"random_init": self.random_init()} if self.baselines else {})}

    @contextmanager
    def eval_mode(self, *models: nn.Module) -> Iterator[None]:
        """Put ``models`` in eval mode for the block; restore each one's mode after it."""
        modes = [(m, m.training) for m in models]
        for m in models:
            m.eval()
        try:
            yield
        finally:
            for m, mode in modes:
                m.train(mode)

    def encode(self, models: Mapping[str, nn.Module], views: Iterable[View],
               pool: Callable[[Features], Tensor] = mean_pool) -> dict[str, Tensor]:
        """``{name: (N, D)}``: ``pool(model.encode(view, level=options.level))`` of every
        model for each batched view of ``views`` (moved to :attr:`device` once for all
        models), concatenated as float32 on the CPU. Call it inside :meth:`eval_mode`."""
        level = getattr(self.options, "level", "context")
        parts: dict[str, list[Tensor]] = {name: [] for name in models}
        for view in views:
            view = view_to(view, self.device)
            for name, m in models.items():
                parts[name].append(pool(m.encode(view, level=level)).float().cpu())
        return {name: torch.cat(p) for name, p in parts.items()}

    # ---- scoring ------------------------------------------------------------------------
    def classifiers(self) -> dict[str, ProbeClassifier]:
        """``{name: classifier}`` for every name in the options' ``classifiers``, built once
        (options that are no :class:`ProbeOptions` get the shared defaults: ``linear``)."""
        if self._classifiers is None:
            options = self.options if isinstance(self.options, ProbeOptions) else ProbeOptions()
            self._classifiers = {
                name: self.registry.get(CLASSIFIER_KIND, name).build(options.classifier_options.get(name),
                                                                     options=options)
                for name in options.classifiers}
        return self._classifiers

    def score(self, x: Mapping[str, Tensor], y: Tensor, x_test: Mapping[str, Tensor], y_test: Tensor, *,
              num_classes: int | None = None, details: dict[str, Any] | None = None) -> dict[str, float]:
        """Fit every classifier on each feature set's training features and score it on
        that set's test features.

        Args:
            x: ``{feature set: (N, D)}`` training features (``{"cpc": ..., "random_init": ...}``).
            y: ``(N,)`` long classes in ``[0, num_classes)``.
            x_test: ``{feature set: (M, D)}`` test features (the same feature sets).
            y_test: ``(M,)`` long classes.
            num_classes: by default the largest class in ``y`` or ``y_test``, plus one.
            details: when given, ``details["<result name>_train_accuracy"]`` is set too.

        Returns:
            ``{result name: test accuracy}``: ``cpc`` for ``linear``, ``cpc_mlp``, ...
        """
        if num_classes is None:
            num_classes = int(max(int(y.max()), int(y_test.max()) if len(y_test) else 0)) + 1
        out: dict[str, float] = {}
        for features, x_train in x.items():
            for name, classifier in self.classifiers().items():
                fitted = classifier.fit(x_train, y, num_classes, seed=self.seed)
                label = result_name(features, name)
                out[label] = accuracy(fitted, x_test[features], y_test)
                if details is not None:
                    details[f"{label}_train_accuracy"] = accuracy(fitted, x_train, y)
        return out

    def cross_validate(self, x: Mapping[str, Tensor], y: Tensor, folds: int) -> dict[str, float]:
        """``{result name: mean test accuracy}`` of every classifier over ``folds`` folds of
        each feature set of ``x`` (``{feature set: (N, D)}``, classes ``y (N,)``); the folds
        are the same for every classifier and feature set."""
        return {result_name(features, name): classifier.cross_validate(x_set, y, folds, seed=self.seed)
                for features, x_set in x.items() for name, classifier in self.classifiers().items()}

    # ---- output -------------------------------------------------------------------------
    def write_details(self, data: dict[str, Any], name: str | None = None) -> Path | None:
        """Write ``data`` as JSON beside ``probe.json`` (``probe_<name>_details.json``, ``name``
        by default the recipe's probe); returns the path, or ``None`` outside a run."""
        from cpcframe.runs.layout import RunDir

        if self.run_dir is None or not self.run_dir.is_dir():
            return None
        return RunDir(self.run_dir).write_probe_details(name or self.recipe.probe.name, data)

    def artifact(self, name: str) -> Path | None:
        """Where the probe may keep a file or folder of its own in the run (``pictures``);
        ``None`` outside a run."""
        from cpcframe.runs.layout import RunDir

        if self.run_dir is None or not self.run_dir.is_dir():
            return None
        return RunDir(self.run_dir).artifact(name)
