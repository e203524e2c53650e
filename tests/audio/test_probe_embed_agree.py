"""The speech probe and ``cpcframe embed`` encode an utterance the same way (issue 17 part 5).

The probe cuts an utterance into pieces of the training window (``ViewSampler.inference_chunk``)
before its context model runs; embed used to encode whole files, so a GRU saw 10x longer
sequences there and the features a user exported were not the ones the probe scored.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

import cpcframe
from cpcframe.cli import main
from cpcframe.runs.features import load_features
from cpcframe_audio.probe import SpeechProbe

from audiodata import QUICKSTART, run_args

#: The speech quickstart made tiny: windows of 1600 samples (10 latents) on 0.5-1 s
#: utterances, so every utterance is several windows long.
SHORT = ("data.dataset.speakers=4", "data.dataset.utterances_per_speaker=6", "data.dataset.min_seconds=0.5",
         "data.dataset.max_seconds=1.0", "data.views.window=1600", "data.batch_size=4", "train.steps=4",
         "train.validate_every=0", "probe.max_frames=500", "probe.iterations=10", "loss.num_negatives=32")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("agree") / "run"
    assert main(run_args(QUICKSTART, run, *SHORT, "seed=3") + ["--no-probe"]) == 0
    return run


def test_embed_gives_the_features_the_speech_probe_scored(run_dir, tmp_path, monkeypatch, capsys):
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    collect = SpeechProbe.collect

    def recording(self, uses, features, hop):  # the first extractor is the trained model's
        if not seen:
            seen.extend((wave, features(wave)) for wave in (u.dataset.waveform(u.index) for u in uses[:4]))
        return collect(self, uses, features, hop)

    monkeypatch.setattr(SpeechProbe, "collect", recording)
    assert main(["probe", str(run_dir)]) == 0
    assert len(seen) == 4
    paths = []
    for i, (wave, _) in enumerate(seen):
        assert wave.shape[-1] > 3 * 1600  # several windows: chunking matters
        path = tmp_path / f"utt{i}.wav"
        soundfile.write(path, wave.reshape(-1).numpy(), 16000, subtype="FLOAT")  # float32 kept exactly
        paths.append(path)
    out = tmp_path / "features.npz"
    assert main(["embed", str(run_dir), *map(str, paths), "--out", str(out)]) == 0
    exported = load_features(out)
    for i, (_, probed) in enumerate(seen):
        np.testing.assert_allclose(exported[f"utt{i}"], probed.numpy(), rtol=1e-5, atol=1e-6)
    # Whole files (the old default) give other context features: the check above can fail.
    whole = cpcframe.load(run_dir).embed(paths[0], chunk=0)["utt0"]
    assert whole.shape == exported["utt0"].shape
    assert not np.allclose(whole, exported["utt0"], atol=1e-4)


def test_embed_chunk_is_recorded_and_checked(run_dir, tmp_path, capsys):
    wave = 0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "a.wav"
    soundfile.write(path, wave.numpy(), 16000, subtype="FLOAT")
    loaded = cpcframe.load(run_dir)
    assert loaded.view_sampler().inference_chunk() == 1600  # the training window
    for chunk in (0, 1600, 3200, 64000):
        assert loaded.embed(path, chunk=chunk)["a"].shape == (8000 // 160, 128)
    assert main(["embed", str(run_dir), str(path), "--layout", "per-file", "--out", str(tmp_path / "f"),
                 "--chunk", "3200"]) == 0
    from cpcframe.runs.features import load_per_file

    arrays, sidecar = load_per_file(tmp_path / "f")
    assert sidecar["chunk"] == 3200
    np.testing.assert_allclose(arrays["a"], loaded.embed(path, chunk=3200)["a"], rtol=1e-6)
    capsys.readouterr()
    assert main(["embed", str(run_dir), str(path), "--out", str(tmp_path / "x.npz"), "--chunk", "-5"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "cpcframe: error: chunk must be >= 0 (0 = whole inputs), got -5"
