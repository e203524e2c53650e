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
``train_step_vs_loop.py``   loop / engine time of a whole training step         >= 6x
``train_step_vs_loop.py``   step's counted FLOP/s / the machine's GEMM rate     >= 85 %
``loader_throughput.py``    loader windows/s / training windows/s               >= 10x
``head_scaling.py``         loss head cost per window, batch 64 / batch 8        <= 1.2x
``head_scaling.py``         the same, keys of 8 processes' batches / local only  <= 1.3x
``amdim_step.py``           amdim-public stand-in / cpcframe AMDIM step time    >= 1.5x
``audio_encoder.py``        conv1d / shifted-GEMM time of the audio encoder     (shown)
==========================  ==================================================  ==========

Every figure is printed with the host it was measured on. A missed target is reported as
missed, with its figure, and judged (:mod:`verdicts`): when the training step still uses
at least 40 % of this machine's own matmul rate (:mod:`machine_rates`, measured in the same
run), the miss is the machine's ("missed (machine)": the loop reference is memory-bound, so
its ratio to cpcframe's GEMM-bound step differs between hosts); below that, or for the
loader's target, it is a regression. The exit status is 1 only for a regression (and never
in ``--quick`` mode, whose sizes are too small for the targets to mean anything). CPU
timings depend on the machine's load, which is printed before and after.
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

from cpcframe.config import toml_io
from machine_rates import matmul_gflops
from measure import cpu_model, host, like_a_run
from verdicts import exit_status, judge

TARGETS = {"engine_speedup": 10.0, "engine_memory_ratio": 1.0, "train_step_speedup": 6.0,
           "step_efficiency": 0.85, "loader_ratio": 10.0, "head_batch_ratio": 1.2, "head_world_ratio": 1.3,
           "amdim_speedup": 1.5}
#: Targets that are upper bounds (a cost that must not grow).
AT_MOST = {"head_batch_ratio", "head_world_ratio"}
#: The main job's recipe: the loss-head targets are judged on its sampling of negatives.
MAIN_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "cpc_librispeech.toml"


def main_sampling() -> str:
    """``shared`` or ``per_query``: how :data:`MAIN_RECIPE` samples its negatives."""
    loss = toml_io.loads(MAIN_RECIPE.read_text())["loss"]
    return "shared" if loss.get("share_negatives", False) else "per_query"
#: Figures a host cannot excuse: the loader must outrun the step, and the engine use less
#: memory than the loop, anywhere.
NOT_MACHINE_BOUND = {"loader_ratio", "engine_memory_ratio"}


def machine(device: torch.device) -> str:
    text = f"{cpu_model()}, {os.cpu_count()} logical cores; torch {torch.__version__}; python {platform.python_version()}"
    if device.type == "cuda":
        text += f"; GPU {torch.cuda.get_device_name(device)}"
    return text


def host_tag(device: torch.device, threads: int) -> str:
    """The short host name printed beside every figure."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}; {host(threads)}"
    return host(threads)


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
    malloc = like_a_run()

    print(f"machine: {machine(device)}")
    print(f"memory: {malloc}")
    print(f"threads: {args.threads}; load average before (1, 5, 15 min): {load()}")
    print("mode: " + ("QUICK (small sizes; targets not checked)" if args.quick else "full (paper sizes)"))
    started = time.perf_counter()
    quick = args.quick
    dev = ["--device", args.device, "--threads", str(args.threads)]

    section("The machine's own float32 matmul rate (the yardstick of a regression)")
    gemm = matmul_gflops(device, args.threads, size=1024 if quick else 2048)
    print(f"float32 GEMM: {gemm:.1f} GFLOP/s (best of 10, {args.threads} threads) [{host_tag(device, args.threads)}]")

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

    section("Loss head cost per window as the batch and the gathered global batch grow")
    head_mod = importlib.import_module("head_scaling")
    head = head_mod.measure(head_mod.parser().parse_args(
        dev + (["--batches", "8,16", "--world", "2", "--length", "32", "--dense-batches", "", "--repeats", "1"]
               if quick else ["--dense-batches", "", "--repeats", "3"])))

    section("AMDIM training step (CIFAR-10 paper model) vs the amdim-public stand-in")
    amdim_mod = importlib.import_module("amdim_step")
    print(amdim_mod.TABLE_HEADER)
    amdim = amdim_mod.measure(8 if quick else 32, args.threads, 1, 1 if quick else 3) if device.type == "cpu" else None

    judged = main_sampling()  # the other sampling is shown beside it
    efficiency = step["engine_flops"] / step["engine"] / 1e9 / gemm
    results = {
        "engine_speedup": engine["speedup"],
        "engine_per_query_speedup": engine["per_query_speedup"],
        "engine_memory_ratio": engine["memory_ratio"],
        "train_step_speedup": step["speedup"],
        "train_step_cpu_time_ratio": step["cpu_speedup"],
        "train_step_min_ratio": step["min_speedup"],
        "step_efficiency": efficiency,
        "loader_ratio": max(loader["ratios"].values()),
        # The targets are judged on the main recipe's sampling; the other one is shown.
        "head_batch_ratio": head["batch_ratio"][judged],
        "head_world_ratio": head["world_ratio"][judged],
        **{f"head_batch_ratio_{s}": r for s, r in head["batch_ratio"].items() if s != judged},
        **{f"head_world_ratio_{s}": r for s, r in head["world_ratio"].items() if s != judged},
        **{f"encoder_gemm_speedup_{p}": row["speedup"] for p, row in encoder.items()},
        **({"amdim_speedup": amdim["ratio"]} if amdim else {}),
    }
    labels = {
        "engine_speedup": "engine fwd+bwd speed-up over loop-over-k",
        "engine_per_query_speedup": "  engine with the negatives listed per query",
        "engine_memory_ratio": "loop peak memory / engine peak memory",
        "train_step_speedup": "training step speed-up over loop-style loss",
        "train_step_cpu_time_ratio": "  the same in CPU time (process_time)",
        "train_step_min_ratio": "  the same from the fastest steps",
        "step_efficiency": "training step FLOP/s / machine's GEMM rate",
        "loader_ratio": "loader throughput / training consumption",
        "head_batch_ratio": f"loss head per window, batch 64 / 8, {judged.replace('_', ' ')}",
        "head_world_ratio": "  keys of 8 processes' batches / local only",
        **{f"head_batch_ratio_{s}": f"  the same, negatives {s.replace('_', ' ')}" for s in ("per_query", "shared")},
        **{f"head_world_ratio_{s}": f"  gathered keys, negatives {s.replace('_', ' ')}" for s in ("per_query", "shared")},
        **{f"encoder_gemm_speedup_{p}": f"cpc_audio encoder, shifted GEMM vs conv1d, {p}" for p in encoder},
        "amdim_speedup": "AMDIM step speed-up over amdim-public stand-in",
    }
    host = host_tag(device, args.threads)
    section("Summary")
    print(f"machine: {machine(device)}")
    print(f"load average after (1, 5, 15 min): {load()}; took {time.perf_counter() - started:.0f}s")
    print(f"losses: loop {engine['loss_loop']:.6f}, engine {engine['loss_engine']:.6f} "
          f"(|diff| {engine['loss_diff']:.1e})")
    verdicts = []
    for key, value in results.items():
        shown = f"{100 * value:7.1f}% " if key == "step_efficiency" else f"{value:8.1f}x"
        if key not in TARGETS:  # shown for information
            print(f"  {labels[key]:<46} {shown}   [{host}]")
            continue
        target = TARGETS[key]
        verdict = judge(key, value, target, efficiency=efficiency, machine_bound=key not in NOT_MACHINE_BOUND,
                        strict=key == "engine_memory_ratio", at_most=key in AT_MOST)
        verdicts.append(verdict)
        relation = ">" if key == "engine_memory_ratio" else "<=" if key in AT_MOST else ">="
        goal = f"{100 * target:g}%" if key == "step_efficiency" else f"{target:g}x"
        print(f"  {labels[key]:<46} {shown}   target {relation} {goal:<5} "
              f"{'-' if quick else verdict.status:<17} [{host}]")
    if args.json:
        payload = {"machine": machine(device), "quick": quick, "threads": args.threads, "load_after": load(),
                   "gemm_gflops": gemm, "verdicts": {v.key: v.status for v in verdicts},
                   "results": results, "engine_rows": {k: list(v) for k, v in engine["rows"].items()},
                   "train_step_s": {k: step[k] for k in ("shared", "engine", "loop")},
                   "train_step_cpu_s": step["cpu_s"],
                   "loader_ratios": {str(k): v for k, v in loader["ratios"].items()}}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    if quick:
        print("quick mode: sizes are reduced, so the figures only show that every benchmark runs")
        return 0
    missed = [v for v in verdicts if v.status != "met"]
    for v in missed:
        why = ("the step still runs at {:.0f}% of this machine's GEMM rate: the host sets this ratio"
               .format(100 * efficiency) if v.status == "missed (machine)" else "a regression of cpcframe")
        print(f"missed: {v.key} = {v.value:.3g} (target {v.target:g}) on {host}: {why}")
    if not missed:
        print(f"all targets met on {host}")
    return exit_status(verdicts)

if __name__ == "__main__":
    sys.exit(main())
