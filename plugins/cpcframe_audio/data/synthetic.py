"""``synthetic_speech``: a built-in speech-like corpus, generated in seconds, read as LibriSpeech.

The corpus is written exactly as the real data is laid out (``audio/SPEAKER/CHAPTER/
SPEAKER-CHAPTER-UTT.flac``, 16 kHz), with CPC-format phone labels
(``converted_aligned_phones.txt``, one class per 10 ms frame), split lists
(``train_split.txt``, ``test_split.txt``) and ``phones.txt`` naming the classes, so the
very same ``librispeech`` code path (and its cache) reads it. See
:mod:`cpcframe_audio.data.synth` for how the speech is made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import attrs
import numpy as np

from cpcframe import DatasetRequest, UserError, cache_key, publish_dir, validators
from cpcframe_audio.data import synth
from cpcframe_audio.data.cache import DTYPES
from cpcframe_audio.data.base import AudioDataset
from cpcframe_audio.data.librispeech import LibriSpeechConfig, build_librispeech

SYNTH_VERSION = 1
CORPUS_FILE = "corpus.json"


@attrs.frozen
class SyntheticSpeechConfig:
    """Options of ``synthetic_speech``.

    Attributes:
        root: where to write the corpus; empty = ``<cache_dir>/synthetic_speech/<hash>``.
        speakers: number of speakers.
        utterances_per_speaker: utterances each speaker says.
        min_seconds, max_seconds: utterance duration range.
        lexicon_size: words in the lexicon (Zipf-distributed).
        test_fraction: share of each speaker's utterances in ``test_split.txt``.
        seed: the corpus's own seed (independent of the run's, so runs share one corpus).
        cache_dtype: storage of the decoded samples (``float16`` or ``float32``).
    """

    root: str = ""
    speakers: int = attrs.field(default=24, validator=validators.positive)
    utterances_per_speaker: int = attrs.field(default=12, validator=validators.positive)
    min_seconds: float = attrs.field(default=2.0, validator=validators.positive)
    max_seconds: float = attrs.field(default=4.0, validator=validators.positive)
    lexicon_size: int = attrs.field(default=60, validator=validators.positive)
    test_fraction: float = attrs.field(default=0.25, validator=validators.probability)
    seed: int = 0
    cache_dtype: Literal["float16", "float32"] = attrs.field(default="float16",
                                                             validator=attrs.validators.in_(DTYPES))

    def __attrs_post_init__(self) -> None:
        if self.max_seconds < self.min_seconds:
            raise ValueError(f"max_seconds={self.max_seconds} is below min_seconds={self.min_seconds}")
        if self.min_seconds < 0.5:
            raise ValueError(f"min_seconds={self.min_seconds} is too short for an utterance (>= 0.5)")

    def corpus_options(self) -> dict[str, object]:
        """What the generated audio depends on (not where it goes, nor the cache dtype)."""
        out = attrs.asdict(self)
        del out["root"], out["cache_dtype"]
        return {"version": SYNTH_VERSION, **out}


def generate_corpus(config: SyntheticSpeechConfig, target: Path) -> None:
    """Write the corpus into ``target`` (a new folder)."""
    import soundfile

    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xA0D10]))
    lexicon = synth.make_lexicon(rng, config.lexicon_size)
    zipf = 1.0 / np.arange(1, config.lexicon_size + 1)
    zipf /= zipf.sum()
    train, test, label_lines = [], [], []
    n_test = int(round(config.test_fraction * config.utterances_per_speaker))
    if config.utterances_per_speaker > 1:
        n_test = min(max(n_test, 1 if config.test_fraction > 0 else 0), config.utterances_per_speaker - 1)
    for s in range(config.speakers):
        speaker_id = str(100 + s)
        speaker = synth.make_speaker(rng)
        held_out = set(rng.choice(config.utterances_per_speaker, n_test, replace=False).tolist())
        for u in range(config.utterances_per_speaker):
            chapter = str(1000 + s * 10 + u % 2)
            key = f"{speaker_id}-{chapter}-{u:04d}"
            seconds = rng.uniform(config.min_seconds, config.max_seconds)
            frames = int(seconds * synth.SAMPLE_RATE / synth.FRAME)
            labels = synth.phone_sequence(rng, lexicon, zipf, frames, speaker.rate)
            wave = synth.synthesize(rng, speaker, labels)
            folder = target / "audio" / speaker_id / chapter
            folder.mkdir(parents=True, exist_ok=True)
            soundfile.write(folder / f"{key}.flac", wave, synth.SAMPLE_RATE, subtype="PCM_16")
            label_lines.append(key + " " + " ".join(map(str, labels.tolist())))
            (test if u in held_out else train).append(key)
    (target / "converted_aligned_phones.txt").write_text("\n".join(label_lines) + "\n")
    (target / "train_split.txt").write_text("\n".join(train) + "\n")
    (target / "test_split.txt").write_text("\n".join(test) + "\n")
    (target / "phones.txt").write_text("\n".join(f"{i} {n}" for i, n in enumerate(synth.PHONE_NAMES)) + "\n")
    (target / "words.txt").write_text("\n".join(" ".join(synth.PHONE_NAMES[p] for p in w)
                                                for w in lexicon) + "\n")


def ensure_corpus(config: SyntheticSpeechConfig, root: Path) -> Path:
    """The corpus folder for ``config``, generated there (atomically) unless it exists."""
    options = config.corpus_options()
    marker = root / CORPUS_FILE
    if marker.is_file():
        if json.loads(marker.read_text()) != json.loads(json.dumps(options)):
            raise UserError(f"{root} holds a synthetic corpus made with other options; "
                            "choose another data.dataset.root or delete that folder")
        return root
    if root.exists() and any(root.iterdir()):
        raise UserError(f"synthetic_speech root {root} exists and is not a synthetic corpus; "
                        "choose an empty or new folder")

    def fill(tmp: Path) -> None:
        generate_corpus(config, tmp)
        (tmp / CORPUS_FILE).write_text(json.dumps(options, indent=2))
        if root.exists():
            root.rmdir()  # empty (checked above)

    publish_dir(root, fill, marker=CORPUS_FILE)
    return root


def corpus_root(config: SyntheticSpeechConfig, request: DatasetRequest) -> Path:
    if config.root:
        return Path(config.root).expanduser()
    return Path(request.cache_dir) / "synthetic_speech" / f"corpus-{cache_key(config.corpus_options())}"


def build_synthetic_speech(config: SyntheticSpeechConfig, *, request: DatasetRequest) -> AudioDataset:
    """Built-in synthetic speech (speakers x phones, frame labels), generated on first use."""
    root = ensure_corpus(config, corpus_root(config, request))
    return build_librispeech(LibriSpeechConfig(
        root=str(root / "audio"), split_list=str(root / "train_split.txt"),
        test_split_list=str(root / "test_split.txt"),
        phone_labels=str(root / "converted_aligned_phones.txt"), cache_dtype=config.cache_dtype),
        request=request)
