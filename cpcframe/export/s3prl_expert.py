"""An s3prl upstream for a cpcframe speech model: ``expert.py`` of an exported model.

``cpcframe export`` copies this file, unchanged, into the exported folder of an audio
model. s3prl (https://github.com/s3prl/s3prl) loads such a folder from the Hugging Face
Hub (``run_downstream.py --hub huggingface -u ORG/NAME``): it downloads the repository,
appends its folder to ``sys.path``, imports ``UpstreamExpert`` from ``expert.py`` and
builds it with ``ckpt=<folder>/<--upstream_model_name>``. The file needs only cpcframe
and its audio plugin (``pip install -r requirements.txt``); it loads the model of the
folder it sits in with :func:`cpcframe.load`.

The contract, as s3prl states it (``s3prl/upstream/interfaces.py``, the example upstream
``s3prl/upstream/example/expert.py``):

* ``forward(wavs)``: ``wavs`` is a list of unpadded 1-D float tensors of 16 kHz audio.
  The result maps keys to padded ``(B, T_max, D)`` tensors, or lists of them:

  - ``"latent"``: ``z``, the encoder's output (CPC's ``g_enc``);
  - ``"context"``: ``c``, the context model's (``g_ar``; CPC's features for downstream tasks);
  - ``"hidden_states"``: the levels s3prl's ``Featurizer`` learns a weighted sum of, which
    it stacks, so they must share one shape: ``[z, c]`` when the two are as wide,
    else ``[c]`` alone (the paper's model: z is 512-d, c 256-d); their names are
    :attr:`UpstreamExpert.hidden_state_names`. ``-s latent`` / ``-s context`` selects
    one level whatever its width.
  - ``"last_hidden_state"``: ``c``.

  Item ``i`` has ``len(wavs[i]) // downsample_rate`` frames: exactly what the model
  computes on that item alone (items of equal length are encoded together, so padding
  never reaches the per-utterance input normalisation or the context model); the frames
  past them are zeros.
* ``get_downsample_rates(key)``: samples per frame, the encoder's hop (160 = 10 ms for
  CPC's encoder), for every key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

import cpcframe

#: The export manifest beside this file; its ``s3prl`` entry holds this upstream's settings.
MANIFEST = "cpcframe.json"


def model_folder(ckpt: str | None = None) -> Path:
    """The exported model's folder: the one ``ckpt`` names or sits in (s3prl passes
    ``<folder>/<model file name>``), else this file's. Links are not followed: in the
    Hugging Face cache a snapshot's files are links into a folder of blobs."""
    if ckpt:
        path = Path(ckpt)
        for candidate in (path, path.parent):
            if (candidate / MANIFEST).is_file():
                return candidate
    return Path(os.path.abspath(__file__)).parent


class UpstreamExpert(nn.Module):
    """The exported model as an s3prl upstream (see the module docstring).

    Args:
        ckpt: s3prl's checkpoint argument: the exported folder or a file in it (default:
            this file's folder).
        model_config, **kwargs: accepted for s3prl's calling convention (``-g``,
            ``refresh``, ``upstream_expert`` options) and unused: the folder's recipe
            defines the model.

    Attributes:
        encoder, context: the trained encoder and context model (the critic, needed only
            for training, is left out: s3prl fine-tunes every parameter it is given).
        recipe: the recipe it was trained from.
        sample_rate: 16000, what s3prl feeds.
        downsample_rate: samples per frame.
        hidden_state_names: the level of each entry of ``"hidden_states"``.
    """

    def __init__(self, ckpt: str | None = None, model_config: str | None = None, **kwargs):
        super().__init__()
        folder = model_folder(ckpt)
        settings = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("s3prl")
        if not settings:
            raise ValueError(f"{folder} holds no speech model for s3prl (no 's3prl' entry in {MANIFEST})")
        loaded = cpcframe.load(folder)
        self.encoder, self.context = loaded.model.encoder, loaded.model.context
        self.recipe = loaded.recipe
        self.sample_rate = int(settings["sample_rate"])
        self.downsample_rate = int(settings["downsample_rate"])
        self.hidden_state_names = tuple(settings["hidden_states"])
        self.name = f"[cpcframe {loaded.recipe.name or folder.name}]"

    def get_downsample_rates(self, key: str) -> int:
        """Samples per frame of every output (``key`` is any key of :meth:`forward`'s result)."""
        return self.downsample_rate

    def forward(self, wavs: list[Tensor]) -> dict[str, Tensor | list[Tensor]]:
        """``wavs``: unpadded 1-D 16 kHz waveforms -> padded ``(B, T_max, D)`` features (see
        the module docstring). Differentiable: s3prl fine-tunes an upstream (``-f``) by
        calling this with gradients on."""
        if not wavs:
            raise ValueError("UpstreamExpert.forward needs at least one waveform")
        for i, wav in enumerate(wavs):
            if wav.dim() != 1:
                raise ValueError(f"wavs[{i}] has shape {tuple(wav.shape)}; s3prl passes 1-D waveforms")
        device = next(self.parameters()).device
        by_length: dict[int, list[int]] = {}
        for i, wav in enumerate(wavs):
            by_length.setdefault(wav.shape[0], []).append(i)
        latent: list[Tensor | None] = [None] * len(wavs)
        context: list[Tensor | None] = [None] * len(wavs)
        for items in by_length.values():
            view = torch.stack([wavs[i] for i in items]).to(device=device, dtype=torch.float32)[:, None, :]
            z = self.encoder(view)  # (n, 1, S) -> (n, S // hop, C_z)
            c = self.context(z)  # (n, T, C_c)
            for row, i in enumerate(items):
                latent[i], context[i] = z[row], c[row]
        levels = {"latent": pad_sequence(latent, batch_first=True),  # (B, T_max, C_z)
                  "context": pad_sequence(context, batch_first=True)}  # (B, T_max, C_c)
        return {**levels, "hidden_states": [levels[name] for name in self.hidden_state_names],
                "last_hidden_state": levels["context"]}
