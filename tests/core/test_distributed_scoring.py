"""Cross-process negatives with every scoring form: two gloo processes that gather keys
and score given global negatives (dense, gathered, gathered block by block of keys, and
negatives shared by query groups, dense and grouped) give the single process's loss and, after DDP's averaging, its gradients on the global
batch (float64, to rounding)."""

from __future__ import annotations

import os
import traceback

import attrs
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cpcframe.contrast import Contrast
from cpcframe.infonce import InfoNCEConfig, info_nce

WORLD, B, Q, L, D, M = 2, 3, 10, 12, 8, 20
#: Scoring forms: (config's scoring, keys per block of cpcframe.key_blocks or None for the
#: default, far above the 72 gathered keys here, share_negatives).
FORMS = {"dense": ("dense", None, False), "gathered": ("gathered", None, False),
         "key blocks": ("gathered", 16, False), "shared dense": ("dense", None, True),
         "shared": ("gathered", None, True)}
GROUP = 2  # queries per group with share_negatives
CONFIG = InfoNCEConfig(clip=3.0, score_penalty=0.05, temperature=0.8)


def global_batch():
    """Queries and keys of all ``WORLD·B`` items, positives, and global negatives
    (indices into the gathered keys, with repeats)."""
    g = torch.Generator().manual_seed(0)
    queries = torch.randn(WORLD * B, Q, D, generator=g, dtype=torch.float64)
    keys = torch.randn(WORLD * B, L, D, generator=g, dtype=torch.float64)
    positives = torch.randint(0, L, (Q, 1), generator=g)
    negatives = torch.randint(0, WORLD * B * L, (WORLD * B, Q, M), generator=g)
    return queries, keys, positives, negatives


def with_scoring(how, shared=False):
    return attrs.evolve(CONFIG, scoring=how, share_negatives=shared, num_negatives=M if shared else 0)


def for_form(negatives, shared):
    """The given negatives: one row per query, or per group of queries when shared."""
    return negatives[:, ::GROUP] if shared else negatives


def contrast(queries, keys, positives):
    return Contrast(queries=queries, keys=keys, positives=positives, steps=torch.arange(Q) % 2,
                    step_names=("k1", "k2"), query_group=GROUP)


def worker(rank, store, out):
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
        from cpcframe import key_blocks
        from cpcframe.training.gather import gather_keys

        queries, keys, positives, negatives = global_batch()
        local = slice(rank * B, (rank + 1) * B)
        results = {}
        default_block, real_plan, plans = key_blocks.KEY_BLOCK_BYTES, key_blocks.plan, []
        key_blocks.plan = lambda *a: plans.append(a[2]) or real_plan(*a)
        for form, (how, block, shared) in FORMS.items():
            key_blocks.KEY_BLOCK_BYTES = default_block if block is None else block * D * 8
            q, k = queries[local].clone().requires_grad_(), keys[local].clone().requires_grad_()
            gathered = gather_keys(contrast(q, k, positives))
            loss = info_nce(gathered, with_scoring(how, shared), negatives=for_form(negatives[local], shared)).loss
            loss.backward()
            results[form] = (loss.item(), q.grad / WORLD, k.grad / WORLD)  # DDP averages
        results["plans"] = plans
        torch.save(results, out / f"rank{rank}.pt")
        dist.destroy_process_group()
    except BaseException:
        (out / f"error{rank}.txt").write_text(traceback.format_exc())
        os._exit(1)
    os._exit(0)


def test_every_scoring_form_keeps_cross_process_negatives_exact(tmp_path):
    try:
        mp.spawn(worker, args=(str(tmp_path / "store"), tmp_path), nprocs=WORLD, join=True)
    except mp.ProcessExitedException:
        pytest.fail("a worker failed:\n" + "\n".join(p.read_text() for p in tmp_path.glob("error*.txt")))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    queries, keys, positives, negatives = global_batch()
    queries.requires_grad_()
    keys.requires_grad_()
    assert all(r["plans"] == [16] for r in ranks)  # only the key-block form went through blocks
    for how, (_, _, shared) in FORMS.items():
        queries.grad = keys.grad = None
        single = info_nce(contrast(queries, keys, positives), with_scoring("dense", shared),
                          negatives=for_form(negatives, shared))
        single.loss.backward()
        # Every rank holds as many terms: the global loss is the mean of the ranks' losses.
        assert sum(r[how][0] for r in ranks) / WORLD == pytest.approx(single.loss.item(), abs=1e-12)
        torch.testing.assert_close(torch.cat([r[how][1] for r in ranks]), queries.grad, atol=1e-12, rtol=0)
        torch.testing.assert_close(torch.cat([r[how][2] for r in ranks]), keys.grad, atol=1e-12, rtol=0)
