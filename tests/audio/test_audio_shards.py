"""Real LibriSpeech (librispeech-mini) through shards: shard, train, resume exactly, probe, embed.

Skips when ``../shared/data/librispeech-mini`` is absent.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("webdataset")

from stop_at import StopAt as StopAtStep
from audiodata import LIBRISPEECH_RECIPE, REAL_DATA, run_args  # noqa: E402
from cpcframe.cli import main  # noqa: E402
from cpcframe.config.loader import load_recipe  # noqa: E402
from cpcframe.plugins import default_registry  # noqa: E402
from cpcframe.runs import RunDir  # noqa: E402
from cpcframe.training.trainer import Trainer, TrainingInterrupted  # noqa: E402

pytestmark = pytest.mark.skipif(not (REAL_DATA / "test_db").is_dir(),
                                reason=f"no real LibriSpeech sample at {REAL_DATA}")

SMALL = ("train.steps=4", "data.batch_size=2", "data.num_workers=0", "train.device=cpu",
         "train.validate_every=0", "train.checkpoint_every=100", "train.log_every=1", "probe.iterations=20",
         "probe.mlp.hidden=64", "probe.mlp.epochs=2", "probe.mlp.min_steps=10")


def losses(run):
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def test_librispeech_mini_from_shards(tmp_path, capsys):
    shards = tmp_path / "shards"
    sets = ["--set", f"data.dataset.root={REAL_DATA / 'test_db'}", "--set", "data.dataset.split_list=",
            "--set", "data.dataset.test_split_list=",
            "--set", f"data.dataset.phone_labels={REAL_DATA / 'phone_labels.txt'}"]
    assert main(["shard", str(LIBRISPEECH_RECIPE), "--out", str(shards), "--shard-items", "3", *sets]) == 0
    index = json.loads((shards / "index.json").read_text())
    assert index["items"] == 9 and len(index["shards"]) == 3 and sum(sum(e["labelled"]) for e in index["shards"]) == 2

    text = LIBRISPEECH_RECIPE.read_text()
    recipe = tmp_path / "from_shards.toml"
    recipe.write_text(re.sub(r"\[data\.dataset\]\n(?:(?!\n\[).)*",
                             f'[data.dataset]\nname = "shards"\nroot = "{shards}"\n', text, flags=re.S))
    full, split = tmp_path / "full", tmp_path / "split"
    assert main(run_args(recipe, full, *SMALL)) == 0
    # the same recipe stopped (as by Ctrl-C) after step 2, then resumed: the same losses
    registry = default_registry()
    config = load_recipe(recipe, registry, list(SMALL))

    class StopAt(StopAtStep):
        stop_at = 2

    with pytest.raises(TrainingInterrupted):
        StopAt(config, registry, RunDir(split), progress=False).run()
    Trainer(config, registry, RunDir(split), resume=True, progress=False).run()
    assert sorted(losses(full)) == [1, 2, 3, 4] and losses(split) == losses(full)
    results = json.loads((full / "probe.json").read_text())
    assert set(results) == {"phone", "speaker"}
    wav = next((REAL_DATA / "test_db").rglob("*.flac"))
    assert main(["embed", str(full), str(wav), "--out", str(tmp_path / "emb.npz")]) == 0
    with np.load(tmp_path / "emb.npz") as arrays:
        assert len(arrays.files) == 1 and np.isfinite(arrays[arrays.files[0]]).all()
