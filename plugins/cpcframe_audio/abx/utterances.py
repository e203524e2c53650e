"""The utterances an ABX evaluation encodes: the run's corpus, or a folder of audio files.

The run's corpus (its recipe's ``[data.dataset]``, the held-out split when it has one)
brings its phone labels, from which items are generated. A folder (``audio``, e.g.
``LibriSpeech/dev-clean``) serves the ZeroSpeech item files, which name utterances of
corpora a model was not trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor

from cpcframe import UserError


@attrs.frozen(eq=False)
class Utterance:
    """One utterance: ``load()`` gives its ``(1, S)`` float32 waveform at the corpus's rate."""

    key: str
    speaker: str
    samples: int
    load: Callable[[], Tensor]
    labels: np.ndarray | None = None  # (L,) phone class per 10 ms label frame


@attrs.frozen(eq=False)
class Corpus:
    """Utterances by id, their sample rate, and where they came from (for messages and ``abx.json``)."""

    utterances: dict[str, Utterance]
    sample_rate: int
    source: str
    label_file: Path | None = None


def dataset_corpus(harness: Any, split: str) -> Corpus:
    """The run's dataset for ``split`` (``auto``: ``test`` when the dataset has one, else ``train``),
    every utterance of it (``min_length=0``)."""
    recipe = harness.recipe
    if split == "auto":
        split = "test" if harness.has_test_split else "train"
    dataset = harness.dataset(split, min_length=0)
    for attribute in ("keys", "groups", "speaker_ids", "lengths", "waveform", "sample_rate"):
        if not hasattr(dataset, attribute):
            raise UserError(f"ABX needs an audio corpus of utterances; data.dataset "
                            f"{recipe.data.dataset.name!r} is not one (no {attribute!r})")
    utterances = {}
    for i, key in enumerate(dataset.keys):
        labels = dataset.labels(i) if dataset.has_labels(i) else None
        utterances[key] = Utterance(key, dataset.speaker_ids[dataset.groups[i]], int(dataset.lengths[i]),
                                    lambda i=i: dataset.waveform(i),
                                    None if labels is None else labels.numpy())
    store = getattr(dataset, "label_store", None)
    label_file = getattr(store, "source", None)
    return Corpus(utterances, int(dataset.sample_rate),
                  f"{split} split of data.dataset {recipe.data.dataset.name!r}",
                  Path(label_file) if label_file else None)


def folder_corpus(root: str | Path, sample_rate: int) -> Corpus:
    """Audio files under ``root`` (searched recursively), by file stem = utterance id."""
    import soundfile

    from cpcframe_audio.data.decode import read_audio
    from cpcframe_audio.data.librispeech import scan

    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"ABX audio folder {root} does not exist")
    files, _ = scan(root, (".flac", ".wav"))
    if not files:
        raise UserError(f"no .flac or .wav files under the ABX audio folder {root}")
    utterances = {}
    for key, f in files.items():
        info = soundfile.info(str(f.path))
        samples = int(np.ceil(info.frames * sample_rate / info.samplerate))
        utterances[key] = Utterance(key, f.speaker, samples,
                                    lambda p=f.path: torch.from_numpy(read_audio(p, sample_rate))[None])
    return Corpus(utterances, sample_rate, f"audio folder {root}")
