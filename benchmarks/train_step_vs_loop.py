"""A whole CPC training step at the paper's audio size: cpcframe's engine vs a loop over k.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/train_step_vs_loop.py                      # CPU, 2 threads
    .venv/bin/python benchmarks/train_step_vs_loop.py --device cuda        # on a GPU
    .venv/bin/python benchmarks/train_step_vs_loop.py --device cuda --precision bf16

Size (van den Oord et al. 2018, section 3.1): batch 8, windows of 20480 samples; encoder of
five strided convolutions (strides 5,4,2,2,2, kernels 10,8,4,4,4, 512 channels, CPC_audio's
channel norm) -> T = 128 latents of C = 512; GRU of 256 units; K = 12 steps; 128 negatives.

One step = forward, loss, backward and an AdamW update, as the trainer does it. The two
variants share the encoder, the GRU and the optimizer; they differ in the loss head:

* ``engine``: cpcframe's ``cpc_steps`` critic (one ``Linear(256, 12·512)`` for all ``W_k``)
  and the InfoNCE engine (all steps, queries and 128 sampled negatives in batched ops), plus
  the per-step metrics the trainer logs. By default the negatives are drawn once per window
  position and shared by its 12 steps (``[loss] share_negatives = true``, the
  ``cpc_librispeech`` recipe's setting and the loop's way); ``--sampling per_query`` draws
  128 for every query instead.
* ``loop``: the public CPC_audio code's way (``CPCUnsupersivedCriterion``): negatives drawn
  on the device once per window position ``(b, t)`` and shared by the ``k``s, then a Python
  loop over ``k`` that concatenates positive and negatives into ``(B, 1+N, W, C)``, scores
  them against ``W_k c_t`` and takes a cross-entropy (``loop_loss`` of
  ``benchmarks/engine_vs_loop.py``, whose equality with the engine that script checks).

It also times the shared part alone (encoder + GRU forward/backward + optimizer on a
trivial loss) so that what dominates a step is visible: the loss head's speed-up is
``(loop - shared) / (engine - shared)``, the whole step's is ``loop / engine``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys

import torch
from torch import Tensor, nn

from measure import SAMPLINGS, like_a_run, time_steps


def audio_encoder(conv_backend: str = "auto") -> nn.Module:
    """The audio plugin's ``cpc_audio`` encoder with the paper's defaults."""
    try:
        from cpcframe_audio.encoders import AudioEncoderConfig, CPCAudioEncoder
    except ImportError:  # pragma: no cover - the audio plugin is part of the repository
        sys.exit("benchmarks/train_step_vs_loop.py needs the audio plugin (plugins/cpcframe_audio)")
    return CPCAudioEncoder(AudioEncoderConfig(conv_backend=conv_backend))


class Shared(nn.Module):
    """Encoder + GRU, identical in both variants: ``(B, 1, S) -> z (B, T, 512), c (B, T, 256)``."""

    def __init__(self, hidden: int = 256, conv_backend: str = "auto"):
        super().__init__()
        self.encoder = audio_encoder(conv_backend)
        self.gru = nn.GRU(self.encoder.output_dim, hidden, batch_first=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encoder(x)
        c, _ = self.gru(z)
        return z, c


def engine_model(args):
    from cpcframe.model import ContrastiveModel
    from cpcframe_sequence.context_models import RecurrentConfig, build_gru
    from cpcframe_sequence.critics import StepCriticConfig, build_step_critic

    encoder = audio_encoder(args.conv_backend)
    context = build_gru(RecurrentConfig(hidden_size=args.hidden), input_dim=encoder.output_dim)
    critic = build_step_critic(StepCriticConfig(steps=args.steps), latent_dim=encoder.output_dim,
                               context_dim=args.hidden)
    return ContrastiveModel(encoder, context, critic)


def cpc_audio_negatives_on_device(B: int, T: int, W: int, N: int, device: torch.device) -> Tensor:
    """``(B, N, W)`` flat indices into ``z.view(B·T, C)``, drawn on the device as CPC_audio's
    ``sampleClean`` does (any item, any location but the position itself)."""
    batch_idx = torch.randint(0, B, (N * W * B,), device=device)
    seq_idx = torch.randint(1, T, (N * W * B,), device=device)
    base = torch.arange(W, device=device).view(1, 1, W).expand(B, N, W).reshape(-1)
    seq_idx = torch.remainder(seq_idx + base, T)
    return (seq_idx + batch_idx * T).view(B, N, W)


def adamw(parameters) -> torch.optim.AdamW:
    """The trainer's optimizer (fused where it applies, :mod:`cpcframe.training.state`),
    the same in every variant, so that the variants differ in their loss head only."""
    from cpcframe.training.state import fused_adamw_applies

    parameters = list(parameters)
    return torch.optim.AdamW(parameters, lr=2e-4, fused=fused_adamw_applies(parameters) or None)


def make_steps(args, device: torch.device):
    """``{variant: step()}``; each step is a full optimisation step on the same batch."""
    from cpcframe.batch import Batch
    from cpcframe.infonce import InfoNCEConfig
    from cpcframe.model import contrastive_loss

    import engine_vs_loop as ref  # the loop-style reference, same folder

    g = torch.Generator().manual_seed(0)
    x = (0.1 * torch.randn(args.batch, 1, args.window, generator=g)).to(device)
    batch = Batch(views=(x,), groups=torch.arange(args.batch, device=device))
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]

    def autocast():
        return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()

    torch.manual_seed(0)
    model = engine_model(args).to(device)
    opt_e = adamw(model.parameters())
    config = InfoNCEConfig(num_negatives=args.negatives, share_negatives=args.sampling == "shared")

    def engine():
        with autocast():
            out = contrastive_loss(model(batch), config)  # metrics: floats, as the trainer logs
        opt_e.zero_grad(set_to_none=True)
        out.loss.backward()
        opt_e.step()

    torch.manual_seed(0)
    shared = Shared(args.hidden, args.conv_backend).to(device)
    K, C, H = args.steps, shared.encoder.output_dim, args.hidden
    w = nn.Parameter(torch.randn(K, C, H, device=device) / H ** 0.5)
    opt_l = adamw(list(shared.parameters()) + [w])

    def loop():
        with autocast():
            z, c = shared(x)
            B, T, _ = z.shape
            neg = cpc_audio_negatives_on_device(B, T, T - K, args.negatives, device)
            loss, per_step, acc = ref.loop_loss(c, z, w, neg)
        opt_l.zero_grad(set_to_none=True)
        loss.backward()
        opt_l.step()
        per_step.cpu(), acc.cpu()  # CPC_audio logs per-step losses and accuracies each step

    torch.manual_seed(0)
    alone = Shared(args.hidden, args.conv_backend).to(device)
    opt_s = adamw(alone.parameters())

    def shared_only():
        with autocast():
            z, c = alone(x)
            loss = z.float().mean() + c.float().mean()
        opt_s.zero_grad(set_to_none=True)
        loss.backward()
        opt_s.step()
        loss.item()

    return {"shared": shared_only, "engine": engine, "loop": loop}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="autocast dtype for both variants")
    p.add_argument("--conv-backend", choices=("auto", "shifted_gemm", "conv1d"), default="auto",
                   help="the encoder's convolutions, in every variant (cpc_audio's conv_backend)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--window", type=int, default=20480, help="samples per window")
    p.add_argument("--hidden", type=int, default=256, help="GRU units")
    p.add_argument("--steps", type=int, default=12, help="K")
    p.add_argument("--negatives", type=int, default=128)
    p.add_argument("--sampling", choices=tuple(SAMPLINGS), default="shared",
                   help="the engine's negatives: once per position, shared by its K steps (as the "
                        "loop and the cpc_librispeech recipe draw them), or for every query")
    p.add_argument("--warmup", type=int, default=None, help="default: 1 on CPU, 5 on GPU")
    p.add_argument("--repeats", type=int, default=None, help="default: 3 on CPU, 30 on GPU")
    return p


def measure(args, echo=print) -> dict:
    """Time the three steps; print as it goes; return median seconds and the speed-up."""
    torch.set_num_threads(args.threads)
    like_a_run()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    repeats = args.repeats if args.repeats is not None else (30 if gpu else 3)

    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    echo(f"size: B={args.batch} window={args.window} C=512 H={args.hidden} K={args.steps} "
         f"N={args.negatives} (engine: {SAMPLINGS[args.sampling]}), {args.precision}, on {name}, "
         f"torch {torch.__version__}")
    steps = make_steps(args, device)
    rows, cpu_rows, mins = {}, {}, {}
    variants = ("shared", "engine", "loop")
    for variant in variants:  # warm-up: lazy initialisation, allocator, oneDNN primitives
        time_steps(steps[variant], device, warmup, 0)
    # Interleaved (shared, engine, loop, shared, ...), so that a burst of load from other
    # jobs on a shared machine falls on every variant alike rather than on one of them.
    measured: dict[str, tuple[list[float], list[float]]] = {v: ([], []) for v in variants}
    for _ in range(repeats):
        for variant in variants:
            wall, cpu = time_steps(steps[variant], device, 0, 1)
            measured[variant][0].extend(wall)
            measured[variant][1].extend(cpu)
    for variant in variants:
        times, cpu = measured[variant]
        rows[variant] = statistics.median(times)
        mins[variant] = min(times)
        cpu_rows[variant] = statistics.median(cpu)
        echo(f"  {variant:<7} median {1000 * rows[variant]:9.1f} ms  (min {1000 * min(times):.1f}, "
             f"max {1000 * max(times):.1f}, {repeats} steps; CPU time median {1000 * cpu_rows[variant]:.1f} ms)")
    shared, engine, loop = rows["shared"], rows["engine"], rows["loop"]
    echo(f"\nwhole step: engine is {loop / engine:.2f}x faster than the loop "
         f"({1000 * loop:.1f} -> {1000 * engine:.1f} ms, medians; "
         f"{mins['loop'] / mins['engine']:.2f}x from the fastest steps)")
    head_e, head_l = engine - shared, loop - shared
    if head_e > 0 and head_l > 0:
        echo(f"loss head (step - shared): {1000 * head_l:.1f} -> {1000 * head_e:.1f} ms, "
             f"{head_l / head_e:.1f}x faster")
    echo(f"encoder + GRU + optimizer (shared): {100 * shared / engine:.0f}% of an engine step, "
         f"{100 * shared / loop:.0f}% of a loop step")
    cpu_speedup = cpu_rows["loop"] / cpu_rows["engine"]
    if not gpu:
        echo(f"CPU time (this process's threads): engine is {cpu_speedup:.2f}x cheaper than the loop "
             f"({1000 * cpu_rows['loop']:.1f} -> {1000 * cpu_rows['engine']:.1f} ms)")
    from machine_rates import counted_flops

    flops = counted_flops(steps["engine"])  # one more engine step, under the flop counter
    echo(f"engine step: {flops / 1e9:.1f} GFLOP counted (matrix products, convolutions, gathered scores), "
         f"{flops / engine / 1e9:.1f} GFLOP/s at the median time")
    return {**rows, "speedup": loop / engine, "cpu_s": cpu_rows, "cpu_speedup": cpu_speedup,
            "min_s": mins, "min_speedup": mins["loop"] / mins["engine"], "engine_flops": flops}


def main() -> None:
    measure(parser().parse_args())


if __name__ == "__main__":
    main()
