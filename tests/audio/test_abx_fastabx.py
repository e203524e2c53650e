"""The ``fastabx`` backend's selection and plumbing, driven by a stand-in ``fastabx`` module.

The real fastabx needs Python 3.12+ and is not installed where these tests run, so its own
numbers are untested here. What is tested: that cpcframe finds it only when importable,
calls ``fastabx.zerospeech_abx`` with the libri-light options (angular distance, the
frequency as an exact number, the item file, ``.npy`` features loaded by cpcframe's
feature maker), adapts to releases without the ``device``/``progress`` keywords, and
records which slicing convention applied. The stand-in scores with the tests' NumPy
reference, so a wrong frequency or wrong features would change the numbers.
"""

from __future__ import annotations

import sys
import types
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from cpcframe import UserError
from cpcframe_audio.abx import backends
from cpcframe_audio.abx.items import items_from_frame_labels, read_item_file, write_item_file

from reference_abx import abx_error

STEP = 0.01


def fake_fastabx(calls: list[dict], *, old: bool = False) -> types.ModuleType:
    """A ``fastabx`` module whose ``zerospeech_abx`` records its arguments and scores with the
    NumPy reference (``old``: the signature of releases without ``device`` and ``progress``)."""
    module = types.ModuleType("fastabx")
    module.__version__ = "0.0-standin"

    def score(item, root, *, max_size_group, max_x_across, speaker, context, distance, frequency,
              feature_maker, extension, seed, **rest):
        calls.append({"item": Path(item), "root": Path(root), "max_size_group": max_size_group,
                      "max_x_across": max_x_across, "speaker": speaker, "context": context,
                      "distance": distance, "frequency": frequency, "extension": extension,
                      "seed": seed, **rest})
        features = {p.stem: feature_maker(p).numpy() for p in Path(root).glob(f"*{extension}")}
        return abx_error(features, read_item_file(item), 1 / frequency, context, speaker)

    if old:
        def zerospeech_abx(item, root, *, max_size_group, max_x_across, speaker="within", context="within",
                           distance="angular", frequency=50, feature_maker=None, extension=".pt", seed=0):
            return score(item, root, max_size_group=max_size_group, max_x_across=max_x_across, speaker=speaker,
                         context=context, distance=distance, frequency=frequency, feature_maker=feature_maker,
                         extension=extension, seed=seed)
    else:
        def zerospeech_abx(item, root, *, max_size_group, max_x_across=None, speaker="within", context="within",
                           distance="angular", frequency=50, feature_maker=None, extension=".pt", seed=0,
                           device=None, write_csv=None, progress=True):
            return score(item, root, max_size_group=max_size_group, max_x_across=max_x_across, speaker=speaker,
                         context=context, distance=distance, frequency=frequency, feature_maker=feature_maker,
                         extension=extension, seed=seed, device=device, progress=progress)
    module.zerospeech_abx = zerospeech_abx
    return module


def corpus(tmp_path):
    """Two speakers' made-up ``(T, D)`` features (phones = noisy centroids) and their item file."""
    rng = np.random.default_rng(1)
    centroids = rng.normal(size=(4, 5))
    folder = tmp_path / "features"
    folder.mkdir()
    labels, speakers, features = {}, {}, {}
    for s in range(2):
        for u in range(3):
            key = f"{s + 1}-1-{u:04d}"
            frames = np.array([0] * 2 + [p for w in rng.integers(1, 4, 30) for p in [int(w)] * int(rng.integers(3, 6))]
                              + [0] * 2)
            feats = (centroids[frames] + 1.5 * rng.normal(size=(len(frames), 5))).astype(np.float32)
            np.save(folder / f"{key}.npy", feats)
            labels[key], speakers[key], features[key] = frames, str(s + 1), feats
    items = items_from_frame_labels(labels, speakers, STEP, {0: "sil"})
    return folder, write_item_file(tmp_path / "test.item", items), items, features


OPTIONS = {"max_size_group": 1000, "max_x_across": 1000, "seed": 3459, "device": "cpu"}


def test_fastabx_is_found_only_when_importable(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastabx", None)  # what an import of a missing module sees
    assert not backends.available("fastabx")
    assert backends.get_backend("fastabx").version() is None
    with pytest.raises(UserError, match=r"fastabx backend needs fastabx \(Python 3.12\+\).*--backend libriabx2"):
        backends.get_backend("fastabx").score(Path("."), Path("x.item"), STEP, [("phone", "within")], **OPTIONS)
    monkeypatch.setitem(sys.modules, "fastabx", fake_fastabx([]))
    assert backends.available("fastabx")
    assert backends.get_backend("fastabx").version() == "0.0-standin"
    with pytest.raises(UserError, match="unknown ABX backend 'fastab'.*did you mean 'fastabx'"):
        backends.get_backend("fastab")


@pytest.mark.parametrize("old", [False, True], ids=["current", "without-device-and-progress"])
def test_fastabx_gets_the_libri_light_options_and_the_features(tmp_path, monkeypatch, old):
    calls: list[dict] = []
    monkeypatch.setitem(sys.modules, "fastabx", fake_fastabx(calls, old=old))
    folder, item_file, items, features = corpus(tmp_path)
    got = backends.get_backend("fastabx").score(folder, item_file, STEP, backends.CONDITIONS, **OPTIONS)
    assert [(c["context"], c["speaker"]) for c in calls] == [("within", "within"), ("within", "across"),
                                                              ("any", "within"), ("any", "across")]
    for call in calls:
        assert call["frequency"] == 100 and type(call["frequency"]) is int
        assert (call["distance"], call["extension"], call["item"], call["root"]) == ("angular", ".npy", item_file,
                                                                                     folder)
        assert (call["max_size_group"], call["max_x_across"], call["seed"]) == (1000, 1000, 3459)
        assert ("device" in call, "progress" in call) == ((False, False) if old else (True, True))
        if not old:
            assert call["device"] == "cpu" and call["progress"] is False
    for (context, speaker), value in got.items():
        want = abx_error(features, items, STEP, "within" if context == "triphone" else "any", speaker)
        assert value == pytest.approx(want, abs=1e-6) and 0.0 < want < 0.5


def test_frequency_is_exact_and_the_slicing_convention_is_recorded(monkeypatch):
    assert backends.frequency_of(0.01) == 100 and backends.frequency_of(0.02) == 50
    assert backends.frequency_of(0.0125) == 80
    assert backends.frequency_of(1 / 30) == Decimal("30") and type(backends.frequency_of(1 / 30)) is int
    assert backends.frequency_of(0.015) == Decimal("66.666666667")
    fast, libri = backends.get_backend("fastabx"), backends.get_backend("libriabx2")
    monkeypatch.delenv(backends.FASTABX_LIBRILIGHT_ENV, raising=False)
    assert fast.slicing == backends.FASTABX_SLICING and fast.slicing != libri.slicing
    # An item of 0.10-0.15 s at 10 ms: libri-light keeps frames 10..13, fastabx 10..14.
    assert libri.span(0.10, 0.15, STEP, 100) == (10, 14) and fast.span(0.10, 0.15, STEP, 100) == (10, 15)
    monkeypatch.setenv(backends.FASTABX_LIBRILIGHT_ENV, "1")
    assert fast.slicing.endswith(libri.slicing) and fast.span(0.10, 0.15, STEP, 100) == (10, 14)
