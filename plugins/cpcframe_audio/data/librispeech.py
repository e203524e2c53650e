"""``librispeech``: a LibriSpeech folder (``SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac``).

Any subset works (train-clean-100 is the CPC paper's), as do ``.wav`` files and the
synthetic corpus this plugin writes in the same layout. Optional CPC split lists choose
the train and test utterances; the optional CPC phone label file attaches 10 ms frame
labels. Audio is decoded once into a cache (see :mod:`cpcframe_audio.data.cache`), unless
the corpus is read once in order (``request.access == "sequential"``, ``cpcframe shard``):
then each file is decoded on access and no cache is built
(:mod:`cpcframe_audio.data.streamed`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import attrs

from cpcframe import DatasetRequest, UserError, validators
from cpcframe_audio.data.cache import DTYPES, SourceItem, build_cache
from cpcframe_audio.data.base import AudioDataset, select
from cpcframe_audio.data.labels import LabelLines, load_labels, read_split_list
from cpcframe_audio.data.streamed import DecodingDataset

WHERE_TO_GET = (
    "LibriSpeech comes from https://www.openslr.org/12 (the CPC paper uses train-clean-100: "
    "download train-clean-100.tar.gz and unpack it; root = .../LibriSpeech/train-clean-100). "
    "The CPC split lists (train_split.txt, test_split.txt) and frame-level phone labels "
    "(converted_aligned_phones.txt) are the files the CPC paper's authors published "
    "(linked from the CPC_audio repository, github.com/facebookresearch/CPC_audio, "
    "'LibriSpeech 100h phone labels and train/test split').")


LABELS_HELP = "Set data.dataset.phone_labels (empty = no phone labels). " + WHERE_TO_GET


@attrs.frozen
class LibriSpeechConfig:
    """Options of ``librispeech``.

    Attributes:
        root: the corpus folder (e.g. ``data/LibriSpeech/train-clean-100``); searched
            recursively for audio files.
        split_list: CPC-format list of the training utterances (empty = all).
        test_split_list: CPC-format list of held-out utterances, read for ``split="test"``
            (probes); empty = probes hold out a fraction of the training utterances.
        phone_labels: CPC ``converted_aligned_phones.txt``-format frame labels (empty = none).
        extensions: audio file suffixes to read, in order of preference when an
            utterance exists in several formats.
        sample_rate: Hz; other rates are resampled when decoding.
        cache_dtype: storage of the decoded samples: ``float16`` or ``float32``.
        decode_workers: threads decoding the corpus on the first run (0 = one per CPU, up to 8).
    """

    root: str = attrs.field(default="data/LibriSpeech/train-clean-100", metadata=validators.path_option("dir", WHERE_TO_GET))
    split_list: str = attrs.field(default="", metadata=validators.path_option("file", WHERE_TO_GET))
    test_split_list: str = attrs.field(default="", metadata=validators.path_option("file", WHERE_TO_GET))
    phone_labels: str = attrs.field(default="", metadata=validators.path_option("file", WHERE_TO_GET))
    extensions: tuple[str, ...] = (".flac", ".wav")
    sample_rate: int = attrs.field(default=16000, validator=validators.positive)
    cache_dtype: Literal["float16", "float32"] = attrs.field(default="float16",
                                                             validator=attrs.validators.in_(DTYPES))
    decode_workers: int = attrs.field(default=0, validator=validators.non_negative)

    def __attrs_post_init__(self) -> None:
        if not self.extensions:
            raise ValueError("extensions must name at least one suffix, e.g. ['.flac']")
        for ext in self.extensions:
            if not ext.startswith("."):
                raise ValueError(f"extensions must start with '.', got {ext!r}")


@attrs.frozen
class AudioFile:
    key: str
    speaker: str
    path: Path
    size: int
    mtime_ns: int


def speaker_of(relative: Path) -> str:
    """The SPEAKER folder of ``SPEAKER/CHAPTER/FILE``; else the file name up to its first '-'."""
    parts = relative.parts
    if len(parts) >= 3:
        return parts[-3]
    return relative.stem.split("-")[0]


def scan(root: Path, extensions: tuple[str, ...]) -> tuple[dict[str, AudioFile], int]:
    """Audio files under ``root`` by utterance id, and how many duplicate ids were dropped."""
    rank = {e.lower(): i for i, e in enumerate(extensions)}
    found: dict[str, AudioFile] = {}
    duplicates = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            suffix = os.path.splitext(name)[1].lower()
            if suffix not in rank or name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue
            key = path.stem
            item = AudioFile(key, speaker_of(path.relative_to(root)), path, st.st_size, st.st_mtime_ns)
            old = found.get(key)
            if old is not None:
                duplicates += 1
                if rank[old.path.suffix.lower()] <= rank[suffix]:
                    continue
            found[key] = item
    return found, duplicates


def decoding(config: LibriSpeechConfig, files: dict[str, AudioFile], wanted: list[str] | None,
             request: DatasetRequest, *, test_split_available: bool) -> DecodingDataset:
    """The utterances of ``wanted`` (all when ``None``) decoded on access, in the order and
    with the groups and labels of the cached dataset (:func:`select`)."""
    keys = sorted(files) if wanted is None else [k for k in dict.fromkeys(wanted) if k in files]
    labels = LabelLines(config.phone_labels, frozenset(keys), LABELS_HELP) if config.phone_labels else None
    return DecodingDataset(keys, [files[k].speaker for k in keys], [files[k].path for k in keys],
                           sample_rate=config.sample_rate, dtype=config.cache_dtype,
                           min_length=request.min_length, labels=labels,
                           test_split_available=test_split_available)


def build_librispeech(config: LibriSpeechConfig, *, request: DatasetRequest) -> AudioDataset:
    """LibriSpeech-layout corpus (flac/wav), CPC split lists and phone labels."""
    root = Path(config.root).expanduser()
    if not root.is_dir():
        raise UserError(f"LibriSpeech root {root} does not exist. {WHERE_TO_GET} "
                        f"Then set data.dataset.root (e.g. --set data.dataset.root=/path/to/train-clean-100).")
    if request.split not in ("train", "test"):
        raise UserError(f"librispeech has splits 'train' and 'test', not {request.split!r}")
    files, duplicates = scan(root, config.extensions)
    if not files:
        raise UserError(f"no {'/'.join(config.extensions)} files under {root}; expected the "
                        f"LibriSpeech layout SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac. {WHERE_TO_GET}")
    train_ids = read_split_list(config.split_list, "split list (data.dataset.split_list; empty = "
                                "every utterance)", WHERE_TO_GET) if config.split_list else None
    test_ids = read_split_list(config.test_split_list, "test split list (data.dataset.test_split_list; "
                               "empty = none)", WHERE_TO_GET) if config.test_split_list else None
    if request.split == "test" and test_ids is None:
        raise UserError("librispeech: no test_split_list is set, so there is no 'test' split")

    wanted = test_ids if request.split == "test" else train_ids
    extra: dict[str, float] = {}
    if duplicates:
        extra["duplicate_ids"] = duplicates
    if wanted is not None:
        missing = [k for k in wanted if k not in files]
        extra["split_ids_without_audio"] = len(missing)
        if missing and len(missing) == len(wanted):
            raise UserError(f"none of the {len(wanted)} utterances of the {request.split} split list "
                            f"has audio under {root} (e.g. {missing[0]}); is root the right subset?")
        if missing:
            warnings.warn(f"{len(missing)} utterance(s) of the {request.split} split list have no "
                          f"audio under {root} (e.g. {', '.join(missing[:3])})", stacklevel=2)
    if request.access == "sequential":  # read once in order (cpcframe shard): decode on access, no cache
        return decoding(config, files, wanted, request, test_split_available=test_ids is not None)

    # Decode the utterances some split names (all when there are no lists): one cache
    # serves training, the held-out split and the probes.
    if train_ids is None and test_ids is None:
        to_decode = sorted(files)
    else:
        named = set(train_ids or files) | set(test_ids or ())
        to_decode = sorted(k for k in named if k in files)
    fingerprint = {"root": str(root.resolve()),
                   "files": [(str(files[k].path.relative_to(root)), files[k].size, files[k].mtime_ns)
                             for k in to_decode]}

    def items():
        return (SourceItem(k, files[k].speaker, files[k].path) for k in to_decode)

    cache = build_cache(Path(request.cache_dir) / "audio", "librispeech", fingerprint, items,
                        sample_rate=config.sample_rate, dtype=config.cache_dtype,
                        workers=config.decode_workers)
    labels = load_labels(cache, config.phone_labels, LABELS_HELP) if config.phone_labels else None

    return select(cache, wanted, min_length=request.min_length, source=f"librispeech {root}",
                  labels=labels, test_split_available=test_ids is not None, extra_stats=extra)
