"""What a run reports while it trains: records in ``metrics.jsonl`` and the progress bar.

Training metrics are collected step by step in a window; every ``train.log_every``
steps (and at the last) their means over the window and over the processes become one
record, with that step's validation metrics, the learning rate and the speed
(``items_per_s``, over the global batch). Only rank 0 writes and shows anything.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np

from cpcframe.training.distributed import DistributedRuntime
from cpcframe.training.learning import LearningWatch
from cpcframe.training.metrics import MetricsLog


class Progress:
    """The window of metrics since the last record, the log and the bar (a context manager)."""

    def __init__(self, log: MetricsLog, dist: DistributedRuntime, batch_size: int, *,
                 total: int, initial: int, bar: bool, watch: LearningWatch | None = None):
        self.log = log
        self.watch = watch
        self.dist = dist
        self.batch_size = batch_size
        self.window: dict[str, list[float]] = defaultdict(list)
        self.window_start = time.perf_counter()
        self.bar: Any = None
        if bar and dist.is_main:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()

    def add(self, metrics: dict[str, float]) -> None:
        """One training step's metrics."""
        for key, value in metrics.items():
            self.window[key].append(value)

    def record(self, step: int, validated: dict[str, float], latest_val: dict[str, float],
               lr: float) -> dict[str, float]:
        """Append the record of ``step`` (a collective: every rank calls it); returns the
        training means."""
        now = time.perf_counter()
        means = self.dist.mean_metrics({k: float(np.mean(v)) for k, v in self.window.items()})
        items = self.batch_size * self.dist.world_size * len(self.window["loss"])
        record = {"step": step, **means, **validated, "lr": lr,
                  "items_per_s": items / max(now - self.window_start, 1e-9)}
        if self.dist.is_main:
            self.log.append(record)
        warning = self.watch.observe(step, means) if self.watch is not None else None
        if warning and self.dist.is_main:
            self.note(f"cpcframe: warning: {warning}")
        if self.bar is not None:
            shown = {"loss": f"{means['loss']:.3f}", "acc": f"{means['acc']:.3f}"}
            if latest_val:
                shown["val_loss"] = f"{latest_val['val/loss']:.3f}"
            if self.watch is not None and self.watch.shown():
                shown["learning"] = self.watch.shown()
            self.bar.set_postfix(**shown, it_s=f"{record['items_per_s']:.1f}")
        self.window.clear()
        self.window_start = now
        return means

    def note(self, text: str) -> None:
        """A line for the user, on stderr (above the bar when there is one)."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def record_validation(self, step: int, validated: dict[str, float]) -> None:
        """A validation between training records gets a record of its own."""
        if self.dist.is_main:
            self.log.append({"step": step, **validated})

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)
