"""The options every probe shares: one attrs base, one set of names.

A probe's config class derives from :class:`ProbeOptions` and adds its own science
(tasks, held-out shares, ...); its ``[probe]`` section then reads::

    [probe]
    name = "speech"
    level = "context"                 # c_t (CPC's features) or z_t ("latent")
    baselines = true                  # also a random-init twin (and hand-made features)
    classifiers = ["linear", "mlp"]   # registered probe classifiers
    l2 = [1e-4, 1e-3]                 # the linear classifier's penalty, or candidates
    iterations = 200                  # L-BFGS iterations of each linear fit

    [probe.mlp]                       # the MLP classifier's options
    hidden = 512

    [probe.knn]                       # a plugin classifier's options, under its name
    k = 20

0.1.0 recipes keep loading: ``max_iter`` (and the example plugin's ``steps``) is read as
``iterations`` with a ``DeprecationWarning``; a single ``l2 = 1e-4`` is a grid of one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import attrs

from cpcframe.config.structure import RENAMED_FROM, gathers_tables, registered, renamed_from
from cpcframe.config.validators import fraction, non_negative, positive
from cpcframe.errors import did_you_mean
from cpcframe.probing.mlp import MLPProbeConfig

if TYPE_CHECKING:
    from cpcframe.config.structure import Structurer

#: The hook kind of probe classifiers (``register_probe_classifiers``).
CLASSIFIER_KIND = "probe_classifier"


def _classifier_list(_instance: Any, _attribute: Any, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("must name at least one classifier (e.g. [\"linear\"])")
    if len(set(value)) != len(value):
        raise ValueError(f"names a classifier twice: {list(value)}")


def _penalty_grid(value: float | tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """``1e-4`` -> ``(1e-4,)``; a list -> a tuple."""
    return (float(value),) if isinstance(value, (int, float)) else tuple(float(v) for v in value)


def _penalties(_instance: Any, attribute: Any, value: Any) -> None:
    non_negative(_instance, attribute, value)
    if isinstance(value, (list, tuple)) and not value:
        raise ValueError("must list at least one penalty")


class ClassifierTables(dict):
    """``{classifier name: its options}`` from the ``[probe.NAME]`` tables of a recipe, each
    structured with the config class its plugin registered."""

    @staticmethod
    def __cpcframe_structure__(structurer: "Structurer", value: Any, path: str, field: Any) -> Any:
        from cpcframe.config.structure import _MISSING, _join

        registry = getattr(structurer, "registry", None)
        names = registry.names(CLASSIFIER_KIND) if registry is not None else []
        out, failed = ClassifierTables(), False
        for key, table in value.items():
            where = _join(path, key)
            config = registry.get(CLASSIFIER_KIND, key).config if key in names else None
            if config is None:
                with_options = [n for n in names if registry.get(CLASSIFIER_KIND, n).config is not None]
                structurer.problem(where, "unknown key: not an option, nor a probe classifier with options"
                                   + did_you_mean(key, with_options))
                failed = True
                continue
            options = structurer.structure_class(config, table, where)
            failed = failed or options is _MISSING
            out[key] = options
        return _MISSING if failed else out


@attrs.frozen(kw_only=True)
class ProbeOptions:
    """Options every probe shares (a probe's config class derives from this one).

    Attributes:
        level: the features to probe: ``context`` (``c_t``, CPC's) or ``latent`` (``z_t``).
        baselines: also score a random-init model of the same architecture (and the probe's
            hand-made features); ``cpcframe probe --baselines`` turns it on too.
        classifiers: the registered probe classifiers fitted on every feature set
            (built in: ``linear``, the papers' protocol, and ``mlp``, one hidden layer).
            Results of ``linear`` are named after the feature set (``cpc``), the others
            ``<features>_<classifier>`` (``cpc_mlp``).
        l2: the linear classifier's L2 penalty, or a list of candidates: each fit then
            picks the one that scores best on a held-out ``validation_fraction`` of its
            training data.
        validation_fraction: held-out share of the training data for choosing ``l2``.
        iterations: L-BFGS iterations of each linear fit.
        batch_size: examples per forward pass when computing features.
        mlp: the ``mlp`` classifier's options (``[probe.mlp]``).
        classifier_options: other classifiers' options, one ``[probe.NAME]`` table each.
    """

    level: Literal["context", "latent"] = attrs.field(default="context",
                                                      validator=attrs.validators.in_(("context", "latent")))
    baselines: bool = False
    classifiers: tuple[str, ...] = attrs.field(default=("linear",), validator=_classifier_list,
                                               metadata=registered(CLASSIFIER_KIND))
    l2: float | tuple[float, ...] = attrs.field(default=(1e-4,), converter=_penalty_grid, validator=_penalties)
    validation_fraction: float = attrs.field(default=0.1, validator=fraction)
    iterations: int = attrs.field(default=200, validator=positive, metadata=renamed_from("max_iter"))
    batch_size: int = attrs.field(default=64, validator=positive)
    mlp: MLPProbeConfig = MLPProbeConfig()
    classifier_options: ClassifierTables = attrs.field(factory=ClassifierTables, converter=ClassifierTables,
                                                       metadata=gathers_tables())

    def __attrs_post_init__(self) -> None:
        unused = sorted(set(self.classifier_options) - set(self.classifiers))
        if unused:
            raise ValueError(f"has options for {', '.join(unused)}, which classifiers = "
                             f"{list(self.classifiers)} does not name")

    @staticmethod
    def override(name: str, default: Any, *, old_names: tuple[str, ...] = ()) -> Any:
        """Shared option ``name`` with another default, for a probe's subclass (the same
        checks and old names, plus ``old_names``, the subclass's own old names):
        ``iterations: int = ProbeOptions.override("iterations", 100)``."""
        base = attrs.fields_dict(ProbeOptions)[name]
        if isinstance(default, (list, dict)):
            raise TypeError(f"{name}: give a tuple, not a mutable {type(default).__name__}")
        metadata = dict(base.metadata)
        if old_names:
            metadata[RENAMED_FROM] = (*metadata.get(RENAMED_FROM, ()), *old_names)
        return attrs.field(default=default, validator=base.validator, converter=base.converter, metadata=metadata)
