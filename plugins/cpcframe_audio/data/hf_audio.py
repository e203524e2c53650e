"""``hf_audio``: a Hugging Face ``datasets`` audio source, e.g. ``openslr/librispeech_asr``.

The audio column is read undecoded (``Audio(decode=False)``) and the bytes are decoded
with soundfile, so neither torchcodec nor FFmpeg is needed. Like ``librispeech`` it is
decoded once into the sample cache and read from there, except when it is read once in
order (``request.access == "sequential"``, ``cpcframe shard``) from a map-style dataset:
then each row is decoded on access and no cache is built. A streamed dataset
(``streaming = true``) is not indexable by row, so it is still decoded into the cache.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any, Literal

import attrs

from cpcframe import DatasetRequest, UserError, validators
from cpcframe_audio.data.cache import DTYPES, SourceItem, build_cache
from cpcframe_audio.data.base import AudioDataset, select
from cpcframe_audio.data.labels import LabelLines, load_labels
from cpcframe_audio.data.streamed import DecodingDataset, RowAudio


@attrs.frozen
class HFAudioConfig:
    """Options of ``hf_audio``.

    Attributes:
        path: a hub name (``openslr/librispeech_asr``), a local dataset script/folder for
            ``load_dataset``, or a folder written by ``save_to_disk``.
        subset: the dataset's configuration, if it has several (``load_dataset``'s
            ``name``: ``clean`` for ``openslr/librispeech_asr``).
        split: the training split (``train.100``).
        test_split: a held-out split for probes (``test``); empty = none.
        audio_column: column holding the audio.
        speaker_column: column holding the speaker id (empty = one group for all).
        id_column: column holding the utterance id (empty or absent = the row number).
        streaming: read with ``streaming=True`` (no full download; rows are read in order
            while the cache is built).
        max_items: read at most this many rows of each split (0 = all).
        phone_labels: optional CPC-format frame labels keyed by ``id_column``.
        sample_rate: Hz; other rates are resampled.
        cache_dtype: ``float16`` or ``float32``.
        decode_workers: decoding threads (0 = one per CPU, up to 8).
    """

    path: str = "openslr/librispeech_asr"
    subset: str = ""
    split: str = "train"
    test_split: str = ""
    audio_column: str = "audio"
    speaker_column: str = "speaker_id"
    id_column: str = "id"
    streaming: bool = False
    max_items: int = attrs.field(default=0, validator=validators.non_negative)
    phone_labels: str = ""
    sample_rate: int = attrs.field(default=16000, validator=validators.positive)
    cache_dtype: Literal["float16", "float32"] = attrs.field(default="float16",
                                                             validator=attrs.validators.in_(DTYPES))
    decode_workers: int = attrs.field(default=0, validator=validators.non_negative)


def _is_saved_dataset(path: Path) -> bool:
    """A folder written by ``save_to_disk`` (a Dataset or a DatasetDict)."""
    return path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json"))


def load_split(config: HFAudioConfig, split: str) -> Any:
    """The ``split`` of the configured dataset, audio left undecoded."""
    import datasets

    local = Path(config.path).expanduser()
    try:
        if _is_saved_dataset(local):
            loaded = datasets.load_from_disk(str(local))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise UserError(f"hf_audio: {local} has splits {', '.join(loaded)}, not {split!r}")
                loaded = loaded[split]
        else:
            loaded = datasets.load_dataset(config.path, config.subset or None, split=split,
                                           streaming=config.streaming)
    except UserError:
        raise
    except FileNotFoundError as exc:
        raise UserError(f"hf_audio: cannot find dataset {config.path!r}: {exc}") from None
    except (ValueError, ConnectionError, OSError) as exc:
        raise UserError(f"hf_audio: cannot load {config.path!r} split {split!r}: {exc}") from None
    columns = loaded.column_names or []
    if columns and config.audio_column not in columns:
        raise UserError(f"hf_audio: {config.path!r} has no column {config.audio_column!r} "
                        f"(columns: {', '.join(columns)}); set data.dataset.audio_column")
    if columns and config.speaker_column and config.speaker_column not in columns:
        raise UserError(f"hf_audio: {config.path!r} has no column {config.speaker_column!r} "
                        f"(columns: {', '.join(columns)}); set data.dataset.speaker_column "
                        "(empty for none)")
    if loaded.features is None:  # a stream that declares no features: nothing would decode the
        return loaded            # audio anyway, and cast_column needs features
    return loaded.cast_column(config.audio_column, datasets.Audio(decode=False))


def _source(audio: Any) -> Any:
    """Encoded bytes (or a local path) of an undecoded ``Audio`` value."""
    if isinstance(audio, dict):
        if audio.get("bytes"):
            return audio["bytes"]
        if audio.get("path"):
            return audio["path"]
    return audio


def _check_row(config: HFAudioConfig, row: dict[str, Any]) -> None:
    """The column checks of :func:`load_split`, on the first row of a stream without features."""
    for column, key in ((config.audio_column, "audio_column"), (config.speaker_column, "speaker_column")):
        if column and column not in row:
            raise UserError(f"hf_audio: rows of {config.path!r} have no column {column!r} "
                            f"(columns: {', '.join(row)}); set data.dataset.{key}")


def decoding(config: HFAudioConfig, data: Any, columns: list[str], split: str, *,
             min_length: int) -> DecodingDataset:
    """The rows of ``data`` (a map-style ``datasets.Dataset``) decoded on access, with the
    keys, groups and labels of the cached dataset; only the id and speaker columns are read
    up front."""
    count = len(data) if not config.max_items else min(len(data), config.max_items)
    meta = [c for c in columns if c in (config.id_column, config.speaker_column) and c != config.audio_column]
    values = data.select_columns(meta)[:count] if meta else {}
    keys = ([str(v) for v in values[config.id_column]] if config.id_column in meta
            else [f"{split}-{n:08d}" for n in range(count)])
    seen: set[str] = set()
    for key in keys:  # as the cache refuses them
        if key in seen:
            raise ValueError(f"duplicate utterance key {key!r}")
        seen.add(key)
    speakers = ([str(v) for v in values[config.speaker_column]] if config.speaker_column in meta
                else ["0"] * count)
    labels = LabelLines(config.phone_labels, frozenset(keys)) if config.phone_labels else None
    audio = RowAudio(data.select_columns([config.audio_column]), config.audio_column, _source, count)
    return DecodingDataset(keys, speakers, audio, sample_rate=config.sample_rate, dtype=config.cache_dtype,
                           min_length=min_length, labels=labels,
                           test_split_available=bool(config.test_split))


def build_hf_audio(config: HFAudioConfig, *, request: DatasetRequest) -> AudioDataset:
    """Hugging Face datasets audio (bytes decoded with soundfile), speaker column as group."""
    if request.split not in ("train", "test"):
        raise UserError(f"hf_audio has splits 'train' and 'test', not {request.split!r}")
    if request.split == "test" and not config.test_split:
        raise UserError("hf_audio: no test_split is set, so there is no 'test' split")
    split = config.split if request.split == "train" else config.test_split
    data = load_split(config, split)
    known = data.column_names  # None: a stream that declares no features; rows are checked instead
    wanted = [c for c in (config.audio_column, config.speaker_column, config.id_column) if c]
    columns = wanted if known is None else [c for c in wanted if c in known]
    fingerprint = {"path": config.path, "name": config.subset, "split": split,
                   "max_items": config.max_items, "columns": columns,
                   "data": getattr(data, "_fingerprint", None)}
    if fingerprint["data"] is None:
        warnings.warn(f"hf_audio: {config.path!r} (streaming) has no content fingerprint; the "
                      "cache is keyed by name and split only", stacklevel=2)

    has_speaker = config.speaker_column in columns
    if request.access == "sequential" and known is not None and not config.streaming:
        # read once in order (cpcframe shard): rows decoded on access, no cache
        return decoding(config, data, columns, split, min_length=request.min_length)

    def items():
        rows = data.select_columns(columns) if known is not None else data
        has_id = config.id_column in columns
        for n, row in enumerate(itertools.islice(rows, config.max_items or None)):
            if n == 0 and known is None:
                _check_row(config, row)
                has_id = config.id_column in row  # absent: row numbers, as for other sources
            key = str(row[config.id_column]) if has_id else f"{split}-{n:08d}"
            speaker = str(row[config.speaker_column]) if has_speaker else "0"
            yield SourceItem(key, speaker, _source(row[config.audio_column]))

    cache = build_cache(Path(request.cache_dir) / "audio", "hf_audio", fingerprint, items,
                        sample_rate=config.sample_rate, dtype=config.cache_dtype,
                        workers=1 if config.streaming else config.decode_workers)
    labels = load_labels(cache, config.phone_labels) if config.phone_labels else None
    return select(cache, None, min_length=request.min_length, source=f"hf_audio {config.path}:{split}",
                  labels=labels, test_split_available=bool(config.test_split))
