"""Fixtures of the audio plugin's tests: tiny corpora written into ``tmp_path``."""

from __future__ import annotations

import pytest
import torch

from audiodata import write_utterance


@pytest.fixture(autouse=True)
def _audio_test_env(tmp_path, monkeypatch):
    """Caches go to the test's folder; one thread keeps the shared CPU quiet."""
    monkeypatch.setenv("CPCFRAME_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_librispeech(tmp_path) -> dict:
    """3 speakers, 7 utterances of 0.5-1 s, split lists and phone labels.

    The label file also names 2 utterances without audio; 1 utterance has no labels.
    """
    root = tmp_path / "LibriSpeech" / "train-clean-100"
    keys = ["19-198-0001", "19-198-0002", "19-227-0003", "103-1240-0001", "103-1240-0002",
            "1034-121119-0001", "1034-121119-0002"]
    lengths = {}
    for i, key in enumerate(keys):
        n = 8000 + 1000 * i
        write_utterance(root, key, n, freq=150.0 * (1 + keys.index(key) // 3), seed=i)
        lengths[key] = n
    labelled = keys[:-1]
    lines = [f"{k} " + " ".join(str((j // 5) % 4) for j in range(lengths[k] // 160 - 1)) for k in labelled]
    lines += ["999-1-0001 0 1 2 3", "998-1-0002 3 3 3"]
    labels = tmp_path / "converted_aligned_phones.txt"
    labels.write_text("\n".join(lines) + "\n")
    train = tmp_path / "train_split.txt"
    train.write_text("\n".join(["19-198-0001", "19-227-0003", "103-1240-0001", "1034-121119-0001",
                                "1034-121119-0002"]) + "\n")
    test = tmp_path / "test_split.txt"
    test.write_text("19-198-0002\n103-1240-0002\n")
    return {"root": root, "keys": keys, "lengths": lengths, "labels": labels, "train": train,
            "test": test, "labelled": labelled}
