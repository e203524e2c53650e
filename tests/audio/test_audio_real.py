"""Real LibriSpeech (nine utterances of train-clean-100 with CPC phone labels), when present.

The data lives outside the project (``../shared/data/librispeech-mini``); a fresh clone
has none, and these tests skip.
"""

from __future__ import annotations

import json
import math
import warnings

import pytest

from audiodata import LIBRISPEECH_RECIPE, REAL_DATA, run_args
from cpcframe import DatasetRequest
from cpcframe.cli import main
from cpcframe_audio.data.librispeech import LibriSpeechConfig, build_librispeech

pytestmark = pytest.mark.skipif(not (REAL_DATA / "test_db").is_dir(),
                                reason=f"no real LibriSpeech sample at {REAL_DATA}")

LABELLED = {"4051-11218-0044", "2911-12359-0007"}  # the two label lines whose audio is here


def build(tmp_path, **options):
    config = LibriSpeechConfig(root=str(REAL_DATA / "test_db"), **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build_librispeech(config, request=DatasetRequest(cache_dir=tmp_path / "cache", min_length=20480))
    return ds, [str(w.message) for w in caught]


def test_real_corpus_split_list_and_labels(tmp_path):
    seq = (REAL_DATA / "seq_list.txt").read_text().split()
    ds, _ = build(tmp_path, split_list=str(REAL_DATA / "seq_list.txt"))
    assert ds.keys == seq and ds.skipped == {}
    assert ds.speaker_ids == sorted({k.split("-")[0] for k in seq}, key=int)
    assert all(ds.lengths > 20480) and ds.sample_rate == 16000

    ds, messages = build(tmp_path, phone_labels=str(REAL_DATA / "phone_labels.txt"))
    assert len(ds) == 9 and ds.stats["speakers"] == 6
    assert ds.stats["labelled"] == 2 and ds.stats["audio_without_labels"] == 7
    assert ds.stats["labels_without_audio"] == 4
    assert any("4 labelled utterance(s) have no audio" in m for m in messages)
    for i, key in enumerate(ds.keys):
        labels = ds[i].labels
        assert (labels is not None) == (key in LABELLED)
        if labels is not None:  # one label per 10 ms, up to the end of the audio
            assert abs(len(labels) - ds.lengths[i] / 160) <= 3
            assert 0 <= int(labels.min()) and int(labels.max()) < 41


def test_paper_recipe_trains_and_probes_on_real_librispeech(tmp_path, capsys):
    out = tmp_path / "run"
    sets = (f"data.dataset.root={REAL_DATA / 'test_db'}", "data.dataset.split_list=",
            "data.dataset.test_split_list=", f"data.dataset.phone_labels={REAL_DATA / 'phone_labels.txt'}",
            "train.steps=2", "data.batch_size=2", "data.num_workers=0", "train.device=cpu",
            "probe.iterations=20", "train.validate_every=0", "probe.mlp.hidden=64", "probe.mlp.epochs=2", "probe.mlp.min_steps=10")
    assert main(run_args(LIBRISPEECH_RECIPE, out, *sets)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 2 and math.isfinite(summary["metrics"]["loss"]) and summary["skipped"] == {}
    results = json.loads((out / "probe.json").read_text())
    # The recipe's probe fits both of the paper's classifiers: linear and MLP.
    assert set(results) == {"phone", "speaker"} and set(results["phone"]) == {"cpc", "cpc_mlp"}
    assert all(0.0 <= v <= 1.0 for task in results.values() for v in task.values())
    details = json.loads((out / "probe_speech_details.json").read_text())
    # Phones: the two labelled utterances, one to train and one to test on.
    assert details["phone"]["train_frames"] > 100 and details["phone"]["test_frames"] > 100
    assert details["speaker"]["speakers"] == 6
    assert "probe speech on" in capsys.readouterr().out
