"""``synthetic_speech``: the built-in corpus, generated in seconds, read like LibriSpeech."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile

from cpcframe import DatasetRequest, UserError
from cpcframe_audio.data import synth
from cpcframe_audio.data.synthetic import SyntheticSpeechConfig, build_synthetic_speech, corpus_root

SMALL = dict(speakers=4, utterances_per_speaker=4, min_seconds=0.6, max_seconds=1.0)


def build(tmp_path, split="train", **options):
    config = SyntheticSpeechConfig(**{**SMALL, **options})
    request = DatasetRequest(split=split, cache_dir=tmp_path / "cache", min_length=1600)
    return config, request, build_synthetic_speech(config, request=request)


def test_layout_labels_and_splits(tmp_path):
    started = time.perf_counter()
    config, request, train = build(tmp_path)
    assert time.perf_counter() - started < 20  # seconds, even on a busy machine
    root = corpus_root(config, request)
    flacs = sorted(root.glob("audio/*/*/*.flac"))
    assert len(flacs) == 16
    assert all(f.name.startswith(f.parent.parent.name + "-" + f.parent.name + "-") for f in flacs)
    info = soundfile.info(flacs[0])
    assert info.samplerate == 16000 and info.channels == 1
    _, _, test = build(tmp_path, split="test")
    assert len(train) == 12 and len(test) == 4  # 25 % of each speaker's utterances held out
    assert not set(train.keys) & set(test.keys)
    assert sorted(train.speaker_ids) == sorted(test.speaker_ids) and len(train.speaker_ids) == 4
    for ds in (train, test):
        for i in range(len(ds)):
            ex = ds[i]
            assert ex.labels is not None
            assert len(ex.labels) == ds.lengths[i] // 160  # one label per 10 ms frame
            assert 0 <= int(ex.labels.min()) and int(ex.labels.max()) < synth.NUM_PHONES
    assert train.stats["labelled"] == 12 and train.stats["labels_without_audio"] == 0  # the cache holds both splits
    names = (root / "phones.txt").read_text().split()
    assert names[1::2] == list(synth.PHONE_NAMES)


def test_deterministic_and_seeded(tmp_path):
    _, _, a = build(tmp_path / "a")
    _, _, b = build(tmp_path / "b")
    _, _, c = build(tmp_path / "c", seed=1)
    assert a.keys == b.keys
    assert np.array_equal(a[0].data.numpy(), b[0].data.numpy())
    assert not np.array_equal(a[0].data.numpy()[:8000], c[0].data.numpy()[:8000])


def test_phones_sound_different_and_speakers_differ(tmp_path):
    """Frames of one phone are closer to each other than to other phones (log spectra)."""
    rng = np.random.default_rng(0)
    speaker = synth.make_speaker(rng)
    labels = np.repeat([synth.PHONE_NAMES.index(p) for p in ("aa", "iy", "s", "aa", "iy", "s")], 20)
    wave = synth.synthesize(rng, speaker, labels)
    assert wave.shape == (len(labels) * 160,) and np.isfinite(wave).all()
    frames = wave.reshape(-1, 160)
    spec = np.log(np.abs(np.fft.rfft(frames * np.hanning(160), axis=1)) + 1e-6)
    centre = [spec[i * 20 + 5:i * 20 + 15].mean(0) for i in range(6)]
    same = np.linalg.norm(centre[0] - centre[3]) + np.linalg.norm(centre[1] - centre[4])
    other = np.linalg.norm(centre[0] - centre[1]) + np.linalg.norm(centre[1] - centre[2])
    assert same < other
    f0 = [synth.make_speaker(np.random.default_rng(s)).f0 for s in range(20)]
    assert max(f0) / min(f0) > 1.5


def test_root_holding_something_else_is_refused(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "file.txt").write_text("x")
    with pytest.raises(UserError, match="not a synthetic corpus"):
        build(tmp_path, root=str(other))
    build(tmp_path, root=str(tmp_path / "mine"))
    with pytest.raises(UserError, match="other options"):
        build(tmp_path, root=str(tmp_path / "mine"), speakers=5)
