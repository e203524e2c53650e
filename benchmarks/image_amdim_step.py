"""Images per second and peak memory of one AMDIM training step at the paper's CIFAR-10 size.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/image_amdim_step.py                   # CPU, 2 threads, batch 200
    .venv/bin/python benchmarks/image_amdim_step.py --batch 32 --repeats 2   # quicker
    .venv/bin/python benchmarks/image_amdim_step.py --device cuda --precision bf16

Size (Bachman, Hjelm, Buchwalter 2019, arXiv 1906.00910; ``recipes/amdim_cifar10.toml``):
32x32 images, encoder ``ndf = 128``, ``n_rkhs = 1024``, ``n_depth = 10``, batch 200, two
views per image (400 encoder inputs per step), the ``amdim`` critic's 1->5, 1->7 and 5->5
contrasts in both directions with every other image's locations as negatives, clip 20,
score penalty 4e-2.

One step = encoder on both views (one call, shared batch statistics), critic, the InfoNCE
engine, backward and an AdamW update, built from the recipe exactly as ``cpcframe run``
builds it. The views are random tensors: the data side is timed apart (``views/s``: the
``amdim_views`` sampler making both augmented views of an image, one process).

Timing: ``time.perf_counter`` around each step (``torch.cuda.synchronize`` on a GPU) after
``--warmup`` steps; the median of ``--repeats`` is reported with min and max.
Peak memory: on CUDA ``max_memory_allocated`` above what was live before the step; on CPU
the running sum of the allocator's ``[memory]`` events in a profiled step (the method of
``benchmarks/engine_vs_loop.py``; see README.md), i.e. the peak of live tensor bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from cpcframe.training.state import fused_adamw_applies

from measure import peak_memory, sync

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "amdim_cifar10.toml"


def build(args):
    """The recipe's model, loss config and an AdamW optimizer, on ``args.device``."""
    from cpcframe.build import build_model, build_view_sampler
    from cpcframe.config.loader import load_recipe
    from cpcframe.plugins import default_registry

    registry = default_registry()
    overrides = [f"data.batch_size={args.batch}", f"model.encoder.ndf={args.ndf}",
                 f"model.encoder.n_rkhs={args.n_rkhs}", f"model.encoder.n_depth={args.n_depth}"]
    recipe = load_recipe(RECIPE, registry, overrides)
    torch.manual_seed(0)
    model = build_model(recipe, registry).to(args.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.train.lr, betas=recipe.train.betas,
                                  weight_decay=recipe.train.weight_decay,
                                  fused=fused_adamw_applies(model.parameters()) or None)  # as the trainer
    return recipe, model, optimizer, build_view_sampler(recipe, registry)


def make_step(args):
    from cpcframe import Batch
    from cpcframe.model import contrastive_loss

    recipe, model, optimizer, sampler = build(args)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    S = recipe.model.encoder.config.image_size
    views = tuple(torch.randn(args.batch, 3, S, S, generator=g).to(device) for _ in range(2))
    batch = Batch(views=views, groups=torch.zeros(args.batch, dtype=torch.long, device=device))
    dtype = {"fp32": None, "bf16": torch.bfloat16}[args.precision]

    def step():
        optimizer.zero_grad(set_to_none=True)
        ctx = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with ctx:
            out = contrastive_loss(model(batch), recipe.loss)
        out.loss.backward()
        optimizer.step()
        return float(out.loss.detach())

    params = sum(p.numel() for p in model.parameters())
    return step, sampler, params


def views_per_second(sampler, n: int = 64) -> float:
    """Images per second the ``amdim_views`` sampler turns into two augmented views, on one
    thread as in a loader worker (with 2 threads on a busy 2-core machine the small tensor
    ops of one image mostly wait for each other: 21 against 1561 images/s measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _views_per_second(sampler, n)
    finally:
        torch.set_num_threads(threads)


def _views_per_second(sampler, n: int) -> float:
    from cpcframe import Example

    g = torch.Generator().manual_seed(1)
    images = [Example(data=torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)) for _ in range(n)]
    sampler.sample(images[0], g)  # warm-up: lazy imports
    start = time.perf_counter()
    for ex in images:
        sampler.sample(ex, g)
    return n / (time.perf_counter() - start)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--batch", type=int, default=200, help="images per step (AMDIM: 200)")
    p.add_argument("--ndf", type=int, default=128)
    p.add_argument("--n-rkhs", type=int, default=1024)
    p.add_argument("--n-depth", type=int, default=10)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-memory", action="store_true", help="skip the (slow, profiled) memory step")
    return p


def measure(args, echo=print) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    step, sampler, params = make_step(args)
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        sync(device)
        start = time.perf_counter()
        loss = step()
        sync(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    result = {
        "device": str(device), "threads": args.threads, "batch": args.batch, "ndf": args.ndf,
        "n_rkhs": args.n_rkhs, "n_depth": args.n_depth, "precision": args.precision,
        "parameters": params, "step_s": median, "step_min_s": min(times), "step_max_s": max(times),
        "images_per_s": args.batch / median, "loss": loss,
        "views_images_per_s": views_per_second(sampler),
        "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
    }
    if not args.no_memory:
        result["peak_mib"] = peak_memory(step, device) / 2 ** 20
    echo(f"AMDIM training step, CIFAR-10 size: 32x32, ndf {args.ndf}, n_rkhs {args.n_rkhs}, "
         f"depth {args.n_depth}, batch {args.batch} (x2 views), {params / 1e6:.1f} M parameters")
    echo(f"device {device} ({args.threads} threads), {args.precision}, load average {result['load_avg']:.1f}, "
         f"torch {torch.__version__}")
    echo("| step s (median [min, max]) | images/s | peak MiB | sampler images/s (2 views, 1 thread) |")
    echo("|---|---|---|---|")
    peak = f"{result['peak_mib']:.0f}" if "peak_mib" in result else "n/a"
    echo(f"| {median:.2f} [{min(times):.2f}, {max(times):.2f}] | {result['images_per_s']:.1f} | {peak} | "
         f"{result['views_images_per_s']:.0f} |")
    return result


def main() -> None:
    args = parser().parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device")
    measure(args)


if __name__ == "__main__":
    main()
