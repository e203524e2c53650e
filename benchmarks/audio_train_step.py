"""Training steps/s and peak memory of the CPC paper's audio model, built from its recipe.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/audio_train_step.py                          # CPU, 2 threads
    .venv/bin/python benchmarks/audio_train_step.py --repeats 3 --warmup 1   # quicker
    .venv/bin/python benchmarks/audio_train_step.py --device cuda            # on a GPU
    .venv/bin/python benchmarks/audio_train_step.py --set model.context.name=lstm

The model is what ``recipes/cpc_librispeech.toml`` builds through the registry
(van den Oord et al. 2018, section 3.1): ``cpc_audio`` encoder (strides 5,4,2,2,2,
kernels 10,8,4,4,4, 512 channels, channel norm) -> ``gru`` of 256 -> ``cpc_steps`` with
K = 12, InfoNCE with 128 negatives from the batch; batch 8 windows of 20480 samples
``(8, 1, 20480)`` -> latents ``(8, 128, 512)`` -> context ``(8, 128, 256)``. One step is
what the trainer does: forward, loss, backward, AdamW update (``--set`` changes the
recipe, e.g. ``model.encoder.norm=batch``).

Data loading is left out (random waveforms already in memory): the loader's throughput
from the decoded audio cache against what a step consumes is
``benchmarks/loader_throughput.py``'s measurement.

Timing and peak memory are ``benchmarks/measure.py``'s, as in the other benchmarks:
wall-clock seconds of each of ``--repeats`` steps after ``--warmup`` ones (synchronised on
a GPU); peak memory of one more step above what was live before it, on CUDA
``max_memory_allocated``, on the CPU the peak of live tensor bytes from the profiler's
``[memory]`` events (allocator slack and RSS not included).
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

from cpcframe.training.state import fused_adamw_applies

from measure import peak_memory, time_steps

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "cpc_librispeech.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    from cpcframe import Batch
    from cpcframe.build import build_model, build_view_sampler
    from cpcframe.config.loader import load_recipe
    from cpcframe.model import contrastive_loss
    from cpcframe.plugins import default_registry

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    registry = default_registry()
    recipe = load_recipe(RECIPE, registry, [f"data.batch_size={args.batch}", *args.overrides])
    model = build_model(recipe, registry).to(device).train()
    window = build_view_sampler(recipe, registry).config.window
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.train.lr, betas=recipe.train.betas,
                                  fused=fused_adamw_applies(model.parameters()) or None)  # as the trainer
    B = recipe.data.batch_size
    wave = 0.1 * torch.randn(B, 1, window, device=device)
    batch = Batch(views=(wave,), groups=torch.arange(B, device=device))
    cuda = device.type == "cuda"
    metrics: dict[str, float] = {}

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            contrasts = model(batch)
            out = contrastive_loss(contrasts, recipe.loss)
        out.loss.backward()
        optimizer.step()
        metrics.update(out.metrics)

    load_before = os.getloadavg()[0]
    times, _ = time_steps(step, device, args.warmup, args.repeats)
    load_after = os.getloadavg()[0]
    peak_mib = peak_memory(step, device) / 2**20
    if cuda:
        how = "cuda max_memory_allocated - allocated before"
        name = torch.cuda.get_device_name(device)
    else:
        how = "peak live CPU tensor bytes (profiler) - live before"
        name = f"CPU, {args.threads} threads"
    params = sum(p.numel() for p in model.parameters())
    med = statistics.median(times)
    print(f"CPC audio train step ({name}; torch {torch.__version__}; {args.precision})")
    print(f"model: {recipe.model.encoder.name} {recipe.model.encoder.config.hidden} -> "
          f"{recipe.model.context.name} -> {recipe.model.critic.name} K={recipe.model.critic.config.steps}; "
          f"{params / 1e6:.2f} M parameters; batch {B} x {window} samples; "
          f"{recipe.loss.num_negatives} negatives ({recipe.loss.negatives})")
    print(f"{'repeats':>8} {'median s':>9} {'min s':>7} {'max s':>7} {'steps/s':>8} {'windows/s':>10} {'peak MiB':>9}")
    print(f"{len(times):>8} {med:>9.3f} {min(times):>7.3f} {max(times):>7.3f} {1 / med:>8.2f} "
          f"{B / med:>10.1f} {peak_mib:>9.0f}")
    print(f"peak memory: {how}; load average {load_before:.2f} -> {load_after:.2f}; "
          f"last loss {metrics.get('loss', float('nan')):.4f}")


if __name__ == "__main__":
    main()
