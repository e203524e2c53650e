"""Sharded corpora: time to shard per hour of audio, loader throughput from shards, and
peak RSS of reading a corpus 1x and 8x the decoded-shard cache budget.

    OMP_NUM_THREADS=1 python benchmarks/shards_throughput.py [--hours 0.5]

A synthetic float16 corpus (15 s utterances at 16 kHz, as LibriLight's VAD segments are
cut) is made in memory; the numbers depend on the host (say which beside them).
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--read":
        read_all(sys.argv[2])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=0.4)
    parser.add_argument("--shard-items", type=int, default=16)
    args = parser.parse_args()
    from cpcframe.shards.writer import write_shards

    torch.set_num_threads(1)
    n = int(args.hours * 3600 / SECONDS)
    with tempfile.TemporaryDirectory() as tmp:
        rss = {}
        for factor in (1, 8):
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
        print(f"peak RSS ratio 8x / 1x: {rss[8] / rss[1]:.3f}")


if __name__ == "__main__":
    main()
