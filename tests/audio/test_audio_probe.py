"""The ``speech`` probe: linear phones per frame and speakers per utterance, with baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from audiodata import TINY, run_args
from cpcframe.cli import main
from cpcframe_audio.features import label_positions, mfcc_utterance

SPEAKERS = {"31": 110.0, "32": 240.0, "33": 520.0}


def write_labelled_corpus(root, labels_path, utterances=4, frames=100):
    """Speakers = pitches; phone 1 = the speaker's tone, phone 0 = noise, in runs of 6-14 frames."""
    rng = np.random.default_rng(0)
    lines = []
    for s, (speaker, freq) in enumerate(SPEAKERS.items()):
        for u in range(utterances):
            labels = np.zeros(frames, dtype=int)
            pos, phone = 0, int(rng.integers(2))
            while pos < frames:
                n = int(rng.integers(6, 15))
                labels[pos:pos + n] = phone
                pos, phone = pos + n, 1 - phone
            t = np.arange(frames * 160) / 16000
            tone = 0.3 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6))
            noise = 0.1 * rng.standard_normal(frames * 160)
            wave = np.where(np.repeat(labels, 160) == 1, tone, noise) + 0.003 * rng.standard_normal(frames * 160)
            key = f"{speaker}-7-{u:04d}"
            folder = root / speaker / "7"
            folder.mkdir(parents=True, exist_ok=True)
            soundfile.write(folder / f"{key}.flac", wave.astype(np.float32), 16000)
            lines.append(key + " " + " ".join(map(str, labels[:frames - 1])))  # labels may stop early
    labels_path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def probed_run(tmp_path, capsys):
    """``(run dir, what cpcframe run printed)``."""
    root, labels = tmp_path / "corpus", tmp_path / "phones.txt"
    write_labelled_corpus(root, labels)
    out = tmp_path / "run"
    sets = (f"data.dataset.root={root}", f"data.dataset.phone_labels={labels}", "probe.test_fraction=0.25")
    assert main(run_args(TINY, out, *sets)) == 0  # its [probe] has baselines = true
    return out, capsys.readouterr().out


def test_run_ends_with_probe_table_and_json(probed_run):
    probed_run, printed = probed_run
    assert "probe speech on" in printed
    header = next(line for line in printed.splitlines() if line.startswith("task"))
    assert header.split() == ["task", "cpc", "random_init", "mfcc"]
    assert any(line.startswith("phone ") for line in printed.splitlines())
    assert any(line.startswith("speaker ") for line in printed.splitlines())
    results = json.loads((probed_run / "probe.json").read_text())
    assert set(results) == {"phone", "speaker"}
    for task in results.values():
        assert set(task) == {"cpc", "random_init", "mfcc"}
        assert all(0.0 <= v <= 1.0 for v in task.values())
    # Labels line up with frames: MFCCs separate tone from noise and the three pitches.
    assert results["phone"]["mfcc"] > 0.9
    assert results["speaker"]["mfcc"] == 1.0
    details = json.loads((probed_run / "probe_speech_details.json").read_text())
    assert details["phone"]["classes"] == 2 and details["speaker"]["speakers"] == 3
    # Held out within the corpus: 3 of 12 utterances for phones, 1 per speaker for speakers.
    assert details["speaker"]["train_utterances"] == 9 and details["speaker"]["test_utterances"] == 3
    assert 0 < details["phone"]["test_frames"] < details["phone"]["train_frames"]


def test_probe_command_without_baselines(probed_run, capsys):
    probed_run, _ = probed_run
    assert main(["probe", str(probed_run), "--set", "probe.baselines=false", "--set", "probe.tasks=[\"speaker\"]"]) == 0
    results = json.loads((probed_run / "probe.json").read_text())
    assert results.keys() == {"speaker"} and results["speaker"].keys() == {"cpc"}
    assert "random_init" not in capsys.readouterr().out


def test_label_positions_and_mfcc_frames():
    assert label_positions(5, 160, 5).tolist() == [0, 1, 2, 3, 4]
    assert label_positions(6, 320, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert label_positions(4, 160, 2).tolist() == [0, 1, 1, 1]  # clipped to the features
    import torch

    mfcc = mfcc_utterance(torch.randn(1, 1600) * 0.1)
    assert mfcc.shape == (10, 39)  # one frame per 10 ms, 13 cepstra with deltas


def test_probe_command_with_the_mlp_classifier_too(probed_run):
    probed_run, _ = probed_run
    sets = ["--set", 'probe.classifiers=["linear", "mlp"]', "--set", "probe.mlp.hidden=32",
            "--set", "probe.mlp.epochs=20"]
    assert main(["probe", str(probed_run), *sets]) == 0
    results = json.loads((probed_run / "probe.json").read_text())
    for task in results.values():
        assert set(task) == {"cpc", "cpc_mlp", "random_init", "random_init_mlp", "mfcc", "mfcc_mlp"}
    # The MLP learns what a linear map of MFCCs learns here (tone vs noise, three pitches).
    assert results["phone"]["mfcc_mlp"] > 0.9 and results["speaker"]["mfcc_mlp"] == 1.0
    details = json.loads((probed_run / "probe_speech_details.json").read_text())
    assert 0.0 <= details["phone"]["cpc_mlp_train_accuracy"] <= 1.0


def test_unknown_classifier_is_a_config_error(probed_run, capsys):
    probed_run, _ = probed_run
    assert main(["probe", str(probed_run), "--set", 'probe.classifiers=["svm"]']) == 2
    err = capsys.readouterr().err
    assert "probe.classifiers[0]" in err and "unknown probe classifier 'svm'" in err
