"""The decode cache: built once, reused by later builds, rebuilt when the corpus changes."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile

from audiodata import write_speakers, write_utterance
from cpcframe import DatasetRequest
from cpcframe_audio.data.librispeech import LibriSpeechConfig, build_librispeech


@pytest.fixture
def reads(monkeypatch):
    """Counts soundfile.read calls (every decode goes through it)."""
    calls = []
    real = soundfile.read

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(soundfile, "read", counting)
    return calls


def build(root, tmp_path, **options):
    request = DatasetRequest(cache_dir=tmp_path / "cache")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_librispeech(LibriSpeechConfig(root=str(root), decode_workers=1, **options),
                                 request=request)


def test_second_build_reads_no_file(tmp_path, reads):
    root = tmp_path / "corpus"
    keys = write_speakers(root, {"1": 200.0, "2": 300.0}, 2, 3200)
    first = build(root, tmp_path)
    assert len(reads) == len(keys)
    reads.clear()
    second = build(root, tmp_path)
    assert reads == []  # served from the memory-mapped cache
    assert second.cache.path == first.cache.path
    assert np.array_equal(second[0].data.numpy(), first[0].data.numpy())
    assert len(list((tmp_path / "cache" / "audio").iterdir())) == 1


def test_changed_or_touched_file_invalidates_the_cache(tmp_path, reads):
    root = tmp_path / "corpus"
    write_speakers(root, {"1": 200.0, "2": 300.0}, 2, 3200)
    first = build(root, tmp_path)
    i = first.keys.index("1-10-0000")
    before = first[i].data.clone()
    # New content under the same name: decoded again, new samples served.
    path = write_utterance(root, "1-10-0000", 4800, freq=440.0, seed=9)
    reads.clear()
    second = build(root, tmp_path)
    assert len(reads) == 4 and second.cache.path != first.cache.path
    j = second.keys.index("1-10-0000")
    assert second[j].data.shape == (1, 4800) and before.shape == (1, 3200)
    # Touching a file (same bytes, new mtime) is a change too.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    reads.clear()
    third = build(root, tmp_path)
    assert len(reads) == 4 and third.cache.path not in (first.cache.path, second.cache.path)
    # A new file is a change; decoding options are part of the key as well.
    write_utterance(root, "2-10-0009", 3200)
    reads.clear()
    assert len(build(root, tmp_path)) == 5 and len(reads) == 5
    reads.clear()
    build(root, tmp_path, cache_dtype="float32")
    assert len(reads) == 5


def test_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    root = tmp_path / "corpus"
    write_speakers(root, {"1": 200.0}, 3, 3200)
    real = soundfile.read
    count = []

    def failing(*args, **kwargs):
        count.append(1)
        if len(count) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(soundfile, "read", failing)
    with pytest.raises(KeyboardInterrupt):
        build(root, tmp_path)
    assert not any((tmp_path / "cache" / "audio").iterdir())  # no partial cache, no temp folder
    monkeypatch.setattr(soundfile, "read", real)
    assert len(build(root, tmp_path)) == 3
