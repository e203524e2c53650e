"""Two gloo processes training from shards read disjoint shards (spawned, file store)."""

from __future__ import annotations

import json
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytest.importorskip("webdataset")

from testpaths import TESTS  # noqa: E402

TOY = TESTS / "core" / "toy_recipe.toml"
WORLD = 2


def worker(rank, world, store, corpus, out):
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
        from cpcframe.build import build_dataset, build_loader, build_view_sampler
        from cpcframe.config.loader import load_recipe
        from cpcframe.plugins import default_registry

        registry = default_registry()
        recipe = load_recipe(TOY, registry, ["data.dataset.name=shards", f"data.dataset.root={corpus}",
                                             "train.device=cpu"])
        dataset = build_dataset(recipe, registry)
        views = build_view_sampler(recipe, registry)
        loader = build_loader(recipe, dataset, views, start=0, stop=3, rank=rank, world_size=world,
                              num_workers=0)
        keys = [k for batch in loader for k in batch.keys]  # 3 steps x 4 = 12 items: under half an epoch
        shard_of = {k: e["name"] for e in dataset.entries for k in e["keys"]}
        gathered = [None] * world
        dist.all_gather_object(gathered, sorted({shard_of[k] for k in keys}))
        if rank == 0:
            (out / "shards.json").write_text(json.dumps(gathered))
        dist.barrier()
        dist.destroy_process_group()
    except BaseException:
        (out / f"error-{rank}.txt").write_text(traceback.format_exc())
        raise


def test_two_ranks_read_disjoint_shards(registry, tmp_path):
    from cpcframe.build import build_dataset
    from cpcframe.config.loader import load_recipe
    from cpcframe.shards.writer import write_shards

    recipe = load_recipe(TOY, registry)
    corpus = tmp_path / "shards"
    write_shards(lambda: build_dataset(recipe, registry), corpus, shard_items=8)
    try:
        mp.spawn(worker, args=(WORLD, str(tmp_path / "store"), str(corpus), tmp_path), nprocs=WORLD, join=True)
    except Exception:
        errors = "\n".join(p.read_text() for p in tmp_path.glob("error-*.txt"))
        pytest.fail(f"a spawned process failed:\n{errors}")
    per_rank = json.loads((tmp_path / "shards.json").read_text())
    assert all(per_rank) and set(per_rank[0]).isdisjoint(per_rank[1])
