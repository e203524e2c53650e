"""Distributed training on CPU with gloo: gradients, cross-process negatives, torchrun runs.

Two processes of batch B with ``train.gather_negatives`` must give the gradients of one
process on the global batch of 2B (all-candidate negatives, ``num_negatives = 0``, so
nothing is sampled). The processes are spawned (not forked: a forked child of a process
that has used OpenMP may hang) and meet through a file store in ``tmp_path``, so no port
can be taken by someone else between choosing and binding it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cpcframe.build import build_loader
from cpcframe.config.loader import load_recipe
from cpcframe.contrast import Contrast
from cpcframe.runs import RunDir, load_state
from cpcframe.training.distributed import DistributedRuntime, finish_process_group
from cpcframe.training.trainer import Trainer

from testpaths import ROOT, TESTS, cli_env

TOY = TESTS / "core" / "toy_recipe.toml"
WORLD = 2
LOCAL_BATCH = 4
# All candidates are negatives (nothing sampled) and no dropout: the step is deterministic.
EXACT = ["loss.num_negatives=0", "train.device=cpu", f"data.batch_size={LOCAL_BATCH}"]
VARIANTS = {"gathered": EXACT, "local": EXACT + ["train.gather_negatives=false"]}


def one_step(recipe, registry, run_dir, ctx):
    """Gradients (after DDP's averaging) and metrics of the trainer's first step."""
    trainer = Trainer(recipe, registry, RunDir(run_dir), progress=False, dist=ctx)
    trainer.setup()
    loader = build_loader(recipe, trainer.dataset, trainer.view_sampler, start=0, stop=1,
                          rank=ctx.rank, world_size=ctx.world_size)
    metrics = trainer.train_step(next(iter(loader)))
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()}
    return grads, metrics


def padded_gather(rank):
    """Keys of different length on each rank (L = 3 + rank) through ``gather_keys``."""
    from cpcframe.training.gather import gather_keys

    B, L, D = 2, 3 + rank, 4
    keys = (100.0 * rank + torch.arange(B * L * D, dtype=torch.float32).view(B, L, D)).requires_grad_()
    contrast = Contrast(queries=torch.zeros(B, 1, D), keys=keys, positives=torch.zeros(1, 1, dtype=torch.long),
                        steps=torch.zeros(1, dtype=torch.long), step_names=("k1",),
                        groups=torch.full((B,), rank, dtype=torch.long))
    out = gather_keys(contrast)
    # Every rank weights the gathered keys by (rank + 1): the gradient of each local key
    # must be the sum over ranks, 1 + 2 = 3, at real locations.
    (out.keys * (rank + 1.0)).sum().backward()
    return {"keys": out.keys.detach(), "key_mask": out.key_mask, "groups": out.groups,
            "item_offset": out.item_offset, "grad": keys.grad}


def worker(rank, world, store, out):
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
        from cpcframe.plugins import default_registry

        registry = default_registry()
        ctx = DistributedRuntime.from_environment("cpu")
        assert ctx.enabled and ctx.rank == rank and ctx.world_size == world
        results = {}
        for name, overrides in VARIANTS.items():
            recipe = load_recipe(TOY, registry, overrides)
            results[name] = one_step(recipe, registry, out / f"{name}-{rank}", ctx)
        results["padded"] = padded_gather(rank)
        results["mean"] = ctx.mean_metrics({"a": float(rank), "b": 1.0})
        results["any"] = ctx.any(rank == 1, False)  # two flags, one collective
        torch.save(results, out / f"rank{rank}.pt")
        finish_process_group()
    except BaseException:
        (out / f"error{rank}.txt").write_text(traceback.format_exc())
        os._exit(1)
    # Leave without interpreter teardown, as the CLI does (gloo may abort in destructors).
    os._exit(0)


def spawn(tmp_path):
    """Run :func:`worker` in ``WORLD`` spawned processes; their results, in rank order."""
    try:
        mp.spawn(worker, args=(WORLD, str(tmp_path / "store"), tmp_path), nprocs=WORLD, join=True)
    except mp.ProcessExitedException:
        errors = [p.read_text() for p in sorted(tmp_path.glob("error*.txt"))]
        pytest.fail("a worker failed:\n" + "\n".join(errors))
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """One spawn serves every test of this module (starting processes is the slow part)."""
    return spawn(tmp_path_factory.mktemp("spawned"))


def relative_error(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


def test_two_processes_equal_one_process_on_the_global_batch(ranks, registry, tmp_path):
    recipe = load_recipe(TOY, registry, EXACT[:-1] + [f"data.batch_size={WORLD * LOCAL_BATCH}"])
    ref_grads, ref_metrics = one_step(recipe, registry, tmp_path / "single", DistributedRuntime())

    gathered = [r["gathered"] for r in ranks]
    for name, ref in ref_grads.items():
        # DDP averages the gradients: every rank holds the same values.
        assert torch.equal(gathered[0][0][name], gathered[1][0][name]), name
        assert relative_error(gathered[0][0][name], ref) < 1e-4, (name, relative_error(gathered[0][0][name], ref))
    # Every rank scores as many NCE terms, so the global loss is the mean of the ranks' losses.
    mean_loss = sum(g[1]["loss"] for g in gathered) / WORLD
    assert mean_loss == pytest.approx(ref_metrics["loss"], rel=1e-5)

    # Without gathering, each rank sees only its own 4 items as negatives: not the same
    # gradients (the check above can fail).
    local = ranks[0]["local"][0]
    assert max(relative_error(local[n], ref_grads[n]) for n in ref_grads) > 1e-3


def test_gather_keys_pads_and_sums_gradients(ranks):
    for rank, r in enumerate(ranks):
        p = r["padded"]
        assert p["keys"].shape == (4, 4, 4)  # 2 ranks x 2 items, L padded to 4
        assert p["item_offset"] == 2 * rank
        assert p["key_mask"].tolist() == [[True, True, True, False]] * 2 + [[True] * 4] * 2
        assert p["groups"].tolist() == [0, 0, 1, 1]
        assert torch.equal(p["keys"][2 * rank:2 * rank + 2, :3 + rank], 100.0 * rank
                           + torch.arange(2 * (3 + rank) * 4, dtype=torch.float32).view(2, 3 + rank, 4))
        assert torch.equal(p["grad"], torch.full_like(p["grad"], 3.0))
        assert r["mean"] == {"a": 0.5, "b": 1.0}
        assert r["any"] == (True, False)


def torchrun(*args, nproc=2):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "cpcframe", *args]


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_torchrun_two_processes_then_resume_with_one(tmp_path):
    run = tmp_path / "run"
    env = cli_env(OMP_NUM_THREADS="1")
    proc = subprocess.run(torchrun("run", str(TOY), "--out", str(run), "--quiet", "--set", "train.device=cpu",
                                   "--set", "train.steps=4", "--set", "train.checkpoint_every=2",
                                   "--set", "train.validate_every=2", "--set", "train.validate_batches=2"),
                          env=env, capture_output=True, text=True, cwd=ROOT, timeout=200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained 4 steps") == 1  # rank 0 reports, rank 1 is silent
    assert [r["step"] for r in records(run)] == [1, 2, 3, 4]  # one writer
    # Each process validated its share of the batches; the means were reduced over both.
    assert [r["step"] for r in records(run) if "val/loss" in r] == [2, 4]
    assert all(0.0 < r["val/loss"] < 100 for r in records(run) if "val/loss" in r)
    state = load_state(run / "checkpoint.pt")
    assert state["step"] == 4 and state["world_size"] == 2
    assert isinstance(state["rng"], list) and len(state["rng"]) == 2  # per-rank RNG states
    assert not any(run.glob(".*.tmp"))

    proc = subprocess.run([sys.executable, "-m", "cpcframe", "run", str(run), "--resume", "--quiet",
                           "--set", "train.steps=6"], env=env, capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["step"] for r in records(run)] == [1, 2, 3, 4, 5, 6]
    state = load_state(run / "checkpoint.pt")
    assert state["step"] == 6 and state["world_size"] == 1


def test_grouped_batches_give_every_process_whole_groups():
    """``data.group_size`` under several processes: each rank's slice holds whole groups
    (same-speaker negatives stay possible locally) and the ranks together hold the
    global batch of one process."""
    from cpcframe.data.sampling import StepBatchSampler

    groups = [i % 10 for i in range(100)]
    kw = dict(seed=3, start=0, stop=12, group_size=4)
    per_rank = [list(StepBatchSampler(groups, 8, rank=r, world_size=2, **kw)) for r in range(2)]
    single = list(StepBatchSampler(groups, 16, **kw))
    for step, (a, b) in enumerate(zip(*per_rank)):
        assert [idx for _, _, idx in a + b] == [idx for _, _, idx in single[step]]
        for batch in (a, b):
            labels = [groups[idx] for _, _, idx in batch]
            assert labels[:4] == [labels[0]] * 4 and labels[4:] == [labels[4]] * 4
