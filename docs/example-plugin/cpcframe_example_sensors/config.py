"""The options of every component, as frozen attrs classes (one recipe section each).

This module imports only ``attrs`` and cpcframe's validators, so registering the
components (which needs the classes) stays cheap; the implementations are imported
when a component is built (see ``plugin.py``).

A recipe section maps onto a class field by field, e.g.::

    [data.views]
    name = "sensor_windows"     # the registered name, not a field
    window = 256                # SensorWindowsConfig.window

A wrong value is reported by key path (``data.views.window: must be > 0, got -1``).
"""

from __future__ import annotations

from typing import Any

import attrs

from cpcframe import ProbeOptions, validators


def _unique(_instance: Any, _attribute: Any, value: tuple[str, ...]) -> None:
    duplicates = sorted({v for v in value if value.count(v) > 1})
    if duplicates:
        raise ValueError(f"names must be unique, repeated: {', '.join(duplicates)}")


def _fraction_below_one(_instance: Any, _attribute: Any, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"must be in [0, 1), got {value!r}")


@attrs.frozen
class SensorCSVConfig:
    """``[data.dataset]`` of ``sensor_csv``.

    Attributes:
        root: folder of ``*.csv`` recordings, searched recursively. Each file has a
            header row and one row per time step.
        channels: the columns read as channels, in this order (the encoder's
            ``in_channels`` must equal their number).
        label_column: an integer column with a per-step label (activity) that probes
            use; ``""`` or a file without it: no labels.
        subject_separator: the subject (the item's group) is the file name up to the
            first separator: ``s03_walk2.csv`` -> subject ``s03``.
        test_every: every ``test_every``-th recording (in name order) forms the
            ``test`` split, the others ``train``; ``0``: every recording is in both.
        standardize: scale each channel of each recording to zero mean, unit variance.
        cache: keep the decoded recordings as one ``.npy`` under the cache directory
            (re-read only when a file's size or modification time changes).
    """

    root: str = attrs.field(default="data/sensors", validator=validators.non_empty)
    channels: tuple[str, ...] = attrs.field(default=("x", "y", "z"),
                                            validator=attrs.validators.and_(validators.non_empty, _unique))
    label_column: str = "activity"
    subject_separator: str = attrs.field(default="_", validator=validators.non_empty)
    test_every: int = attrs.field(default=5, validator=validators.non_negative)
    standardize: bool = True
    cache: bool = True


@attrs.frozen
class SensorWindowsConfig:
    """``[data.views]`` of ``sensor_windows``.

    Attributes:
        window: time steps per view; recordings shorter than this are skipped.
        align: window starts are multiples of this; set it to the encoder's total
            stride so that latent frames of different windows cover the same steps.
        gain_jitter: each channel of a view is multiplied by ``1 + u``,
            ``u ~ U(-gain_jitter, gain_jitter)`` (sensor gain variation); 0 = off.
    """

    window: int = attrs.field(default=128, validator=validators.positive)
    align: int = attrs.field(default=8, validator=validators.positive)
    gain_jitter: float = attrs.field(default=0.0, validator=_fraction_below_one)

    def __attrs_post_init__(self) -> None:
        if self.window % self.align:
            raise ValueError(f"window={self.window} must be a multiple of align={self.align}")


@attrs.frozen
class SensorConvConfig:
    """``[model.encoder]`` of ``sensor_conv`` (CPC's strided g_enc, sized for ~50 Hz sensors).

    Attributes:
        in_channels: ``C_in``, the number of sensor channels.
        hidden: ``C``, channels of every layer and of the latents.
        kernels: kernel size of each layer.
        strides: stride of each layer; their product is the downsampling factor.
        channel_norm: LayerNorm over channels at each time step after every
            convolution (normalises without mixing time steps, unlike batch norm).
    """

    in_channels: int = attrs.field(default=3, validator=validators.positive)
    hidden: int = attrs.field(default=64, validator=validators.positive)
    kernels: tuple[int, ...] = attrs.field(default=(4, 4, 4), validator=[validators.non_empty, validators.positive])
    strides: tuple[int, ...] = attrs.field(default=(2, 2, 2), validator=[validators.non_empty, validators.positive])
    channel_norm: bool = True

    def __attrs_post_init__(self) -> None:
        if len(self.kernels) != len(self.strides):
            raise ValueError(f"kernels ({len(self.kernels)} values) and strides "
                             f"({len(self.strides)} values) must have the same length")
        for i, (k, s) in enumerate(zip(self.kernels, self.strides)):
            # padding (k - s) / 2 makes layer i map S steps to exactly S / s.
            if k < s or (k - s) % 2:
                raise ValueError(f"layer {i}: kernel {k} must be >= stride {s} and differ from it "
                                 "by an even number")

    @property
    def downsampling(self) -> int:
        """Input steps per latent frame: the product of the strides."""
        out = 1
        for s in self.strides:
            out *= s
        return out


@attrs.frozen(kw_only=True)
class SensorActivityConfig(ProbeOptions):
    """``[probe]`` of ``sensor_activity``: per-frame activity from frozen features, with the
    options every probe shares (:class:`cpcframe.ProbeOptions`: ``level``, ``baselines``,
    ``classifiers``, ``l2``, ``iterations``, ``[probe.mlp]``, ...).

    Attributes:
        baselines: also score a random-init model and raw-signal frames (the same as
            ``cpcframe probe --baselines``).
        iterations: L-BFGS iterations of the linear classifier (0.1.0: ``steps``, of Adam).
    """

    #: Options of 0.1.0's own Adam classifier: accepted (with a warning) and ignored.
    __cpcframe_retired__ = {"lr": "the shared linear classifier is fitted by L-BFGS",
                            "weight_decay": "set the linear classifier's penalty with l2"}

    iterations: int = ProbeOptions.override("iterations", 200, old_names=("steps",))
