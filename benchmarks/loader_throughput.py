"""Data-loader throughput (audio cache -> batches of windows) vs what a training step consumes.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/loader_throughput.py                       # synthetic corpus, CPU step
    .venv/bin/python benchmarks/loader_throughput.py --train-device cuda   # compare with a GPU step
    .venv/bin/python benchmarks/loader_throughput.py --source librispeech --root data/LibriSpeech/train-clean-100
    .venv/bin/python benchmarks/loader_throughput.py --source memory       # no audio plugin needed

The loader is cpcframe's own (``cpcframe.build.build_loader``: the step-indexed sampler,
per-item seeded views, the sampler's collate, optional worker processes and pinned
memory), reading the audio plugin's decoded, memory-mapped cache (``synthetic_speech``,
generated on first use, or ``librispeech``) with ``audio_windows`` views of 20480 samples,
batch 8. ``--source memory`` uses in-memory random waveforms and a window sampler defined
here instead (for a checkout without the audio plugin).

The training side is one full step of the CPC audio model (encoder 512, GRU 256, K = 12,
128 negatives, AdamW), timed with ``benchmarks/train_step_vs_loop.py``'s engine step on
``--train-device``, or given with ``--step-ms``. The ratio printed is loader items/s over
training items/s; the loader should be >= 10x faster so that it never starves training.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


RECIPE = """
seed = 0
[data]
batch_size = {batch}
num_workers = {workers}
pin_memory = {pin}
[data.dataset]
{dataset}
[data.views]
name = "audio_windows"
window = {window}
[model.encoder]
name = "cpc_audio"
[model.context]
name = "gru"
[model.critic]
name = "cpc_steps"
"""


class MemoryWaves(torch.utils.data.Dataset):
    """``count`` random waveforms of 2-15 s at 16 kHz held in memory (float16, like the cache)."""

    def __init__(self, count: int = 200, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.waves = [(0.1 * rng.standard_normal(int(rng.integers(32000, 240000)))).astype(np.float16)
                      for _ in range(count)]
        self.groups = [i % 20 for i in range(count)]
        self.skipped: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, i: int):
        from cpcframe import Example

        return Example(torch.from_numpy(self.waves[i].astype(np.float32))[None], group=self.groups[i],
                       key=f"wave-{i}")


def memory_sampler(window: int, align: int = 160):
    from cpcframe import ViewSampler

    class Windows(ViewSampler):
        """A random aligned ``(1, window)`` crop (what ``audio_windows`` does)."""

        def min_length(self) -> int:
            return window

        def sample(self, example, generator):
            slots = (example.data.shape[-1] - window) // align + 1
            start = int(torch.randint(slots, (1,), generator=generator)) * align
            return (example.data[:, start:start + window].contiguous(),)

    return Windows()


def make_loader(args, workers: int, stop: int):
    """cpcframe's loader over the chosen source, for steps ``0..stop-1``."""
    from cpcframe.build import build_dataset, build_loader, build_view_sampler
    from cpcframe.config.loader import load_recipe
    from cpcframe.plugins import default_registry

    if args.source == "librispeech":
        dataset = f'name = "librispeech"\nroot = "{args.root}"'
    else:  # memory: the recipe only provides the [data] settings
        dataset = 'name = "synthetic_speech"'
    text = RECIPE.format(batch=args.batch, workers=workers, pin=str(args.pin_memory).lower(),
                         dataset=dataset, window=args.window)
    registry = default_registry()
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write(text)
    try:
        recipe = load_recipe(Path(handle.name), registry)
    finally:
        os.unlink(handle.name)
    if args.source == "memory":
        sampler = memory_sampler(args.window)
        dataset_obj = MemoryWaves()
    else:
        sampler = build_view_sampler(recipe, registry)
        dataset_obj = build_dataset(recipe, registry, view_sampler=sampler)
    return build_loader(recipe, dataset_obj, sampler, start=0, stop=stop), len(dataset_obj)


def loader_rate(args, workers: int) -> tuple[float, float, int]:
    """(items/s after the first batch, seconds to the first batch, dataset size)."""
    loader, size = make_loader(args, workers, args.batches + 1)
    start = time.perf_counter()
    iterator = iter(loader)
    batch = next(iterator)
    first = time.perf_counter() - start
    start = time.perf_counter()
    items = 0
    for batch in iterator:
        if args.pin_memory and torch.cuda.is_available():
            batch = batch.to("cuda", non_blocking=True)
        items += batch.batch_size
    if args.pin_memory and torch.cuda.is_available():
        torch.cuda.synchronize()
    return items / (time.perf_counter() - start), first, size


def training_step_seconds(args) -> float:
    if args.step_ms:
        return args.step_ms / 1000
    import train_step_vs_loop as bench  # same folder
    from measure import time_steps

    step_args = argparse.Namespace(batch=args.batch, window=args.window, hidden=256, steps=12, negatives=128,
                                   precision=args.precision)
    device = torch.device(args.train_device)
    step = bench.make_steps(step_args, device)["engine"]
    gpu = device.type == "cuda"
    return statistics.median(time_steps(step, device, warmup=5 if gpu else 1, repeats=20 if gpu else 3)[0])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", choices=("synthetic", "librispeech", "memory"), default="synthetic")
    p.add_argument("--root", default="data/LibriSpeech/train-clean-100", help="for --source librispeech")
    p.add_argument("--cache", default="", help="CPCFRAME_CACHE for the decoded corpus (default: a temp dir)")
    p.add_argument("--workers", default="0,2", help="comma-separated data.num_workers values to time")
    p.add_argument("--pin-memory", action="store_true", help="data.pin_memory (and copy to the GPU)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--window", type=int, default=20480)
    p.add_argument("--batches", type=int, default=200, help="batches timed per setting")
    p.add_argument("--train-device", default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--step-ms", type=float, default=0.0, help="training step time instead of measuring it")
    return p


def measure(args, echo=print) -> dict:
    """Time the training step (or take ``--step-ms``) and the loader; return the ratios."""
    torch.set_num_threads(args.threads)
    cache = args.cache or tempfile.mkdtemp(prefix="cpcframe-bench-cache-")
    os.environ["CPCFRAME_CACHE"] = cache

    if args.source == "synthetic":
        start = time.perf_counter()
        make_loader(args, 0, 1)  # generate and decode the corpus into the cache, once
        echo(f"synthetic corpus ready in {time.perf_counter() - start:.1f}s (cache {cache})")
    step_s = training_step_seconds(args)
    train_rate = args.batch / step_s
    echo(f"training: {1000 * step_s:.1f} ms per step of {args.batch} windows on {args.train_device} "
         f"({args.precision}) = {train_rate:.1f} windows/s")
    ratios = {}
    for workers in (int(w) for w in args.workers.split(",")):
        rate, first, size = loader_rate(args, workers)
        ratios[workers] = rate / train_rate
        echo(f"loader ({args.source}, {size} utterances, num_workers={workers}, pin_memory={args.pin_memory}): "
             f"{rate:.0f} windows/s, first batch after {first:.2f}s -> {rate / train_rate:.1f}x what training "
             "consumes")
    return {"step_s": step_s, "train_rate": train_rate, "ratios": ratios}


def main() -> None:
    measure(parser().parse_args())


if __name__ == "__main__":
    main()
