"""cpcframe: contrastive predictive representation learning (CPC, AMDIM) for any modality.

The core holds the interfaces (:class:`Encoder`, :class:`ContextModel`,
:class:`ViewSampler`, :class:`Critic`, :class:`Probe`), the InfoNCE engine, the trainer,
recipes and the CLI. Modalities come from plugins (see ``docs/writing-plugins.md``).
Everything a plugin author needs is a name of this package (``__all__``), the
:class:`Dataset` interface, ``validators`` and the cache and split helpers included.
Importing this package never imports torchaudio, torchvision or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cpcframe.batch import Batch, Example, View
from cpcframe.config import validators
from cpcframe.context import ContextModel
from cpcframe.contrast import Contrast
from cpcframe.critic import Critic
from cpcframe.data.cache_dir import cache_key, exclusive
from cpcframe.runs.atomic import publish_dir
from cpcframe.data.request import DatasetRequest, default_cache_dir
from cpcframe.data.splits import hold_out, key_hash
from cpcframe.dataset import Dataset, describe_skipped
from cpcframe.encoder import Encoder, Features
from cpcframe.errors import RecipeError, UnusableItem, UserError, did_you_mean
from cpcframe.hookspecs import hookimpl
from cpcframe.infonce import InfoNCEConfig, InfoNCEResult, info_nce
from cpcframe.measured_choice import fastest
from cpcframe.model import ContrastiveModel
from cpcframe.negatives import NegativePolicy
from cpcframe.probing.harness import ProbeHarness, mean_pool
from cpcframe.probing.classifier import Predictor, ProbeClassifier
from cpcframe.probing.probe import Probe, ProbeResults
from cpcframe.probing.mlp import MLPProbeConfig
from cpcframe.probing.options import ProbeOptions
from cpcframe.runs.chunks import encode_in_chunks
from cpcframe.runs.layout import RunDir
from cpcframe.views import ViewSampler

from cpcframe._version import __version__

if TYPE_CHECKING:
    from cpcframe.runs.loading import LoadedModel

#: Names of earlier releases -> their replacements (still importable, with a warning).
_RENAMED = {"DatasetContext": "DatasetRequest", "ProbeContext": "ProbeHarness"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        import warnings

        warnings.warn(f"cpcframe.{name} is now cpcframe.{_RENAMED[name]}", DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module 'cpcframe' has no attribute {name!r}")


def load(run_dir: Any, device: str = "cpu", overrides: Any = (), revision: Any = None) -> "LoadedModel":
    """Load a trained model from a run directory (weights + resolved recipe); see
    :func:`cpcframe.runs.load_run` and ``docs/using-trained-models.md``.

    ``run_dir`` may also be an exported model folder (``cpcframe export``) or a Hugging
    Face Hub id, ``"org/name"``, at ``revision`` (a branch, tag or commit; needs
    ``cpcframe[hub]``; cached, and ``HF_HUB_OFFLINE=1`` reads only the cache); see
    :func:`cpcframe.export.locate_model`.
    ``device``: ``"cpu"``, ``"cuda"``, ``"auto"`` (CUDA when available), ...
    ``overrides`` are ``key.path=value`` changes to the saved recipe that keep the model's
    shape, e.g. ``["model.encoder.conv_backend=conv1d"]``.
    """
    from cpcframe.export.hub import locate_model
    from cpcframe.runs.loading import load_run

    return load_run(locate_model(run_dir, revision), device=device, overrides=overrides)


__all__ = [
    "Batch", "ContextModel", "Contrast", "ContrastiveModel", "Critic", "Dataset", "DatasetRequest",
    "Encoder", "Example", "Features", "InfoNCEConfig", "InfoNCEResult", "Probe",
    "ProbeResults", "RecipeError", "UserError", "View", "ViewSampler",
    "__version__", "hookimpl", "info_nce", "load",
    "RunDir",
    # For plugin authors: config validators, cache folders, held-out splits, messages.
    "validators", "cache_key", "publish_dir", "exclusive", "default_cache_dir", "hold_out", "key_hash",
    "did_you_mean", "describe_skipped", "UnusableItem",
    "NegativePolicy",
    # Backends chosen by a short measurement on the machine at hand (``auto``).
    "fastest",
    # The one encoding of long sequence inputs (embed, probes, ABX).
    "encode_in_chunks",
    # Probing: the harness a probe runs in, its shared options, the classifier interface.
    "ProbeHarness", "ProbeOptions", "ProbeClassifier", "Predictor", "MLPProbeConfig", "mean_pool",
]
