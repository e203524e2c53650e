"""The report of a short real speech run: curves, per-step accuracy, the probe table with
its random-init and MFCC baselines, and a feature map of held-out frames coloured by
phone and by speaker (the points checked against the model and the corpus's labels)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cpcframe
from cpcframe.cli import main
from cpcframe.report import build_report
from cpcframe.report.feature_sources import LABEL_HOP, feature_sample

from reportpage import read_page

#: 4 speakers x 6 utterances of 0.5-0.8 s, a 16-channel model: 20 steps in about a second.
RECIPE = """
name = "tiny_speech"
[data]
batch_size = 8
group_size = 0
num_workers = 0
[data.dataset]
name = "synthetic_speech"
speakers = 4
utterances_per_speaker = 6
min_seconds = 0.5
max_seconds = 0.8
test_fraction = 0.34
[data.views]
name = "audio_windows"
window = 1600
align = 160
[model.encoder]
name = "cpc_audio"
hidden = 16
normalize_input = true
[model.context]
name = "gru"
hidden_size = 16
[model.critic]
name = "cpc_steps"
steps = 3
[loss]
num_negatives = 16
[train]
steps = 20
device = "cpu"
log_every = 2
checkpoint_every = 20
validate_every = 10
validate_batches = 1
[probe]
name = "speech"
baselines = true
iterations = 20
max_frames = 2000
"""


@pytest.fixture
def speech_run(tmp_path):
    recipe = tmp_path / "tiny_speech.toml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(run), "--quiet"]) == 0
    return run


def test_report_of_a_speech_run(speech_run, tmp_path):
    _, page = read_page(build_report([speech_run], tmp_path / "r.html"))
    assert len(page.image("loss and accuracy curves")) == 1
    steps = page.table("step", within="validation acc")
    last = [json.loads(line) for line in (speech_run / "metrics.jsonl").read_text().splitlines()][-1]
    assert [row[0] for row in steps[1:]] == ["k1", "k2", "k3"]
    assert [row[3] for row in steps[1:]] == [f"{last[f'val/acc/k{k}']:.3f}" for k in (1, 2, 3)]

    probe = json.loads((speech_run / "probe.json").read_text())
    details = json.loads((speech_run / "probe_speech_details.json").read_text())
    table = page.table("task")
    assert table[0] == ["task", "cpc", "random_init", "mfcc", "chance"]
    for row in table[1:]:
        task = row[0]
        assert row[1:4] == [f"{100 * probe[task][f]:.1f}" for f in ("cpc", "random_init", "mfcc")]
        guess = details[task].get("majority_baseline", details[task].get("chance"))
        assert row[4] == f"{100 * guess:.1f}"
    assert [row[0] for row in table[1:]] == ["phone", "speaker"]
    assert len(page.image("feature map")) == 1
    assert "context features of 10 ms frames of 8 held-out utterances" in page.text


def test_speech_feature_sample_holds_the_frames_phones_and_speakers(speech_run):
    loaded = cpcframe.load(speech_run)
    sample = feature_sample(loaded, limit=120, seed=0)
    assert list(sample.colourings) == ["phone", "speaker"] and len(sample.ids) == len(sample.features) <= 120
    from cpcframe.build import build_dataset

    test = build_dataset(loaded.recipe, loaded.registry, split="test", view_sampler=loaded.view_sampler())
    index = {key: i for i, key in enumerate(test.keys)}
    hop = loaded.model.encoder.downsampling
    assert len({i.split("@")[0] for i in sample.ids}) == 8  # every held-out utterance
    assert sorted(set(sample.colourings["speaker"])) == sorted(test.speaker_ids)
    encoded: dict[str, np.ndarray] = {}
    for row, point, phone, speaker in zip(sample.features, sample.ids, *sample.colourings.values()):
        key, frame = point.split("@")
        i, t = index[key], int(frame)
        if key not in encoded:
            wave = test.waveform(i)[..., : 4 * 1600]
            wave = wave[..., : (wave.shape[-1] // hop) * hop]
            encoded[key] = loaded.encode(wave[None])[0].numpy()  # (T, C)
        np.testing.assert_allclose(row, encoded[key][t], rtol=1e-5, atol=1e-6)
        assert phone == str(int(test.labels(i)[(t * hop + hop // 2) // LABEL_HOP]))
        assert speaker == test.speaker_ids[test.groups[i]] == key.split("-")[0]
