"""ABX while training: ``[train.validate_probe]`` logs ABX errors at every validation, and
training itself is the same as without it."""

from __future__ import annotations

import json

import pytest

from audiodata import QUICKSTART, run_args
from cpcframe.cli import main
from cpcframe_audio.abx import backends

pytestmark = pytest.mark.skipif(not backends.available("libriabx2"),
                                reason="zerospeech-libriabx2 is not installed (pip install 'cpcframe[audio,abx]')")

TINY = ("data.dataset.speakers=3", "data.dataset.utterances_per_speaker=4", "data.dataset.min_seconds=1.0",
        "data.dataset.max_seconds=1.5", "data.dataset.test_fraction=0.5", "data.batch_size=4",
        "model.encoder.hidden=16", "model.context.hidden_size=16", "train.steps=4", "train.log_every=2",
        "train.checkpoint_every=4", "train.validate_every=2", "train.validate_batches=1")


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_validate_probe_logs_abx_and_leaves_training_alone(tmp_path):
    plain, with_abx = tmp_path / "plain", tmp_path / "abx"
    assert main(run_args(QUICKSTART, plain, *TINY) + ["--no-probe"]) == 0
    probe = ('train.validate_probe={ name = "abx", max_items = 60, workers = 1, '
             'conditions = ["phone/within", "phone/across"] }')
    assert main(run_args(QUICKSTART, with_abx, *TINY, probe) + ["--no-probe"]) == 0
    validated = [r for r in records(with_abx) if "val/loss" in r]
    assert [r["step"] for r in validated] == [2, 4]
    for r in validated:
        for condition in ("phone/within", "phone/across"):
            assert 0.0 <= r[f"val/abx/{condition}/cpc"] <= 1.0, r
    # The same training: losses, accuracies and InfoNCE validation are equal with and without ABX.
    drop = lambda r: {k: v for k, v in r.items() if not k.startswith("val/abx/") and k not in ("items_per_s", "time", "seconds")}
    assert [drop(r) for r in records(with_abx)] == [drop(r) for r in records(plain)]
    assert not (with_abx / "abx.json").exists()  # validation writes no run file
