"""cpcframe's AMDIM training step against a stand-in of amdim-public's, side by side.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/amdim_step.py                        # CPU, batch 32, 2 then 1 thread
    .venv/bin/python benchmarks/amdim_step.py --batch 64 --threads 2 --repeats 5

Model: ``recipes/amdim_cifar10.toml`` at the CIFAR-10 paper size (32x32, ndf 128, n_rkhs
1024, depth 10), both views encoded in one call. The two steps start from the same
weights (two copies) and each has its own AdamW:

* **cpcframe**: the model as ``cpcframe run`` builds it (on the CPU the encoder's GEMM
  path, ``cpcframe_image/amdim/cpu_gemm.py``), the ``amdim`` critic and the InfoNCE engine.
* **amdim-public stand-in**: the same modules run as the public code's ``model.py`` runs
  them (channels-first ``nn.Conv2d`` everywhere, the mean-pool shortcut even where it is
  1x1, separate phi-head convolutions) and its loss as ``costs.py`` computes it
  (``NCE_MI_MULTI._model_scores`` on ``torch.mm`` scores with ``mask_pos``/``mask_neg``,
  the masked ``_sample_src_ftr``, ``loss_1t5 + loss_1t7 + loss_5t5 + lgt_reg``), without
  its online classifier and with both views in one encoder call (so batch statistics,
  and therefore the losses, are equal; checked before timing).

Timing: the two steps alternate (``--repeats`` pairs after ``--warmup``), so contention
from other processes hits both alike; reported are each side's median step time and the
median of the per-pair ratios. Threads: ``torch.set_num_threads`` for each value of
``--threads`` in turn.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from amdim_public_loss import ref_loss

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "amdim_cifar10.toml"


# ---- amdim-public's forward (model.py), on cpcframe's modules ---------------------------

def ref_nxn(layer, x):
    """``ConvResNxN.forward`` of model.py."""
    h1 = layer.bn1(F.conv2d(x, layer.conv1.weight, None, layer.stride))
    h2 = F.conv2d(F.relu(h1), layer.conv2.weight)
    if layer.n_out < layer.n_in:
        h3 = F.conv2d(x, layer.conv3.weight, layer.conv3.bias, layer.stride)
    else:
        h3 = F.avg_pool2d(x, layer.width, layer.stride, 0)
        if layer.n_out > layer.n_in:
            h3 = F.pad(h3, (0, 0, 0, 0, 0, layer.n_out - layer.n_in))
    return h2 + h3


def ref_layer(layer, x):
    from cpcframe_image.amdim.layers import ConvResBlock, ConvResNxN, ConvStem

    if isinstance(layer, ConvResBlock):
        for sub in layer:
            x = ref_nxn(sub, x)
        return x
    if isinstance(layer, ConvResNxN):
        return ref_nxn(layer, x)
    if isinstance(layer, ConvStem):
        if layer.pad:
            x = F.pad(x, (layer.pad,) * 4, mode="reflect")
        return F.relu(layer.bn(F.conv2d(x, layer.conv.weight, layer.conv.bias, layer.conv.stride)))
    return layer(x)  # the BatchNorm layers


def ref_head(head, x):
    """``FakeRKHSConvNet.forward``."""
    h = F.conv2d(F.relu(head.bn1(F.conv2d(x, head.conv1.weight))), head.conv2.weight)
    return head.bn_out(h + F.conv2d(x, head.shortcut.weight, head.shortcut.bias))


def ref_encode(encoder, x):
    """``Encoder.forward``: ``(r1, r5, r7)`` channels-first."""
    acts = []
    for layer in encoder.layers:
        x = ref_layer(layer, x)
        acts.append(x)
    taps = encoder.taps
    return acts[taps["1"]], ref_head(encoder.head_5, acts[taps["5"]]), ref_head(encoder.head_7, acts[taps["7"]])


# ---- the two steps ----------------------------------------------------------------------

def build(batch: int):
    from cpcframe import Batch
    from cpcframe.build import build_model
    from cpcframe.config.loader import load_recipe
    from cpcframe.plugins import default_registry

    registry = default_registry()
    recipe = load_recipe(RECIPE, registry, [f"data.batch_size={batch}"])
    torch.manual_seed(0)
    model = build_model(recipe, registry).train()
    g = torch.Generator().manual_seed(0)
    S = recipe.model.encoder.config.image_size
    views = tuple(torch.randn(batch, 3, S, S, generator=g) for _ in range(2))
    return recipe, model, Batch(views=views, groups=torch.zeros(batch, dtype=torch.long))


def adamw(model, recipe):
    t = recipe.train
    return torch.optim.AdamW(model.parameters(), lr=t.lr, betas=t.betas, weight_decay=t.weight_decay)


def ours_loss(model, recipe, batch):
    from cpcframe.model import contrastive_loss
    return contrastive_loss(model(batch), recipe.loss).loss


def public_loss(model, recipe, batch):
    B = batch.views[0].shape[0]
    r1, r5, r7 = ref_encode(model.encoder, torch.cat(batch.views))
    return ref_loss(r1[:B], r5[:B], r7[:B], r1[B:], r5[B:], r7[B:], recipe.loss.score_penalty)


def make_step(loss_fn, model, recipe, batch):
    optimizer = adamw(model, recipe)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, recipe, batch)
        loss.backward()
        optimizer.step()
        return float(loss.detach())
    return step


def check_equal_losses(model, recipe, batch) -> tuple[float, float]:
    """Both losses on the same weights and 5x5 source locations (seeded alike)."""
    torch.manual_seed(1)
    ours = float(ours_loss(copy.deepcopy(model), recipe, batch).detach())
    torch.manual_seed(1)
    ref = float(public_loss(copy.deepcopy(model), recipe, batch).detach())
    if abs(ours - ref) > 1e-4 * max(1.0, abs(ref)):
        raise SystemExit(f"losses differ: cpcframe {ours:.6f}, amdim-public stand-in {ref:.6f}")
    return ours, ref


def measure(batch: int, threads: int, warmup: int, repeats: int, echo=print) -> dict:
    torch.set_num_threads(threads)
    recipe, model, data = build(batch)
    ours_l, ref_l = check_equal_losses(model, recipe, data)
    steps = {"public": make_step(public_loss, copy.deepcopy(model), recipe, data),
             "cpcframe": make_step(ours_loss, copy.deepcopy(model), recipe, data)}
    for _ in range(warmup):
        for s in steps.values():
            s()
    times = {k: [] for k in steps}
    for _ in range(repeats):
        for k, s in steps.items():
            start = time.perf_counter()
            s()
            times[k].append(time.perf_counter() - start)
    ratios = [p / o for p, o in zip(times["public"], times["cpcframe"])]
    res = {"batch": batch, "threads": threads, "loss_cpcframe": ours_l, "loss_public": ref_l,
           "public_s": statistics.median(times["public"]), "cpcframe_s": statistics.median(times["cpcframe"]),
           "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
           "load_avg": os.getloadavg()[0]}
    echo(f"| {batch} | {threads} | {res['public_s']:.2f} | {res['cpcframe_s']:.2f} | {res['ratio']:.2f}x "
         f"[{res['ratio_min']:.2f}, {res['ratio_max']:.2f}] | {ours_l:.5f} / {ref_l:.5f} | {res['load_avg']:.1f} |",
         flush=True)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", default="32", help="comma-separated batch sizes (images; x2 views)")
    p.add_argument("--threads", default="2,1", help="comma-separated CPU thread counts")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="alternating step pairs timed")
    args = p.parse_args()
    print(f"AMDIM step, CIFAR-10 paper size, CPU {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}")
    print("| batch | threads | amdim-public stand-in s | cpcframe s | speed-up (median [min, max] of pairs) "
          "| loss cpcframe / stand-in | load avg |")
    print("|---|---|---|---|---|---|---|")
    for b in (int(v) for v in args.batch.split(",")):
        for t in (int(v) for v in args.threads.split(",")):
            measure(b, t, args.warmup, args.repeats)


if __name__ == "__main__":
    main()
