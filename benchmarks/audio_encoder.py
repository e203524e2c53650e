"""CPC's audio encoder, forward+backward: the shifted-GEMM convolutions against ``F.conv1d``.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/audio_encoder.py                     # CPU, 2 threads, fp32 (and bf16 where native)
    .venv/bin/python benchmarks/audio_encoder.py --device cuda       # cuDNN against the GEMM

Size: the paper's (van den Oord et al. 2018, section 3.1): batch 8 windows of 20480
samples, five strided convolutions of 512 channels with CPC_audio's channel norm.
Both backends hold the same weights (one is loaded into the other) and the script checks
that their outputs agree before timing. Steps are interleaved (conv1d, shifted_gemm,
conv1d, ...) so that load from other jobs falls on both alike; medians are reported.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys

import torch

from measure import like_a_run, native_bf16, time_steps


def encoders(device: torch.device):
    try:
        from cpcframe_audio.encoders import AudioEncoderConfig, CPCAudioEncoder
    except ImportError:  # pragma: no cover - the audio plugin is part of the repository
        sys.exit("benchmarks/audio_encoder.py needs the audio plugin (plugins/cpcframe_audio)")
    torch.manual_seed(0)
    native = CPCAudioEncoder(AudioEncoderConfig(conv_backend="conv1d")).to(device)
    gemm = CPCAudioEncoder(AudioEncoderConfig(conv_backend="shifted_gemm")).to(device)
    gemm.load_state_dict(native.state_dict())
    return {"conv1d": native, "shifted_gemm": gemm}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--precisions", default="auto",
                   help="comma-separated: fp32, bf16, fp16; auto = fp32, and bf16 where the device has it in hardware")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--window", type=int, default=20480, help="samples per window")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    return p


def measure(args, echo=print) -> dict[str, dict[str, float]]:
    """``{precision: {backend: median seconds, "speedup": conv1d / shifted_gemm}}``."""
    torch.set_num_threads(args.threads)
    like_a_run()
    device = torch.device(args.device)
    models = encoders(device)
    x = 0.1 * torch.randn(args.batch, 1, args.window, generator=torch.Generator().manual_seed(0)).to(device)
    echo(f"size: B={args.batch} window={args.window}, 5 convolutions of 512 channels, "
         f"forward+backward, on {device.type}, torch {torch.__version__}")
    precisions = args.precisions
    if precisions == "auto":
        native = native_bf16(device)
        precisions = "fp32,bf16" if native else "fp32"
        if not native:
            echo("bf16 skipped: this device emulates it (no AVX-512 BF16 or AMX); --precisions fp32,bf16 forces it")
    results = {}
    for precision in precisions.split(","):
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

        def step(model):
            def run():
                ctx = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
                with ctx:
                    z = model(x)
                model.zero_grad(set_to_none=True)
                z.float().square().mean().backward()
            return run

        with torch.no_grad(), (torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()):
            diff = (models["conv1d"](x).float() - models["shifted_gemm"](x).float()).abs().max().item()
        for model in models.values():
            time_steps(step(model), device, args.warmup, 0)
        times: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.repeats):
            for name, model in models.items():
                times[name] += time_steps(step(model), device, 0, 1)[0]
        row = {name: statistics.median(t) for name, t in times.items()}
        row["speedup"] = row["conv1d"] / row["shifted_gemm"]
        results[precision] = row
        echo(f"  {precision}: conv1d {1000 * row['conv1d']:.1f} ms, shifted_gemm "
             f"{1000 * row['shifted_gemm']:.1f} ms -> {row['speedup']:.2f}x "
             f"(outputs agree to {diff:.1e}; medians of {args.repeats})")
    return results


def main() -> None:
    measure(parser().parse_args())


if __name__ == "__main__":
    main()
