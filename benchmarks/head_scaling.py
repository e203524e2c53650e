"""Does the CPC loss head stay linear in the batch? Cost per window at batch 8 .. 64, and
with negatives gathered from a simulated global batch.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/head_scaling.py                 # CPU, 2 threads
    .venv/bin/python benchmarks/head_scaling.py --batches 8,64 --repeats 5
    .venv/bin/python benchmarks/head_scaling.py --device cuda

The head is what the trainer runs after the context model: the ``cpc_steps`` critic
(one ``Linear(256, 12·512)`` for every ``W_k``) and the InfoNCE engine with 128 negatives
per query sampled from the whole key batch (policy ``batch``), forward and backward, from
leaf tensors ``z (B, T, 512)`` and ``c (B, T, 256)`` (``T = 128``, ``K = 12``: the CPC
audio size), with ``[loss] scoring = auto`` (the engine's choice); ``--dense-batches``
adds rows forced to the dense product, for comparison (at batch 64 it is 412 GFLOP, so
they stop at 16 by default). Both samplings are timed (``--sampling``): 128 negatives
drawn for every query (``per_query``), and drawn once per window position and shared by
its 12 steps (``shared``: ``[loss] share_negatives = true``, CPC_audio's way and the
``cpc_librispeech`` recipe's setting).

Targets (issue 13): the head's cost per window at batch 64 within 1.2x of that at batch 8;
with negatives from a global batch of 64 held by 8 processes of batch 8, the per-process
head cost within 1.3x of the local-only one.

**Simulated world.** Gloo processes on a 2-core machine would time the scheduler, not the
head, so the gathered case runs in one process what one rank computes: its 8 local items'
queries against the keys of all 64 items (``item_offset = 0``), the other ranks' keys a
leaf tensor standing for the all-gather's output, whose gradient is what the
reduce-scatter would send back. The collectives themselves are not timed; their payload is
printed (all-gather: every rank's keys, ``64·T·512`` floats; reduce-scatter: their
gradient). ``tests/core/test_distributed_scoring.py`` checks with real gloo processes that
this path gives the single process's losses and gradients.

Timing: interleaved repeats (every variant once per round, so load from other jobs falls
on all of them), median and min reported; ratios are of medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import attrs
import torch

from measure import SAMPLINGS, host, like_a_run, sync


def head(args, batch: int, world: int, scoring: str, device: torch.device, shared: bool = False):
    """``step()`` running one forward+backward of the head for ``batch`` local items whose
    keys are gathered from ``world`` ranks of ``batch`` items each; ``shared``: the 12
    steps of a position share their negatives."""
    from cpcframe.infonce import InfoNCEConfig, info_nce
    from cpcframe_sequence.critics import StepCriticConfig, build_step_critic

    g = torch.Generator().manual_seed(0)
    T, C, H = args.length, args.latent, args.hidden
    z = (torch.randn(batch, T, C, generator=g) / C ** 0.25).to(device).requires_grad_()
    c = torch.randn(batch, T, H, generator=g).to(device).requires_grad_()
    others = (torch.randn((world - 1) * batch, T, C, generator=g) / C ** 0.25).to(device).requires_grad_()
    torch.manual_seed(0)
    critic = build_step_critic(StepCriticConfig(steps=args.steps), latent_dim=C, context_dim=H).to(device)
    config = InfoNCEConfig(num_negatives=args.negatives, scoring=scoring, share_negatives=shared)
    sampler = torch.Generator(device=device).manual_seed(1)
    groups = torch.arange(world * batch, device=device)
    local = _batch(z, groups[:batch])

    def step():
        contrast = critic([z], [c], local)[0]
        if world > 1:  # what gather_keys hands the engine on rank 0
            contrast = attrs.evolve(contrast, keys=torch.cat([contrast.keys, others]), groups=groups)
        result = info_nce(contrast, config, generator=sampler)
        for p in (z, c, others, *critic.parameters()):
            p.grad = None
        result.loss.backward()
        return float(result.loss.detach())

    return step


def _batch(z, groups):
    from cpcframe.batch import Batch

    return Batch(views=(z,), groups=groups)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", default="8,16,32,64", help="local batch sizes of the local-only rows")
    p.add_argument("--world", type=int, default=8, help="simulated processes of batch 8 (global = 8·world)")
    p.add_argument("--length", type=int, default=128, help="T: latents per window")
    p.add_argument("--latent", type=int, default=512)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--negatives", type=int, default=128)
    p.add_argument("--sampling", default="per_query,shared",
                   help="per_query: negatives drawn for every query; shared: once per position (comma list)")
    p.add_argument("--dense-batches", default="8,16",
                   help="local batches also timed with scoring = dense, for comparison (none: '')")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--glibc-malloc", action="store_true",
                   help="leave glibc's malloc as it is (a run keeps freed memory: cpcframe.allocator)")
    return p


def measure(args, echo=print) -> dict:
    torch.set_num_threads(args.threads)
    if not args.glibc_malloc:
        like_a_run()  # freed memory kept, as cpcframe run does (train.keep_freed_memory)
    device = torch.device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    samplings = [s for s in args.sampling.split(",") if s]
    unknown = set(samplings) - set(SAMPLINGS)
    if unknown:
        raise SystemExit(f"--sampling: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SAMPLINGS)}")
    variants = {}
    for sampling in samplings:
        shared = sampling == "shared"
        for b in batches:
            variants[("auto", sampling, b, 1)] = head(args, b, 1, "auto", device, shared)
        if args.world > 1:
            variants[("auto", sampling, 8, args.world)] = head(args, 8, args.world, "auto", device, shared)
        for b in (int(b) for b in args.dense_batches.split(",") if b):
            variants[("dense", sampling, b, 1)] = head(args, b, 1, "dense", device, shared)
    times: dict[tuple, list[float]] = {v: [] for v in variants}
    for step in variants.values():
        for _ in range(args.warmup):
            step()
    for _ in range(args.repeats):
        for key, step in variants.items():
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[key].append(time.perf_counter() - start)
    echo(f"CPC loss head (critic + engine, fwd+bwd), T={args.length} C={args.latent} H={args.hidden} "
         f"K={args.steps} N={args.negatives}, {args.repeats} interleaved repeats, "
         f"{'glibc malloc' if args.glibc_malloc else 'freed memory kept'}; host: {host(args.threads)}")
    echo("| scoring | sampling | local batch | key items | median s | min s | ms per local window |")
    echo("|---|---|---|---|---|---|---|")
    per_window = {}
    for (scoring, sampling, b, world), t in times.items():
        med = statistics.median(t)
        per_window[(scoring, sampling, b, world)] = med / b
        echo(f"| {scoring} | {SAMPLINGS[sampling]} | {b} | {b * world} | {med:.3f} | {min(t):.3f} | "
             f"{1000 * med / b:.1f} |")
    out = {"per_window_s": {f"{s}/{n}/B{b}/W{w}": v for (s, n, b, w), v in per_window.items()},
           "batch_ratio": {}, "world_ratio": {}}
    for sampling in samplings:
        base, big = per_window[("auto", sampling, batches[0], 1)], per_window[("auto", sampling, batches[-1], 1)]
        out["batch_ratio"][sampling] = big / base
        echo(f"{SAMPLINGS[sampling]}: per-window cost at batch {batches[-1]} / batch {batches[0]}: "
             f"{big / base:.2f}x (target <= 1.2x)")
        if args.world > 1:
            ratio = per_window[("auto", sampling, 8, args.world)] / per_window[("auto", sampling, 8, 1)]
            out["world_ratio"][sampling] = ratio
            echo(f"{SAMPLINGS[sampling]}: per-process cost with keys of {8 * args.world} items / local only: "
                 f"{ratio:.2f}x (target <= 1.3x)")
    if args.world > 1:
        mib = 8 * args.world * args.length * args.latent * 4 / 2 ** 20
        echo(f"collectives (not timed): all-gather of the keys, {mib:.0f} MiB received per rank; "
             f"reduce-scatter of their gradient, the same")
    return out


def main() -> None:
    measure(parser().parse_args())


if __name__ == "__main__":
    main()
