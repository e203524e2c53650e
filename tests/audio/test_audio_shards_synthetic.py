"""Done-means of issue 12 without shared data: a synthetic LibriSpeech-layout corpus
written in the test, sharded into 8x the decoded-shard cache budget, trains end to end
from shards with the cache bounded at every step, resumes exactly, and the speech probe
and ``cpcframe embed`` work on the model trained from shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("webdataset")

from stop_at import StopAt as StopAtStep
from audiodata import TINY, run_args, write_speakers  # noqa: E402
from cpcframe.cli import main  # noqa: E402
from cpcframe.config.loader import load_recipe  # noqa: E402
from cpcframe.plugins import default_registry  # noqa: E402
from cpcframe.runs import RunDir  # noqa: E402
from cpcframe.shards.source import ShardDataset  # noqa: E402
from cpcframe.training.trainer import Trainer, TrainingInterrupted  # noqa: E402

SPEAKERS = {"101": 180.0, "202": 260.0, "303": 340.0, "404": 420.0}


def losses(run):
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def test_synthetic_corpus_beyond_the_cache_budget_from_shards(tmp_path, monkeypatch):
    audio = tmp_path / "audio"
    write_speakers(audio, SPEAKERS, utterances=6, samples=8000)  # 24 utterances of 0.5 s
    shards = tmp_path / "shards"
    assert main(["shard", str(TINY), "--out", str(shards), "--shard-items", "3", "--workers", "2",
                 "--set", f"data.dataset.root={audio}"]) == 0
    index = json.loads((shards / "index.json").read_text())
    assert index["items"] == 24 and len(index["shards"]) == 8  # 8x the budget of one decoded shard
    biggest = max(e["bytes"] for e in index["shards"])

    held = []  # bytes of decoded shards this process holds, after every read
    read = ShardDataset._shard

    def watched(self, k):
        items = read(self, k)
        held.append(sum(len(v) for shard in self._cache.values() for v in shard.values()))
        return items

    monkeypatch.setattr(ShardDataset, "_shard", watched)
    sets = ["data.dataset.name=shards", f"data.dataset.root={shards}", "data.dataset.cache_shards=1",
            "data.num_workers=0", "train.steps=8", "train.checkpoint_every=100", "probe.iterations=20"]
    full, split = tmp_path / "full", tmp_path / "split"
    assert main(run_args(TINY, full, *sets)) == 0
    assert held and max(held) <= biggest  # one shard at a time however large the corpus

    registry = default_registry()
    recipe = load_recipe(TINY, registry, sets)

    class StopAt(StopAtStep):
        stop_at = 3

    with pytest.raises(TrainingInterrupted):
        StopAt(recipe, registry, RunDir(split), progress=False).run()
    Trainer(recipe, registry, RunDir(split), resume=True, progress=False).run()
    assert losses(split) == losses(full) and sorted(losses(full)) == list(range(1, 9))

    probe = json.loads((full / "probe.json").read_text())
    assert "speaker" in probe  # the speech probe ran on the sharded corpus's speakers
    wav = next(audio.rglob("*.flac"))
    assert main(["embed", str(full), str(wav), "--out", str(tmp_path / "emb.npz")]) == 0
    with np.load(tmp_path / "emb.npz") as arrays:
        assert len(arrays.files) == 1 and np.isfinite(arrays[arrays.files[0]]).all()
