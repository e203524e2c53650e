"""Sharded corpora: time to shard per hour of audio, loader throughput from shards, and
peak RSS of a training run over a corpus 1x and 8x the decoded-shard cache budget.

    OMP_NUM_THREADS=1 python benchmarks/shards_throughput.py [--hours 0.4] [--flac-hours 0.25]

* ``shard``/``read``: a synthetic float16 corpus (15 s utterances at 16 kHz, as LibriLight's
  VAD segments are cut) made in memory, written as shards, read back through a 1-shard cache.
* ``run RSS``: ``cpcframe run recipes/quickstart_speech.toml`` (its model, batch and
  views; ``data.dataset`` pointed at a ``shards`` corpus, ``--no-probe``, ``--steps``
  steps) on corpora of exactly the cache budget (``cache_shards`` shards of
  ``--run-shard-items`` 15 s utterances) and 8x it, with the recipe's loader workers (0)
  and with 2, ``--repeats`` times each (interleaved; the ratio is of the medians). Peak
  RSS is that of the training process (``wait4``); the peak of its whole process tree
  (loader workers included) is the sum of PSS (shared pages counted once), sampled from
  ``/proc`` every 20 ms, the highest level held for 3 samples in a row.
* ``shard FLAC``: ``cpcframe shard`` of a LibriSpeech-layout folder of 15 s FLAC files
  (sequential access: each file decoded as it is written, no sample cache), and for
  comparison the cached path (decode the corpus into the sample cache, then write).

The numbers depend on the host: say which beside them, and whether other jobs ran.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cpcframe import Dataset, Example

RATE, SECONDS = 16000, 15


class Synthetic(Dataset):
    def __init__(self, n: int):
        self.n, self.groups = n, [i % 40 for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Example:
        g = torch.Generator().manual_seed(i)
        return Example((0.1 * torch.randn(1, RATE * SECONDS, generator=g)).half(), group=i % 40, key=f"u{i}")


def read_all(root: str, window: int = 20480) -> None:
    """Child process: read every item through the shard cache (1 shard), cut a window."""
    from cpcframe.shards.source import ShardsConfig, build_shards
    from cpcframe.data.request import DatasetRequest

    ds = build_shards(ShardsConfig(root=root, cache_shards=1), request=DatasetRequest())
    started = time.perf_counter()
    for i in range(len(ds)):
        ds[i].data[:, :window].float()
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(ds)} {took:.3f} {peak:.1f}")


QUICKSTART = Path(__file__).resolve().parents[1] / "recipes" / "quickstart_speech.toml"


def resident(pid: int, fields: dict[str, str]) -> int:
    """Proportional set size of ``pid`` (its resident pages, each shared one divided among
    the processes sharing it: forked loader workers share the parent's pages), else RSS."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(fields.get("VmRSS", "0 kB").split()[0]) * 1024


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def tree_rss(root: int) -> tuple[int, int]:
    """Resident bytes (PSS) of process ``root`` and all its descendants (from ``/proc``),
    and how many processes that is."""
    children: dict[int, list[int]] = {}
    rss: dict[int, dict[str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields["PPid"]), []).append(pid)
        rss[pid] = fields
    total, count, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        if pid in rss:
            total += resident(pid, rss[pid])
            count += 1
        todo += children.get(pid, [])
    return total, count


def run_rss(corpus: Path, out: Path, *, steps: int, workers: int,
            cache_shards: int) -> tuple[float, float, float, int]:
    """``(seconds, peak RSS of the training process, peak PSS of its process tree (MiB),
    processes in the tree at that peak)`` of a short ``cpcframe run`` of the quickstart
    speech recipe on ``corpus``."""
    sets = ["data.dataset.name=shards", f"data.dataset.root={corpus}", f"data.dataset.cache_shards={cache_shards}",
            f"data.num_workers={workers}", f"train.steps={steps}", "train.validate_every=0",
            f"train.checkpoint_every={steps}", f"train.log_every={steps}"]
    command = [sys.executable, "-m", "cpcframe", "run", str(QUICKSTART), "--out", str(out), "--quiet",
               "--no-probe", "--no-report"] + [a for s in sets for a in ("--set", s)]
    started = time.perf_counter()
    log = out.with_name(out.name + ".stderr")  # a file, not a pipe nobody reads until the end
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    peak_tree, at_peak, recent = 0, 0, []
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        # The tree's peak is the highest level held for 3 samples in a row: a single sample
        # can catch a loader worker mid-fork (the parent read before its pages were shared,
        # the child after), which counts the parent's pages twice for an instant.
        recent = (recent + [tree_rss(child.pid)])[-3:]
        held = min(recent)
        if len(recent) == 3 and held[0] > peak_tree:
            peak_tree, at_peak = held
        time.sleep(0.02)
    took = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"cpcframe run failed: {log.read_text()[-2000:]}")
    return took, usage.ru_maxrss / 1024, peak_tree / 2**20, at_peak


def write_flac_corpus(root: Path, hours: float) -> int:
    """A LibriSpeech-layout folder of 15 s FLAC files (tones in noise, 20 speakers)."""
    import numpy as np
    import soundfile

    n = max(1, int(hours * 3600 / SECONDS))
    rng = np.random.default_rng(0)
    t = np.arange(RATE * SECONDS) / RATE
    for i in range(n):
        speaker, chapter = 100 + i % 20, 1
        folder = root / str(speaker) / str(chapter)
        folder.mkdir(parents=True, exist_ok=True)
        wave = 0.3 * np.sin(2 * np.pi * (100 + 7 * speaker) * t) + 0.05 * rng.standard_normal(t.size)
        soundfile.write(folder / f"{speaker}-{chapter}-{i:04d}.flac", wave.astype(np.float32), RATE)
    return n


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def shard_flac(tmp: Path, hours: float) -> None:
    """Time ``cpcframe shard`` of a FLAC folder, sequential access vs the cached path."""
    from cpcframe.build import build_dataset
    from cpcframe.cli.shard import make_dataset
    from cpcframe.config.loader import load_recipe
    from cpcframe.plugins import default_registry
    from cpcframe.shards.writer import write_shards

    flac = tmp / "flac"
    n = write_flac_corpus(flac, hours)
    hours = n * SECONDS / 3600
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "cpc_librispeech.toml"
    sets = [f"data.dataset.root={flac}", "data.dataset.split_list=", "data.dataset.test_split_list=",
            "data.dataset.phone_labels="]
    print(f"FLAC corpus: {n} files of {SECONDS} s = {hours:.2f} h, {folder_bytes(flac) / 2**20:.0f} MiB")
    for workers in (1, 2):
        cache = tmp / f"cache-seq{workers}"
        os.environ["CPCFRAME_CACHE"] = str(cache)
        out = tmp / f"seq{workers}"
        started = time.perf_counter()
        write_shards(functools.partial(make_dataset, str(recipe), sets, "train"), out, shard_items=64,
                     workers=workers)
        took = time.perf_counter() - started
        print(f"shard FLAC, sequential access, {workers} worker(s): {took:.2f} s = {took / hours:.2f} s per hour "
              f"of audio; scratch besides the shards: {folder_bytes(cache / 'audio') / 2**20:.0f} MiB; "
              f"shards {folder_bytes(out) / 2**20:.0f} MiB")
    cache = tmp / "cache-random"
    os.environ["CPCFRAME_CACHE"] = str(cache)
    registry = default_registry()
    config = load_recipe(recipe, registry, sets)
    started = time.perf_counter()
    write_shards(lambda: build_dataset(config, registry), tmp / "cached", shard_items=64)
    took = time.perf_counter() - started
    print(f"shard FLAC, cached path (decode into the cache, then write), 1 writer: {took:.2f} s = "
          f"{took / hours:.2f} s per hour; scratch besides the shards: "
          f"{folder_bytes(cache / 'audio') / 2**20:.0f} MiB")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--read":
        read_all(sys.argv[2])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=0.4)
    parser.add_argument("--shard-items", type=int, default=16)
    parser.add_argument("--run-shard-items", type=int, default=64, help="items per shard of the run-RSS corpora")
    parser.add_argument("--cache-shards", type=int, default=2, help="the run's data.dataset.cache_shards")
    parser.add_argument("--steps", type=int, default=60, help="training steps of each run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each corpus size and worker count")
    parser.add_argument("--flac-hours", type=float, default=0.5, help="hours of FLAC to shard (0: skip)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["read", "run", "flac"])
    args = parser.parse_args()
    from cpcframe.shards.writer import write_shards

    torch.set_num_threads(1)
    print(f"host: {cpu_model()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    n = int(args.hours * 3600 / SECONDS)
    with tempfile.TemporaryDirectory() as tmp:
        rss = {}
        for factor in ((1, 8) if "read" not in args.skip else ()):
            items = args.shard_items * factor
            if factor == 8:
                items = max(items, n)
            out = Path(tmp) / f"x{factor}"
            count = items if factor == 8 else args.shard_items
            started = time.perf_counter()
            write_shards(lambda c=count: Synthetic(c), out, shard_items=args.shard_items)
            took = time.perf_counter() - started
            hours = count * SECONDS / 3600
            if factor == 8:
                print(f"shard: {hours:.2f} h of audio in {took:.1f} s = {took / hours:.0f} s per hour "
                      f"(1 process; {sum(p.stat().st_size for p in out.glob('*.tar')) / 2**20:.0f} MiB)")
            line = subprocess.run([sys.executable, __file__, "--read", str(out)], capture_output=True,
                                  text=True, check=True).stdout.split()
            items_read, secs, peak = int(line[0]), float(line[1]), float(line[2])
            rss[factor] = peak
            print(f"read x{factor} ({items_read} items, {items_read // args.shard_items} shards vs a cache "
                  f"of 1): {items_read / secs:.0f} items/s, peak RSS {peak:.0f} MiB")
        if rss:
            print(f"read: peak RSS ratio 8x / 1x: {rss[8] / rss[1]:.3f}")
        if "run" not in args.skip:
            budget = args.cache_shards
            corpora = {}
            for factor in (1, 8):
                corpora[factor] = Path(tmp) / f"run-x{factor}"
                write_shards(lambda c=budget * factor * args.run_shard_items: Synthetic(c), corpora[factor],
                             shard_items=args.run_shard_items)
            size = max(p.stat().st_size for p in corpora[1].glob("*.tar")) / 2**20
            print(f"run RSS: quickstart_speech recipe, {args.steps} steps, cache_shards={budget} "
                  f"({budget} x {size:.1f} MiB per process); corpora of {budget} and {8 * budget} shards")
            for workers in (0, 2):
                peaks: dict[int, list[tuple[float, float]]] = {1: [], 8: []}
                for rep in range(args.repeats):
                    for factor in (1, 8):  # interleaved: a change of load hits both sizes alike
                        took, main_peak, tree_peak, count = run_rss(
                            corpora[factor], Path(tmp) / f"r{factor}-{workers}-{rep}", steps=args.steps,
                            workers=workers, cache_shards=budget)
                        peaks[factor].append((main_peak, tree_peak))
                        print(f"run x{factor}, {workers} loader workers: {took:.1f} s, peak RSS training process "
                              f"{main_peak:.0f} MiB, process tree (PSS) {tree_peak:.0f} MiB ({count} processes)")
                def median(values: list[float]) -> float:
                    return sorted(values)[len(values) // 2]

                main_ratio = median([m for m, _ in peaks[8]]) / median([m for m, _ in peaks[1]])
                tree_ratio = median([t for _, t in peaks[8]]) / median([t for _, t in peaks[1]])
                spread = max(max(v) / min(v) for f in (1, 8) for v in zip(*peaks[f]))
                print(f"run, {workers} loader workers: peak RSS ratio 8x / 1x (medians of {args.repeats} runs): "
                      f"training process {main_ratio:.3f}, process tree {tree_ratio:.3f} "
                      f"({'within' if max(main_ratio, tree_ratio) <= 1.1 else 'NOT within'} the 10 % target; "
                      f"identical runs differ by up to {100 * (spread - 1):.0f} %)")
        if args.flac_hours > 0 and "flac" not in args.skip:
            shard_flac(Path(tmp), args.flac_hours)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
