"""cpcframe's AMDIM training step against a stand-in of amdim-public's, side by side.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/amdim_step.py                        # CPU, batch 32, 2 then 1 thread
    .venv/bin/python benchmarks/amdim_step.py --batch 64 --threads 2 --repeats 5
    .venv/bin/python benchmarks/amdim_step.py --precision fp32,bf16   # bf16: AMX / AVX512-BF16 CPUs

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

Precision: ``fp32`` (the target's comparison: equal losses, checked to 1e-4) or ``bf16``,
both steps under ``torch.autocast("cpu", torch.bfloat16)`` around the forward and loss, as
``train.precision = "bf16"`` runs them; there each side's loss is checked against its
fp32 loss on the same weights (within :data:`BF16_TOLERANCE`, relative) and the row says
how far it is.

Timing: the two steps alternate (``--repeats`` pairs after ``--warmup``), so contention
from other processes hits both alike; reported are each side's median step time and the
median of the per-pair ratios. Threads: ``torch.set_num_threads`` for each value of
``--threads`` in turn.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from amdim_public_loss import ref_loss
from measure import cpu_model, like_a_run, vector_units

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "amdim_cifar10.toml"

#: bf16 rows: each side's loss within this of its fp32 loss (relative), on the initial
#: weights with every residual projection made non-zero (:func:`perturbed`). Measured on
#: the Xeon: 1.8e-3 there for both sides; at most 6e-4 at the weights of the first 12
#: fp32 training steps.
BF16_TOLERANCE = 5e-3


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
    from cpcframe.training.state import fused_adamw_applies

    params = list(model.parameters())  # the trainer's optimizer on both sides: only the steps differ
    return torch.optim.AdamW(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay,
                             fused=fused_adamw_applies(params) or None)


def ours_loss(model, recipe, batch):
    from cpcframe.model import contrastive_loss
    return contrastive_loss(model(batch), recipe.loss).loss


def public_loss(model, recipe, batch):
    B = batch.views[0].shape[0]
    r1, r5, r7 = ref_encode(model.encoder, torch.cat(batch.views))
    return ref_loss(r1[:B], r5[:B], r7[:B], r1[B:], r5[B:], r7[B:], recipe.loss.score_penalty)


def autocast(precision: str):
    """The trainer's context for ``train.precision`` on the CPU (forward and loss only)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def make_step(loss_fn, model, recipe, batch, precision="fp32"):
    optimizer = adamw(model, recipe)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision):
            loss = loss_fn(model, recipe, batch)
        loss.backward()
        optimizer.step()
        return float(loss.detach())
    return step


def _loss(loss_fn, model, recipe, batch, precision) -> float:
    torch.manual_seed(1)  # the same 5x5 source locations on both sides
    with autocast(precision):
        return float(loss_fn(copy.deepcopy(model), recipe, batch).detach())


def check_losses(model, recipe, batch, precision="fp32") -> tuple[float, float, float]:
    """Both losses on the same weights and 5x5 source locations: equal in fp32; in bf16
    each within :data:`BF16_TOLERANCE` of its fp32 loss. Returns the two losses and the
    largest relative distance from fp32 (0 for fp32)."""
    ours = _loss(ours_loss, model, recipe, batch, "fp32")
    ref = _loss(public_loss, model, recipe, batch, "fp32")
    if abs(ours - ref) > 1e-4 * max(1.0, abs(ref)):
        raise SystemExit(f"losses differ: cpcframe {ours:.6f}, amdim-public stand-in {ref:.6f}")
    if precision == "fp32":
        return ours, ref, 0.0
    low = _loss(ours_loss, model, recipe, batch, precision), _loss(public_loss, model, recipe, batch, precision)
    off = max(abs(low[0] - ours) / abs(ours), abs(low[1] - ref) / abs(ref))
    if off > BF16_TOLERANCE:
        raise SystemExit(f"{precision} losses {low[0]:.6f} / {low[1]:.6f} are {off:.1e} from fp32 "
                         f"{ours:.6f} / {ref:.6f}, above {BF16_TOLERANCE:g}")
    return low[0], low[1], off


def perturbed(model):
    """The model with its zero-initialised residual projections made non-zero (normal,
    std 0.02), so that every layer counts in the bf16 check (at init they are identity)."""
    from cpcframe_image.amdim.layers import ConvResNxN, RKHSHead

    model = copy.deepcopy(model)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (ConvResNxN, RKHSHead)):
                m.conv2.weight.copy_(torch.randn(m.conv2.weight.shape, generator=g) * 0.02)
    return model


#: The Markdown header of the rows :func:`measure` prints.
TABLE_HEADER = ("| batch | threads | precision | amdim-public stand-in s | cpcframe s | speed-up (median [min, max] "
                "of pairs) | loss cpcframe / stand-in | load avg |\n|---|---|---|---|---|---|---|---|")


def measure(batch: int, threads: int, warmup: int, repeats: int, precision: str = "fp32", echo=print) -> dict:
    torch.set_num_threads(threads)
    like_a_run()
    recipe, model, data = build(batch)
    ours_l, ref_l, off = check_losses(model if precision == "fp32" else perturbed(model), recipe, data, precision)
    steps = {"public": make_step(public_loss, copy.deepcopy(model), recipe, data, precision),
             "cpcframe": make_step(ours_loss, copy.deepcopy(model), recipe, data, precision)}
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
    res = {"batch": batch, "threads": threads, "precision": precision, "loss_cpcframe": ours_l,
           "loss_public": ref_l, "off_fp32": off,
           "public_s": statistics.median(times["public"]), "cpcframe_s": statistics.median(times["cpcframe"]),
           "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
           "load_avg": os.getloadavg()[0]}
    loss = f"{ours_l:.5f} / {ref_l:.5f}" + (f" ({off:.0e} from fp32)" if precision != "fp32" else "")
    echo(f"| {batch} | {threads} | {precision} | {res['public_s']:.2f} | {res['cpcframe_s']:.2f} | "
         f"{res['ratio']:.2f}x [{res['ratio_min']:.2f}, {res['ratio_max']:.2f}] | {loss} | "
         f"{res['load_avg']:.1f} |", flush=True)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", default="32", help="comma-separated batch sizes (images; x2 views)")
    p.add_argument("--threads", default="2,1", help="comma-separated CPU thread counts")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="alternating step pairs timed")
    p.add_argument("--precision", default="fp32", help="comma-separated: fp32 (equal losses), bf16 (autocast)")
    args = p.parse_args()
    precisions = args.precision.split(",")
    if any(v not in ("fp32", "bf16") for v in precisions):
        p.error(f"--precision takes fp32 and/or bf16, got {args.precision!r}")
    print(f"AMDIM step, CIFAR-10 paper size, {cpu_model()} ({vector_units()}), "
          f"{os.cpu_count()} cores, torch {torch.__version__}")
    print(TABLE_HEADER)
    for b in (int(v) for v in args.batch.split(",")):
        for t in (int(v) for v in args.threads.split(",")):
            for precision in precisions:
                measure(b, t, args.warmup, args.repeats, precision)
    from cpcframe import measured_choice

    choices = {k[0][1:4]: v for k, v in measured_choice.cached_choices().items() if k[0][0] == "amdim_conv"}
    print("spatial convolutions (input, weight, stride) -> backend:", choices)


if __name__ == "__main__":
    main()
