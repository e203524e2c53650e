"""Every benchmark in one run, with the targets of the scale-and-speed issue checked.

Run (``make bench`` runs the full version)::

    .venv/bin/python benchmarks/run_all.py            # paper sizes: about 3 min on a quiet 2-core CPU
    .venv/bin/python benchmarks/run_all.py --quick    # small sizes, about 1 min: a smoke test
    .venv/bin/python benchmarks/run_all.py --device cuda
    .venv/bin/python benchmarks/run_all.py --json results.json

Each benchmark compares, inside one process, cpcframe against a plain implementation
written the way the public CPC code is (a Python loop over the prediction steps ``k``
with the negatives concatenated per step):

==========================  ==================================================  ==========
benchmark                   ratio                                               target
==========================  ==================================================  ==========
``engine_vs_loop.py``       loop / engine time, forward+backward of the loss    >= 10x
``engine_vs_loop.py``       loop / engine peak memory of the same               > 1x
``train_step_vs_loop.py``   loop / engine time of a whole training step         >= 4x
``loader_throughput.py``    loader windows/s / training windows/s               >= 10x
``audio_encoder.py``        conv1d / shifted-GEMM time of the audio encoder     (shown)
==========================  ==================================================  ==========

The exit status is 1 when a target is missed at full size (``--quick`` only reports:
its sizes are too small for the targets to mean anything). CPU timings depend on the
machine's load, which is printed before and after.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

TARGETS = {"engine_speedup": 10.0, "engine_memory_ratio": 1.0, "train_step_speedup": 4.0, "loader_ratio": 10.0}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(device: torch.device) -> str:
    text = f"{cpu_model()}, {os.cpu_count()} logical cores; torch {torch.__version__}; python {platform.python_version()}"
    if device.type == "cuda":
        text += f"; GPU {torch.cuda.get_device_name(device)}"
    return text


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (a smoke test)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)

    print(f"machine: {machine(device)}")
    print(f"threads: {args.threads}; load average before (1, 5, 15 min): {load()}")
    print("mode: " + ("QUICK (small sizes; targets not checked)" if args.quick else "full (paper sizes)"))
    started = time.perf_counter()
    quick = args.quick
    dev = ["--device", args.device, "--threads", str(args.threads)]

    section("InfoNCE engine vs loop over k: forward+backward of the loss head")
    engine_mod = importlib.import_module("engine_vs_loop")
    engine_args = engine_mod.parser().parse_args(
        dev + (["--batch", "2", "--length", "64", "--repeats", "3", "--warmup", "1"] if quick else []))
    engine = engine_mod.measure(engine_args)

    section("Whole training step (encoder, GRU, loss, AdamW): engine vs loop-style loss")
    step_mod = importlib.import_module("train_step_vs_loop")
    step_args = step_mod.parser().parse_args(
        dev + (["--batch", "2", "--window", "5120", "--repeats", "1", "--warmup", "1"] if quick
               # A CPU loop step at full size takes half a minute: 1 warm-up + 3 timed steps.
               else ["--repeats", "3", "--warmup", "1"] if device.type == "cpu" else []))
    step = step_mod.measure(step_args)

    section("cpc_audio encoder forward+backward: shifted-GEMM convolutions vs F.conv1d")
    encoder_mod = importlib.import_module("audio_encoder")
    encoder = encoder_mod.measure(encoder_mod.parser().parse_args(
        dev + (["--batch", "2", "--window", "5120", "--repeats", "2", "--warmup", "1"] if quick else [])))

    section("Data loader throughput vs what a training step consumes")
    loader_mod = importlib.import_module("loader_throughput")
    # The training side is the engine step just timed (same batch size), so it is not timed twice.
    loader_args = loader_mod.parser().parse_args(
        ["--train-device", args.device, "--threads", str(args.threads), "--batch", str(step_args.batch),
         "--window", str(step_args.window),
         "--step-ms", str(1000 * step["engine"])]
        + (["--source", "memory", "--batches", "30", "--workers", "0"] if quick else []))
    loader = loader_mod.measure(loader_args)

    results = {
        "engine_speedup": engine["speedup"],
        "engine_memory_ratio": engine["memory_ratio"],
        "train_step_speedup": step["speedup"],
        "train_step_cpu_time_ratio": step["cpu_speedup"],
        "train_step_min_ratio": step["min_speedup"],
        "loader_ratio": max(loader["ratios"].values()),
        **{f"encoder_gemm_speedup_{p}": row["speedup"] for p, row in encoder.items()},
    }
    labels = {
        "engine_speedup": "engine fwd+bwd speed-up over loop-over-k",
        "engine_memory_ratio": "loop peak memory / engine peak memory",
        "train_step_speedup": "training step speed-up over loop-style loss",
        "train_step_cpu_time_ratio": "  the same in CPU time (process_time)",
        "train_step_min_ratio": "  the same from the fastest steps",
        "loader_ratio": "loader throughput / training consumption",
        **{f"encoder_gemm_speedup_{p}": f"cpc_audio encoder, shifted GEMM vs conv1d, {p}" for p in encoder},
    }
    section("Summary")
    print(f"machine: {machine(device)}")
    print(f"load average after (1, 5, 15 min): {load()}; took {time.perf_counter() - started:.0f}s")
    print(f"losses: loop {engine['loss_loop']:.6f}, engine {engine['loss_engine']:.6f} "
          f"(|diff| {engine['loss_diff']:.1e})")
    missed = []
    for key, value in results.items():
        if key not in TARGETS:  # shown for information
            print(f"  {labels[key]:<46} {value:8.1f}x")
            continue
        target = TARGETS[key]
        ok = value >= target if key != "engine_memory_ratio" else value > target
        if not ok:
            missed.append(key)
        verdict = "-" if quick else ("ok" if ok else "MISSED")
        relation = ">" if key == "engine_memory_ratio" else ">="
        print(f"  {labels[key]:<46} {value:8.1f}x   target {relation} {target:g}x   {verdict}")
    if args.json:
        payload = {"machine": machine(device), "quick": quick, "threads": args.threads, "load_after": load(),
                   "results": results, "engine_rows": {k: list(v) for k, v in engine["rows"].items()},
                   "train_step_s": {k: step[k] for k in ("shared", "engine", "loop")},
                   "train_step_cpu_s": step["cpu_s"],
                   "loader_ratios": {str(k): v for k, v in loader["ratios"].items()}}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    if quick:
        print("quick mode: sizes are reduced, so the figures only show that every benchmark runs")
        return 0
    if missed:
        print("targets missed: " + ", ".join(missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
