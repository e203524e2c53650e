"""The ``librispeech`` dataset: layout, split lists, phone labels, bad files, missing data."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

from audiodata import write_utterance
from cpcframe import DatasetRequest, Example, UserError
from cpcframe_audio.data.librispeech import LibriSpeechConfig, build_librispeech


def build(root, tmp_path, split="train", min_length=0, **options):
    request = DatasetRequest(split=split, cache_dir=tmp_path / "cache", min_length=min_length)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = build_librispeech(LibriSpeechConfig(root=str(root), **options), request=request)
    return dataset, [str(w.message) for w in caught]


def test_reads_layout_speakers_and_items(tiny_librispeech, tmp_path):
    t = tiny_librispeech
    ds, _ = build(t["root"], tmp_path)
    assert len(ds) == len(t["keys"])
    assert sorted(ds.keys) == sorted(t["keys"])
    # speakers 19, 103, 1034 -> dense indices in numeric order
    assert ds.speaker_ids == ["19", "103", "1034"]
    for i, key in enumerate(ds.keys):
        example = ds[i]
        assert isinstance(example, Example)
        assert example.key == key
        assert example.data.shape == (1, t["lengths"][key])
        assert example.data.dtype == torch.float16  # the cache's dtype; windows are float32
        assert ds.speaker_ids[example.group] == key.split("-")[0]
        assert example.labels is None
    assert ds.groups == [ds[i].group for i in range(len(ds))]
    assert ds.skipped == {}
    assert ds.stats["utterances"] == 7 and ds.stats["speakers"] == 3


def test_samples_match_the_file(tiny_librispeech, tmp_path):
    import soundfile

    t = tiny_librispeech
    ds, _ = build(t["root"], tmp_path, cache_dtype="float32")
    key = ds.keys[3]
    path = next(t["root"].rglob(f"{key}.flac"))
    expected, _ = soundfile.read(path, dtype="float32")
    np.testing.assert_allclose(ds[3].data[0].numpy(), expected, atol=1e-6)
    ds16, _ = build(t["root"], tmp_path)  # float16 cache: a separate cache, close samples
    np.testing.assert_allclose(ds16[3].data[0].numpy(), expected, atol=2e-3)
    assert ds16.waveform(3).dtype == torch.float32 and ds16[3].data.dtype == torch.float16


def test_windows_of_stored_float16_equal_windows_of_float32(tiny_librispeech, tmp_path):
    """Items travel in the cache's dtype; the window the view keeps is the same float32."""
    from cpcframe_audio.views import AudioWindows, AudioWindowsConfig

    ds, _ = build(tiny_librispeech["root"], tmp_path)
    views = AudioWindows(AudioWindowsConfig(window=1600))
    for i in range(len(ds)):
        stored = ds[i]
        converted = Example(data=ds.waveform(i), group=stored.group, key=stored.key)
        (a,), (b,) = (views.sample(e, torch.Generator().manual_seed(i)) for e in (stored, converted))
        assert a.dtype == torch.float32 and torch.equal(a, b)


def test_split_lists_and_labels_with_absent_audio(tiny_librispeech, tmp_path):
    t = tiny_librispeech
    opts = dict(split_list=str(t["train"]), test_split_list=str(t["test"]), phone_labels=str(t["labels"]))
    train, messages = build(t["root"], tmp_path, **opts)
    assert train.keys == t["train"].read_text().split()  # in the list's order
    assert train.test_split_available
    # 2 label lines name utterances without audio; 1 training utterance has no labels.
    assert train.stats["labels_without_audio"] == 2
    assert train.stats["audio_without_labels"] == 1
    assert train.stats["labelled"] == 4
    assert any("2 labelled utterance(s) have no audio" in m for m in messages)
    assert any("no phone labels" in m for m in messages)
    for i, key in enumerate(train.keys):
        labels = train[i].labels
        if key in t["labelled"]:
            assert labels.dtype == torch.long
            assert len(labels) == t["lengths"][key] // 160 - 1
            assert labels[:5].tolist() == [0] * 5 and labels[5:10].tolist() == [1] * 5
        else:
            assert labels is None
    test, _ = build(t["root"], tmp_path, split="test", **opts)
    assert test.keys == t["test"].read_text().split()
    assert not set(test.keys) & set(train.keys)
    # Speaker indices are dense within each split.
    assert sorted(set(test.groups)) == list(range(len(test.speaker_ids)))


def test_test_split_needs_a_list(tiny_librispeech, tmp_path):
    with pytest.raises(UserError, match="test_split_list"):
        build(tiny_librispeech["root"], tmp_path, split="test")


def test_split_ids_without_audio_are_counted(tiny_librispeech, tmp_path):
    t = tiny_librispeech
    split = tmp_path / "split.txt"
    split.write_text("19-198-0001\n5-5-0005\n")
    ds, messages = build(t["root"], tmp_path, split_list=str(split))
    assert ds.keys == ["19-198-0001"]
    assert ds.stats["split_ids_without_audio"] == 1
    assert any("no audio" in m for m in messages)
    split.write_text("5-5-0005\n")
    with pytest.raises(UserError, match="none of the 1 utterances"):
        build(t["root"], tmp_path, split_list=str(split))


def test_corrupt_and_short_files_are_skipped_and_counted(tiny_librispeech, tmp_path):
    t = tiny_librispeech
    (t["root"] / "19" / "198" / "19-198-0009.flac").write_bytes(b"not audio at all")
    (t["root"] / "19" / "198" / "19-198-0010.flac").write_bytes(b"")
    ds, messages = build(t["root"], tmp_path, min_length=10000)
    assert ds.skipped == {"unreadable": 2, "too_short": 2}  # two tiny files: 8000 and 9000 samples
    assert len(ds) == len(t["keys"]) - 2
    assert all(ds.lengths >= 10000)
    assert any("unreadable" in m for m in messages) and any("shorter than 10000" in m for m in messages)


def test_wav_files_other_rates_and_channels(tmp_path):
    root = tmp_path / "corpus"
    write_utterance(root, "7-1-0001", 4000, suffix=".wav")
    write_utterance(root, "7-1-0002", 4000, rate=8000, channels=2)
    ds, _ = build(root, tmp_path)
    lengths = dict(zip(ds.keys, ds.lengths.tolist()))
    assert lengths == {"7-1-0001": 4000, "7-1-0002": 8000}  # resampled to 16 kHz, mono


def test_missing_root_says_where_to_get_data(tmp_path):
    with pytest.raises(UserError) as info:
        build(tmp_path / "nowhere", tmp_path)
    message = str(info.value)
    assert "openslr.org/12" in message and "train-clean-100" in message
    assert "converted_aligned_phones.txt" in message and "CPC_audio" in message


def test_empty_root_and_missing_label_file(tmp_path, tiny_librispeech):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .flac/.wav files"):
        build(tmp_path / "empty", tmp_path)
    with pytest.raises(UserError, match="phone label file"):
        build(tiny_librispeech["root"], tmp_path, phone_labels=str(tmp_path / "missing.txt"))


def test_pickles_without_samples(tiny_librispeech, tmp_path):
    ds, _ = build(tiny_librispeech["root"], tmp_path, phone_labels=str(tiny_librispeech["labels"]))
    before = ds[0].data.clone()
    blob = pickle.dumps(ds)  # what a loader worker receives
    assert len(blob) < 20_000
    again = pickle.loads(blob)
    assert torch.equal(again[0].data, before)
    assert torch.equal(again[0].labels, ds[0].labels)


def test_config_validation():
    with pytest.raises(ValueError, match="extensions"):
        LibriSpeechConfig(extensions=())
    with pytest.raises(ValueError, match="start with"):
        LibriSpeechConfig(extensions=("flac",))


def test_missing_split_and_label_files_name_their_keys(tiny_librispeech, tmp_path):
    root = tiny_librispeech["root"]
    for key, option in (("data.dataset.split_list", "split_list"),
                        ("data.dataset.test_split_list", "test_split_list"),
                        ("data.dataset.phone_labels", "phone_labels")):
        with pytest.raises(UserError) as info:
            build(root, tmp_path, **{option: str(tmp_path / "absent.txt")})
        assert key in str(info.value) and "CPC_audio" in str(info.value) and "absent.txt" in str(info.value)
