"""The s3prl part of an export: is the model a 16 kHz waveform model, and its two files.

s3prl (the SUPERB benchmark's toolkit) takes an upstream from a Hub repository holding
``expert.py`` (class ``UpstreamExpert``), ``requirements.txt`` and the weights. The
expert is :mod:`cpcframe.export.s3prl_expert`, copied unchanged; what differs between
models (hop, level widths, which levels form ``hidden_states``) is in the manifest's
``s3prl`` entry, decided here once at export time.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from cpcframe.export.layout import ExportDir
from cpcframe.export.manifest import Manifest

#: s3prl feeds 16 kHz waveforms (``SAMPLE_RATE`` of ``s3prl/upstream/interfaces.py``).
S3PRL_SAMPLE_RATE = 16000
LEVELS = ("latent", "context")
#: The expert, copied unchanged into every speech model's export.
EXPERT_TEMPLATE = Path(__file__).with_name("s3prl_expert.py")


def s3prl_settings(loaded: Any) -> tuple[dict[str, Any] | None, str]:
    """The ``s3prl`` manifest entry of a loaded model, or ``None`` and why not.

    A model qualifies when its view sampler reads audio at 16 kHz (``config.sample_rate``),
    its encoder states its hop (``downsampling``, samples per frame) and a ``(1, 1, S)``
    waveform gives ``(1, S // hop, C)`` tensors at both levels. ``hidden_states`` lists
    the levels as wide as the context (s3prl stacks them for its weighted sum).
    """
    sampler = loaded.view_sampler()
    rate = getattr(getattr(sampler, "config", None), "sample_rate", None)
    hop = getattr(loaded.model.encoder, "downsampling", None)
    if rate is None or not isinstance(hop, int) or hop < 1:
        return None, "not a waveform model"
    if rate != S3PRL_SAMPLE_RATE:
        return None, f"s3prl feeds {S3PRL_SAMPLE_RATE} Hz audio and this model reads {rate} Hz"
    frames = 4
    wave = torch.randn(1, 1, frames * hop, generator=torch.Generator().manual_seed(0))
    widths = {}
    for level in LEVELS:
        try:
            out = loaded.encode(wave, level=level)
        except Exception as exc:  # noqa: BLE001 - any failure means "not this kind of model"
            return None, f"its encoder does not take a (1, 1, samples) waveform ({exc})"
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[1] != frames:
            return None, f"its {level} features are not (batch, samples // {hop}, channels)"
        widths[level] = int(out.shape[-1])
    hidden = [level for level in LEVELS if widths[level] == widths["context"]]
    return {"sample_rate": S3PRL_SAMPLE_RATE, "downsample_rate": hop, "hidden_states": hidden,
            "widths": widths}, ""


def requirements_text(manifest: Manifest) -> str:
    """``requirements.txt``: cpcframe with the extras of the model's plugins, then any
    third-party plugin's distribution (plain-module plugins noted as comments)."""
    lines = ["# What expert.py (the s3prl upstream) needs: pip install -r requirements.txt"]
    lines += manifest.requirements()
    for source in manifest.components:
        if source.requirement() is None:
            lines.append(f"# {source.describe()}: not from a package; install it yourself")
    return "\n".join(lines) + "\n"


def write_s3prl_files(folder: ExportDir, manifest: Manifest) -> list[Path]:
    """Write ``expert.py`` and ``requirements.txt`` into ``folder``."""
    shutil.copyfile(EXPERT_TEMPLATE, folder.expert)
    folder.requirements.write_text(requirements_text(manifest), encoding="utf-8")
    return [folder.expert, folder.requirements]
