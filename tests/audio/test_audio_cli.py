"""``cpcframe run`` on audio corpora: missing data, corrupt files, speaker-grouped batches."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np

from audiodata import LIBRISPEECH_RECIPE, TINY, run_args, write_speakers
from cpcframe.cli import main


def librispeech_sets(root) -> tuple[str, ...]:
    return (f"data.dataset.root={root}",)


def test_missing_root_is_exit_2_and_says_what_to_download(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cpcframe", *run_args(
        LIBRISPEECH_RECIPE, tmp_path / "run", f"data.dataset.root={tmp_path / 'nowhere'}", "train.steps=1")],
        capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert err.startswith("cpcframe: error: ") and "Traceback" not in err
    assert str(tmp_path / "nowhere") in err
    assert "openslr.org/12" in err and "train-clean-100" in err
    assert "train_split.txt" in err and "converted_aligned_phones.txt" in err and "CPC_audio" in err
    assert "data.dataset.root" in err


def test_corrupt_file_is_skipped_and_counted_in_the_run_summary(tmp_path, capsys):
    root = tmp_path / "corpus"
    write_speakers(root, {"11": 150.0, "12": 260.0}, 3, 8000)
    (root / "11" / "10" / "11-10-0009.flac").write_bytes(b"fLaC but not really audio")
    (root / "12" / "10" / "12-10-0008.flac").write_bytes(b"")
    from audiodata import write_utterance
    write_utterance(root, "12-10-0007", 800)  # shorter than the 1600-sample window
    out = tmp_path / "run"
    status = main(run_args(TINY, out, *librispeech_sets(root)) + ["--no-probe"])
    assert status == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == {"unreadable": 2, "too_short": 1}
    assert summary["step"] == 2 and math.isfinite(summary["metrics"]["loss"])
    printed = capsys.readouterr().out
    assert "skipped data: unreadable: 2, too_short: 1" in printed


def test_speaker_grouped_batches_with_same_group_negatives(tmp_path):
    """data.group_size draws several utterances per speaker; same_group negatives train."""
    from cpcframe.build import build_dataset
    from cpcframe.config.loader import load_recipe
    from cpcframe.data.sampling import StepBatchSampler
    from cpcframe.plugins import default_registry

    root = tmp_path / "corpus"
    write_speakers(root, {"21": 120.0, "22": 200.0, "23": 320.0, "24": 500.0}, 3, 8000)
    sets = (*librispeech_sets(root), "data.group_size=2", "loss.negatives=same_group",
            "train.steps=3", "train.checkpoint_every=3")
    recipe = load_recipe(TINY, default_registry(), list(sets))
    assert recipe.loss.negatives == "same_group" and recipe.data.group_size == 2
    out = tmp_path / "run"
    assert main(run_args(TINY, out, *sets) + ["--no-probe"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 3 and math.isfinite(summary["metrics"]["loss"])
    # The batches the run drew: 2 speakers x 2 utterances each, speaker from the folder.
    dataset = build_dataset(recipe, default_registry(), split="train")
    sampler = StepBatchSampler(dataset.groups, 4, seed=recipe.seed, start=0, stop=3, group_size=2)
    for step in range(3):
        idx = sampler.global_indices(step)
        speakers = [dataset.keys[i].split("-")[0] for i in idx]
        assert speakers[0] == speakers[1] and speakers[2] == speakers[3] and speakers[0] != speakers[2]
        assert np.array_equal(np.asarray(dataset.groups)[idx][[0, 2]], np.asarray(dataset.groups)[idx][[1, 3]])

