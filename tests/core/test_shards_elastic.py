"""Elastic resume from shards: a run trained on 2 gloo processes and resumed on 1 (and the
reverse) reads, over the epoch, every item of every shard exactly once, step for step the
items of an uninterrupted run; a resume that would change the order is refused.

The toy corpus (48 items) as 6 shards of 8, ``data.dataset.streams = 2``, a global batch
of 8 (2 x 4 or 1 x 8): one epoch is 6 steps. Processes are spawned and meet through a
file store (as in ``test_distributed.py``).
"""

from __future__ import annotations

import json
import os
import traceback
from collections import Counter

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytest.importorskip("webdataset")

from cpcframe.config.loader import load_recipe  # noqa: E402
from cpcframe.errors import UserError  # noqa: E402
from cpcframe.runs import RunDir, load_state  # noqa: E402
from cpcframe.shards.resume import check_resume_order  # noqa: E402
from cpcframe.training.trainer import Trainer  # noqa: E402

from shards_testing import write_toy_shards  # noqa: E402
from testpaths import TESTS  # noqa: E402

TOY = TESTS / "core" / "toy_recipe.toml"
GLOBAL_BATCH, EPOCH_STEPS = 8, 6


class KeyLog(Trainer):
    """A trainer that writes the item keys of every step it trains (one file per rank)."""

    log = None

    def train_step(self, batch):
        metrics = super().train_step(batch)
        with open(f"{self.log}-{self.dist.rank}.jsonl", "a") as f:
            f.write(json.dumps({"step": self.step, "keys": list(batch.keys)}) + "\n")
        return metrics


def settings(corpus, world, steps, streams=2):
    return ["data.dataset.name=shards", f"data.dataset.root={corpus}", "data.dataset.cache_shards=1",
            f"data.dataset.streams={streams}", f"data.batch_size={GLOBAL_BATCH // world}",
            f"train.steps={steps}", "train.checkpoint_every=100", "train.device=cpu", "data.num_workers=0"]


def train(corpus, run, log, world, steps, resume, ctx=None):
    from cpcframe.plugins import default_registry

    registry = default_registry()
    recipe = load_recipe(TOY, registry, settings(corpus, world, steps))
    trainer = type("Logged", (KeyLog,), {"log": str(log)})
    kwargs = {"dist": ctx} if ctx is not None else {}
    trainer(recipe, registry, RunDir(run), resume=resume, progress=False, **kwargs).run()


def worker(rank, world, store, corpus, run, log, steps, resume):
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
        from cpcframe.training.distributed import DistributedRuntime, finish_process_group

        train(corpus, run, log, world, steps, resume, DistributedRuntime.from_environment("cpu"))
        finish_process_group()
    except BaseException:
        with open(f"{log}-error{rank}.txt", "w") as f:
            f.write(traceback.format_exc())
        os._exit(1)
    os._exit(0)  # no interpreter teardown (gloo may abort in destructors), as the CLI does


def spawn_two(tmp_path, tag, corpus, run, log, steps, resume):
    store = tmp_path / f"store-{tag}"
    try:
        mp.spawn(worker, args=(2, str(store), str(corpus), str(run), str(log), steps, resume), nprocs=2,
                 join=True)
    except mp.ProcessExitedException:
        errors = [p.read_text() for p in sorted(tmp_path.glob("*-error*.txt"))]
        pytest.fail("a spawned process failed:\n" + "\n".join(errors))


def read_log(log) -> dict[int, list[str]]:
    """``step -> keys`` of all ranks (rank order)."""
    steps: dict[int, list[str]] = {}
    for path in sorted(log.parent.glob(f"{log.name}-*.jsonl")):
        for record in map(json.loads, path.read_text().splitlines()):
            steps.setdefault(record["step"], []).extend(record["keys"])
    return steps


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_toy_shards(tmp_path_factory.mktemp("elastic") / "shards")


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    log = tmp_path_factory.mktemp("full") / "keys"
    train(corpus, log.parent / "run", log, 1, EPOCH_STEPS, resume=False)
    return read_log(log)


def check_one_epoch(steps, uninterrupted, corpus):
    all_keys = [k for e in json.loads((corpus / "index.json").read_text())["shards"] for k in e["keys"]]
    assert sorted(steps) == list(range(1, EPOCH_STEPS + 1))
    consumed = Counter(k for keys in steps.values() for k in keys)
    assert max(consumed.values()) == 1, "an item read twice in the epoch"
    assert set(consumed) == set(all_keys), "an item of the epoch dropped"
    # step for step, the uninterrupted run's items
    assert {s: sorted(k) for s, k in steps.items()} == {s: sorted(k) for s, k in uninterrupted.items()}


@pytest.mark.timeout(300)
def test_two_processes_then_one_reads_the_epoch_once(corpus, uninterrupted, tmp_path, registry):
    run, log = tmp_path / "run", tmp_path / "keys"
    spawn_two(tmp_path, "a", corpus, run, log, 3, resume=False)
    state = load_state(run / "checkpoint.pt")
    assert state["step"] == 3 and state["world_size"] == 2
    assert state["data_order"] == {"streams": 2, "global_batch": 8, "shards": 6, "items": 48}
    # Refused, before anything is written: a global batch of 4, or streams following the world.
    for bad, match in ((["data.batch_size=4"], "data.batch_size = 8"),
                       (["data.dataset.streams=0"], "data.dataset.streams")):
        recipe = load_recipe(TOY, registry, settings(corpus, 1, EPOCH_STEPS) + bad)
        with pytest.raises(UserError, match=match):
            Trainer(recipe, registry, RunDir(run), resume=True, progress=False).run()
    assert max(read_log(log)) == 3
    train(corpus, run, log, 1, EPOCH_STEPS, resume=True)
    check_one_epoch(read_log(log), uninterrupted, corpus)


@pytest.mark.timeout(300)
def test_one_process_then_two_reads_the_epoch_once(corpus, uninterrupted, tmp_path):
    run, log = tmp_path / "run", tmp_path / "keys"
    train(corpus, run, log, 1, 2, resume=False)
    spawn_two(tmp_path, "b", corpus, run, log, EPOCH_STEPS, resume=True)
    assert load_state(run / "checkpoint.pt")["world_size"] == 2
    check_one_epoch(read_log(log), uninterrupted, corpus)


def test_a_run_with_one_stream_per_process_names_the_fix():
    saved = {"streams": 2, "global_batch": 8, "shards": 6, "items": 48}
    now = dict(saved, streams=1)
    with pytest.raises(UserError, match=r"streams = 0\): resume it on 2 process"):
        check_resume_order(saved, now, saved_world=2, world_size=1)
    with pytest.raises(UserError, match="same corpus"):
        check_resume_order(saved, dict(saved, items=40), saved_world=2, world_size=1)
    check_resume_order(saved, dict(saved), saved_world=2, world_size=1)  # same order: fine
    check_resume_order(None, now, saved_world=2, world_size=1)  # a checkpoint from before
