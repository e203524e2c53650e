"""Sharded corpora: cpcframe shard, the `shards` source, exact resume, disjoint shards."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("webdataset")

from cpcframe.build import build_dataset  # noqa: E402
from cpcframe.config.loader import load_recipe  # noqa: E402
from cpcframe.errors import UserError  # noqa: E402
from cpcframe.runs import RunDir, load_state  # noqa: E402
from cpcframe.shards.sampler import ShardStepSampler  # noqa: E402
from cpcframe.shards.writer import write_shards  # noqa: E402
from cpcframe.training.trainer import Trainer, TrainingInterrupted  # noqa: E402

from testpaths import TESTS, cli_env  # noqa: E402
from stop_at import StopAt as StopAtStep

TOY = TESTS / "core" / "toy_recipe.toml"
CLI = [sys.executable, "-m", "cpcframe"]


def losses(run_dir) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())}


@pytest.fixture
def corpus(registry, tmp_path):
    """The toy corpus (48 items, 4 groups) written as 6 shards of 8."""
    recipe = load_recipe(TOY, registry)
    out = tmp_path / "shards"
    write_shards(lambda: build_dataset(recipe, registry), out, shard_items=8)
    return out


def shard_settings(root, *extra):
    return ["data.dataset.name=shards", f"data.dataset.root={root}", "data.dataset.cache_shards=1", *extra]


def test_shards_keep_keys_groups_and_data(registry, corpus):
    recipe = load_recipe(TOY, registry)
    original = build_dataset(recipe, registry)
    sharded = build_dataset(load_recipe(TOY, registry, shard_settings(corpus)), registry)
    assert len(sharded) == len(original) and sharded.shard_items == [8] * 6
    for i in (0, 9, 47):
        a, b = original[i], sharded[i]
        assert (a.key, a.group) == (b.key, b.group) and (a.data == b.data).all()
    assert list(sharded.groups) == list(original.groups)


def test_rewrite_is_resumable_and_skips_done_shards(registry, corpus):
    recipe = load_recipe(TOY, registry)
    stamp = {p.name: p.stat().st_mtime_ns for p in corpus.glob("shard-*.tar")}
    (corpus / "shard-000003.tar").unlink()  # as if killed before it was written
    write_shards(lambda: build_dataset(recipe, registry), corpus, shard_items=8)
    again = {p.name: p.stat().st_mtime_ns for p in corpus.glob("shard-*.tar")}
    assert set(again) == set(stamp)
    assert all(again[n] == stamp[n] for n in stamp if n != "shard-000003.tar")


def test_resume_from_shards_equals_uninterrupted(registry, corpus, tmp_path):
    recipe = load_recipe(TOY, registry, shard_settings(corpus, "train.steps=12", "train.checkpoint_every=100"))

    class StopAt(StopAtStep):
        stop_at = 5

    full, split = tmp_path / "full", tmp_path / "split"
    Trainer(recipe, registry, RunDir(full), progress=False).run()
    with pytest.raises(TrainingInterrupted):
        StopAt(recipe, registry, RunDir(split), progress=False).run()
    assert load_state(split / "checkpoint.pt")["step"] == 5
    Trainer(recipe, registry, RunDir(split), resume=True, progress=False).run()
    assert losses(split) == losses(full) and sorted(losses(full)) == list(range(1, 13))


def test_kill9_then_resume_via_cli_equals_uninterrupted(corpus, tmp_path):
    env = cli_env(CPCFRAME_PLUGINS="toy_plugin", PYTHONPATH=f"{TESTS}:{cli_env().get('PYTHONPATH', '')}")
    sets = sum((["--set", s] for s in shard_settings(corpus, "train.steps=10", "train.checkpoint_every=4")), [])
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(CLI + ["run", str(TOY), "--out", str(full), "--quiet", *sets], env=env, check=True)
    # kill -9 right after the checkpoint of step 4 (no clean shutdown at all)
    proc = subprocess.Popen(CLI + ["run", str(TOY), "--out", str(killed), "--quiet", *sets,
                                   "--set", "train.steps=100"], env=env)
    import time
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    step = load_state(killed / "checkpoint.pt")["step"]
    assert step >= 4
    subprocess.run(CLI + ["run", str(killed), "--resume", "--quiet", "--set", "train.steps=10"], env=env,
                   check=True)
    got, expected = losses(killed), losses(full)
    assert {s: got[s] for s in range(step + 1, 11)} == {s: expected[s] for s in range(step + 1, 11)}


def test_ranks_read_disjoint_shards_and_cover_the_epoch():
    counts = [8, 8, 7, 8, 8, 5]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    shard_of = np.repeat(np.arange(6), counts)
    per_rank = []
    for rank in range(2):
        s = ShardStepSampler(counts, 4, seed=1, start=0, stop=100, rank=rank, world_size=2)
        assert sorted(s._epoch_stream(0)) == sorted(i for k in s.shards_of_epoch(0)
                                                    for i in range(offsets[k], offsets[k] + counts[k]))
        per_rank.append(set(shard_of[s._epoch_stream(0)]))
    assert per_rank[0].isdisjoint(per_rank[1]) and per_rank[0] | per_rank[1] == set(range(6))
    # a pure function of (seed, step, rank): a new sampler from step 7 gives the same batches
    a = ShardStepSampler(counts, 4, seed=1, start=0, stop=12)
    b = ShardStepSampler(counts, 4, seed=1, start=7, stop=12)
    assert list(a)[7:] == list(b)


def test_decoded_shard_cache_stays_bounded(registry, corpus, monkeypatch):
    ds = build_dataset(load_recipe(TOY, registry, shard_settings(corpus)), registry)
    held_while_reading = []  # decoded shards held while the next one is read: the peak
    read = type(ds)._read

    def watched(self, k):
        held_while_reading.append(len(self._cache))
        return read(self, k)

    monkeypatch.setattr(type(ds), "_read", watched)
    for i in range(len(ds)):
        ds[i]
        assert len(ds._cache) <= 1
    assert len(held_while_reading) == 6 and max(held_while_reading) == 0  # room made before each read


def test_truncated_and_missing_shards_are_skipped_and_counted(registry, corpus):
    data = (corpus / "shard-000002.tar").read_bytes()
    (corpus / "shard-000002.tar").write_bytes(data[: len(data) // 3])
    (corpus / "shard-000004.tar").unlink()
    ds = build_dataset(load_recipe(TOY, registry, shard_settings(corpus)), registry)
    keys = [ds[i].key for i in range(len(ds))]
    assert len(keys) == 48
    assert ds.skipped == {"unreadable shard": 1, "missing shard": 1}
    assert {k for k, _ in ds.skipped_items} == {"shard-000002.tar", "shard-000004.tar"}


def test_bad_locations_and_indexes_are_user_errors(registry, corpus, tmp_path):
    with pytest.raises(UserError, match="does not exist or is not reachable"):
        build_dataset(load_recipe(TOY, registry, shard_settings(tmp_path / "nowhere")), registry)
    index = json.loads((corpus / "index.json").read_text())
    index["shards"][0]["items"] = 99
    (corpus / "index.json").write_text(json.dumps(index))
    with pytest.raises(UserError, match="does not match"):
        build_dataset(load_recipe(TOY, registry, shard_settings(corpus)), registry)


def test_cli_shard_then_train_and_embed_cli_errors(corpus, tmp_path):
    env = cli_env(CPCFRAME_PLUGINS="toy_plugin", PYTHONPATH=f"{TESTS}:{cli_env().get('PYTHONPATH', '')}")
    out = tmp_path / "cli-shards"
    done = subprocess.run(CLI + ["shard", str(TOY), "--out", str(out), "--shard-items", "12", "--workers", "2"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "48 items in 4 shards" in done.stderr
    bad = subprocess.run(CLI + ["run", str(TOY), "--out", str(tmp_path / "r"), "--quiet",
                                "--set", "data.dataset.name=shards", "--set", f"data.dataset.root={tmp_path}/none"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not reachable" in bad.stderr and "Traceback" not in bad.stderr


def test_long_items_are_cut_into_segments(registry, tmp_path):
    recipe = load_recipe(TOY, registry)
    out = tmp_path / "segmented"
    index = write_shards(lambda: build_dataset(recipe, registry), out, shard_items=8, segment=256)
    original = build_dataset(recipe, registry)
    assert index["items"] == 48 * (1024 // 256)
    sharded = build_dataset(load_recipe(TOY, registry, shard_settings(out, "data.views.window=128")), registry)
    piece = sharded[5]  # item 1's second segment
    assert piece.key == "toy-1/0001" and piece.group == original[1].group
    assert (piece.data == original[1].data[..., 256:512]).all()


def test_resume_on_another_number_of_processes_keeps_the_global_order():
    """streams=4: 1, 2 or 4 processes with one global batch of 8 read the same items per
    step, each rank from its own shards; so a change of world size on resume neither
    repeats nor drops a shard."""
    counts = [8, 8, 7, 8, 8, 5, 8, 8]
    shard_of = np.repeat(np.arange(8), counts)

    def global_batches(world, start=0, stop=12):
        ranks = [list(ShardStepSampler(counts, 8 // world, seed=2, start=start, stop=stop, rank=r,
                                       world_size=world, streams=4)) for r in range(world)]
        steps = []
        for step, per_step in enumerate(zip(*ranks), start):
            steps.append(sorted(idx for batch in per_step for (_, _, idx) in batch))
            shards = [set(shard_of[[idx for _, _, idx in batch]]) for batch in per_step]
            if step < 6:  # every stream still in epoch 0 (its 2 shards hold >= 13 items)
                assert all(a.isdisjoint(b) for i, a in enumerate(shards) for b in shards[i + 1:])
        return steps

    one = global_batches(1)
    assert global_batches(2) == one and global_batches(4) == one
    resumed = global_batches(2, 0, 5) + global_batches(4, 5, 12)  # 2 processes, then 4
    assert resumed == one
    first_epoch = [i for step in one[:5] for i in step]  # 40 of the 60 items
    assert len(set(first_epoch)) == len(first_epoch)


def test_segments_cut_labels_at_the_label_hop():
    """With a hop (samples per label), pieces start and end on label frames and keep
    their labels; without one they keep none."""
    from cpcframe.batch import Example
    from cpcframe.shards.writer import segments

    data = torch.arange(1000, dtype=torch.float32)[None]  # (1, 1000): 10 labels of 100 samples, cut short
    labels = torch.arange(9) * 10
    example = Example(data, group=3, key="rec", labels=labels)
    fixed = segments(example, 250, hop=100)  # 250 -> 200: 5 pieces of 2 labels, the last one past the labels
    assert [p.data.shape[-1] for p in fixed] == [200] * 5 and [p.key for p in fixed][-1] == "rec/0004"
    assert [p.labels.tolist() for p in fixed[:4]] == [[0, 10], [20, 30], [40, 50], [60, 70]]
    assert fixed[4].labels.tolist() == [80]  # clipped to the labels' length
    assert all((p.data[0, 0] % 100 == 0) and p.group == 3 for p in fixed)
    # segment 350 -> 300; voiced spans widened to label frames: (130, 370) -> (100, 400) and
    # (610, 1000) -> (600, 900) + (900, 1000), whose frame 9 is past the labels: none
    voiced = segments(example, 350, voiced=[(130, 370), (610, 1000)], hop=100)
    assert [(int(p.data[0, 0]), p.data.shape[-1]) for p in voiced] == [(100, 300), (600, 300), (900, 100)]
    assert [p.labels.tolist() for p in voiced[:2]] == [[10, 20, 30], [60, 70, 80]] and voiced[2].labels is None
    unsnapped = segments(example, 350, voiced=[(130, 370), (610, 1000)])
    assert [p.data.shape[-1] for p in unsnapped] == [240, 350, 40] and unsnapped[0].labels is None
    assert all(p.labels is None for p in segments(example, 250)) and len(segments(example, 250)) == 4
