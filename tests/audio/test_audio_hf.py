"""``hf_audio``: a Hugging Face ``datasets`` source saved with ``save_to_disk``, decoded by soundfile."""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pytest
import soundfile

from cpcframe import DatasetRequest, UserError
from cpcframe_audio.data.hf_audio import HFAudioConfig, build_hf_audio

datasets = pytest.importorskip("datasets")


def flac_bytes(samples: int, freq: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    wave = (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(samples)).astype(np.float32)
    buf = io.BytesIO()
    soundfile.write(buf, wave, 16000, format="FLAC")
    return buf.getvalue()


def rows(ids, speakers, lengths, corrupt=()):
    audio = [{"bytes": b"garbage" if i in corrupt else flac_bytes(n, 100.0 + 50 * k, k),
              "path": f"{i}.flac"} for k, (i, n) in enumerate(zip(ids, lengths))]
    return {"id": ids, "speaker_id": speakers, "audio": audio}


@pytest.fixture
def saved(tmp_path):
    """A DatasetDict with train (4 rows, one corrupt) and test (2 rows) splits on disk."""
    train = datasets.Dataset.from_dict(rows(["a-1", "a-2", "b-1", "b-2"], [7, 7, 9, 9],
                                            [4000, 5000, 6000, 3000], corrupt={"b-2"}))
    test = datasets.Dataset.from_dict(rows(["a-3", "b-3"], [7, 9], [4500, 5500]))
    dd = datasets.DatasetDict({"train": train, "test": test}).cast_column("audio", datasets.Audio(decode=False))
    path = tmp_path / "hf"
    dd.save_to_disk(str(path))
    return path


def build(config, tmp_path, split="train", min_length=0):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build_hf_audio(config, request=DatasetRequest(split=split, cache_dir=tmp_path / "cache",
                                                           min_length=min_length))
    return ds, [str(w.message) for w in caught]


def test_saved_dataset_dict_train_and_test(saved, tmp_path):
    cfg = HFAudioConfig(path=str(saved), split="train", test_split="test", cache_dtype="float32")
    train, messages = build(cfg, tmp_path)
    assert train.keys == ["a-1", "a-2", "b-1"]  # the corrupt row is skipped and counted
    assert train.skipped == {"unreadable": 1}
    assert any("unreadable" in m for m in messages)
    assert train.speaker_ids == ["7", "9"] and train.groups == [0, 0, 1]
    assert list(train.lengths) == [4000, 5000, 6000]
    expected, _ = soundfile.read(io.BytesIO(flac_bytes(5000, 150.0, 1)), dtype="float32")
    np.testing.assert_allclose(train[1].data[0].numpy(), expected, atol=1e-6)
    assert train.test_split_available
    test, _ = build(cfg, tmp_path, split="test")
    assert test.keys == ["a-3", "b-3"] and test.speaker_ids == ["7", "9"]
    assert "torchcodec" not in sys.modules  # bytes decoded by soundfile, never torchcodec


def test_single_dataset_without_id_or_speaker_columns(tmp_path):
    data = datasets.Dataset.from_dict({"audio": [{"bytes": flac_bytes(3000, 200.0, 0), "path": None},
                                                 {"bytes": flac_bytes(1000, 300.0, 1), "path": None}]})
    path = tmp_path / "single"
    data.save_to_disk(str(path))
    ds, _ = build(HFAudioConfig(path=str(path), speaker_column="", id_column=""), tmp_path, min_length=2000)
    assert ds.keys == ["train-00000000"] and ds.groups == [0]
    assert ds.skipped == {"too_short": 1}


def test_cache_is_reused(saved, tmp_path, monkeypatch):
    cfg = HFAudioConfig(path=str(saved), split="train", decode_workers=1)
    build(cfg, tmp_path)
    calls = []
    real = soundfile.read
    monkeypatch.setattr(soundfile, "read", lambda *a, **k: calls.append(1) or real(*a, **k))
    again, _ = build(cfg, tmp_path)
    assert len(again) == 3 and calls == []


def test_errors_name_the_key(saved, tmp_path):
    with pytest.raises(UserError, match="audio_column"):
        build(HFAudioConfig(path=str(saved), audio_column="sound"), tmp_path)
    with pytest.raises(UserError, match="has splits train, test, not 'dev'"):
        build(HFAudioConfig(path=str(saved), split="dev"), tmp_path)
    with pytest.raises(UserError, match="no test_split"):
        build(HFAudioConfig(path=str(saved)), tmp_path, split="test")


def stream_without_features(monkeypatch, records):
    """``load_dataset(..., streaming=True)`` answered by a stream that declares no features
    (``column_names`` is ``None``), as generator- and JSON-backed hub datasets are."""
    def gen():
        yield from records

    stream = datasets.IterableDataset.from_generator(gen)
    assert stream.column_names is None
    seen = {}

    def load_dataset(path, name=None, split=None, streaming=False):
        seen.update(path=path, split=split, streaming=streaming)
        return stream

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return seen


def test_streaming_dataset_without_declared_columns(tmp_path, monkeypatch):
    records = [{"id": f"u{i}", "speaker_id": 3 + i % 2, "audio": {"bytes": flac_bytes(4000 + 500 * i, 200.0, i),
                                                                 "path": None}} for i in range(3)]
    seen = stream_without_features(monkeypatch, records)
    cfg = HFAudioConfig(path="someone/speech", split="train", streaming=True, cache_dtype="float32")
    ds, messages = build(cfg, tmp_path)
    assert seen == {"path": "someone/speech", "split": "train", "streaming": True}
    assert ds.keys == ["u0", "u1", "u2"] and ds.speaker_ids == ["3", "4"] and ds.groups == [0, 1, 0]
    assert list(ds.lengths) == [4000, 4500, 5000]
    assert any("no content fingerprint" in m for m in messages)


def test_streaming_dataset_without_declared_columns_checks_its_rows(tmp_path, monkeypatch):
    no_id = [{"speaker_id": 1, "audio": {"bytes": flac_bytes(3000, 200.0, 0), "path": None}}]
    stream_without_features(monkeypatch, no_id)
    ds, _ = build(HFAudioConfig(path="x", streaming=True), tmp_path)
    assert ds.keys == ["train-00000000"]  # no id column: row numbers, as for declared columns
    stream_without_features(monkeypatch, [{"id": "a", "sound": {"bytes": b"", "path": None}}])
    with pytest.raises(UserError, match=r"no column 'audio' \(columns: id, sound\); set data.dataset.audio_column"):
        build(HFAudioConfig(path="y", streaming=True, speaker_column=""), tmp_path)
    stream_without_features(monkeypatch, no_id)
    with pytest.raises(UserError, match="no column 'spk'.*speaker_column"):
        build(HFAudioConfig(path="z", streaming=True, speaker_column="spk"), tmp_path)
