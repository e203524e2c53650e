"""One training loop for every modality.

Exact resume: batches are a function of ``(seed, step)`` (see
:mod:`cpcframe.data.sampling`) and a checkpoint holds the model, optimizer, scheduler,
grad scaler and every RNG state, so on CPU the losses after resuming equal those of an
uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections import defaultdict
from typing import Any

import attrs
import numpy as np
import torch

from cpcframe import __version__
from cpcframe.build import build_dataset, build_loader, build_model, build_view_sampler
from cpcframe.config.loader import dump_recipe
from cpcframe.config.recipe import Recipe
from cpcframe.errors import UserError
from cpcframe.model import contrastive_loss
from cpcframe.negatives import resolve_policy
from cpcframe.registry import Registry
from cpcframe.runs import storage as ckpt
from cpcframe.training.distributed import DistributedRuntime
from cpcframe.training.metrics import MetricsLog
from cpcframe.training.plot import plot_curves
from cpcframe.runs.layout import RunDir
from cpcframe.training.schedule import lr_factor
from cpcframe.training.stop import StopRequest
from cpcframe.training.validation import Validator


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(Exception):
    """Ctrl-C: a checkpoint was saved."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"train.device = {name!r} but no CUDA device is available")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rank_seed(seed: int, rank: int, step: int) -> int:
    """Seed of a rank that joins a resumed run at ``step`` without a saved RNG state."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, 0x2A7C, rank, step]).generate_state(1)[0])


def to_channels_last(batch):
    """The batch with every 4-D view tensor ``(B, C, H, W)`` in channels-last memory format."""
    from cpcframe.batch import Batch

    def convert(t):
        return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t

    views = tuple(convert(v) if isinstance(v, torch.Tensor) else {k: convert(t) for k, t in v.items()}
                  for v in batch.views)
    return Batch(views, batch.groups, batch.keys)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@attrs.frozen
class TrainSummary:
    step: int
    metrics: dict[str, float]
    seconds: float
    skipped: dict[str, int]


class Trainer:
    """Trains ``recipe`` into ``run_dir``; see :meth:`run`."""

    def __init__(self, recipe: Recipe, registry: Registry, run_dir: RunDir, *, resume: bool = False,
                 progress: bool = True, dist: DistributedRuntime | None = None):
        self.recipe = recipe
        self.registry = registry
        self.run_dir = run_dir
        self.resume = resume
        self.progress = progress
        self.dist = dist or DistributedRuntime.from_environment(recipe.train.device)
        self.stop = StopRequest()  # set by Ctrl-C / SIGTERM while training

    # ---- setup ---------------------------------------------------------------------
    def _setup(self) -> None:
        r = self.recipe
        self.device = self.dist.device if self.dist.enabled else resolve_device(r.train.device)
        if r.train.precision == "fp16" and self.device.type != "cuda":
            raise UserError("train.precision = 'fp16' needs a CUDA device; use 'bf16' on CPU")
        if r.train.threads:
            torch.set_num_threads(r.train.threads)
        seed_everything(r.seed + self.dist.rank)
        self.view_sampler = build_view_sampler(r, self.registry)
        self.dataset = build_dataset(r, self.registry, split="train", run_dir=self.run_dir.root,
                                     view_sampler=self.view_sampler)
        torch.manual_seed(r.seed)  # identical initial weights on every rank
        self.model = build_model(r, self.registry).to(self.device)
        self.negative_policy = resolve_policy(r.loss.negatives, self.registry)
        check_model = getattr(self.dataset, "check_model", None)
        if check_model is not None:  # e.g. a text corpus checks the vocabulary fits the encoder
            check_model(self.model)
        if r.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if r.train.compile:
            # The encoder and context model hold the compute; the critic builds Contrast
            # objects, which torch.compile cannot trace. Module.compile() compiles in
            # place, so parameter names (and checkpoints) stay the same.
            self.model.encoder.compile()
            self.model.context.compile()
        self.forward_model = self.dist.wrap(self.model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=r.train.lr, betas=r.train.betas,
                                           eps=r.train.eps, weight_decay=r.train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, total=r.train.steps, warmup=r.train.warmup_steps,
                                                schedule=r.train.schedule))
        self.scaler = torch.amp.GradScaler("cuda", enabled=r.train.precision == "fp16")
        self.metrics_log = MetricsLog(self.run_dir.metrics)
        self.validator = None
        if r.train.validate_every:
            self.validator = Validator(r, self.registry, self.view_sampler, dist=self.dist,
                                       device=self.device, run_dir=self.run_dir.root)
        self.step = 0
        seed_everything(r.seed + 1000003 * self.dist.rank + 1)
        if self.resume:
            self._load_checkpoint()
        elif self.dist.is_main:
            self.run_dir.metrics.unlink(missing_ok=True)

    def _load_checkpoint(self) -> None:
        state = ckpt.load_state(self.run_dir.checkpoint)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        rng = state["rng"]
        if isinstance(rng, list):  # one state per rank; a different world size reseeds the rest
            rng = rng[self.dist.rank] if self.dist.rank < len(rng) else None
        elif self.dist.rank > 0:  # a single-process checkpoint holds rank 0's state only
            rng = None
        if rng is not None:
            set_rng_state(rng)
        else:  # a rank new to this run: its own stream, different from a fresh run's
            seed_everything(rank_seed(self.recipe.seed, self.dist.rank, self.step))
        if self.dist.is_main:
            self.metrics_log.truncate_after(self.step)

    def _save_checkpoint(self) -> None:
        self._last_saved, self._saved_at = self.step, time.monotonic()
        rng = self.dist.gather_objects(rng_state())
        if not self.dist.is_main:
            return
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng if self.dist.enabled else rng[0],
            "world_size": self.dist.world_size,
            "cpcframe_version": __version__,
        }
        ckpt.save_state(self.run_dir.checkpoint, state)
        ckpt.save_weights(self.run_dir.weights, self.model,
                          metadata={"step": str(self.step), "cpcframe_version": __version__})

    # ---- loop ------------------------------------------------------------------------
    def _autocast(self):
        precision = self.recipe.train.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _train_step(self, batch) -> dict[str, float]:
        r = self.recipe
        self.model.train()
        with self._autocast():
            contrasts = self.forward_model(batch)
            out = contrastive_loss(contrasts, r.loss, transform=self.dist.contrast_transform(r.train),
                                   policy=self.negative_policy)
        if not math.isfinite(out.metrics["loss"]):
            raise TrainingDiverged(
                f"loss became {out.metrics['loss']} at step {self.step + 1}; the last good checkpoint "
                f"{self._last_checkpoint_note()} is kept. Try a lower train.lr, train.grad_clip, "
                "or train.precision = 'fp32'.")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(out.loss).backward()
        if r.train.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            out.metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), r.train.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return out.metrics

    def _validate(self, total: int) -> dict[str, float]:
        """Validation metrics at this step, or ``{}`` when it is not a validation step."""
        every = self.recipe.train.validate_every
        if self.validator is None or not (self.step % every == 0 or self.step == total):
            return {}
        prepare = to_channels_last if self.recipe.train.channels_last else (lambda batch: batch)
        return self.validator.run(self.model, self._autocast, prepare)

    def _last_checkpoint_note(self) -> str:
        if self.run_dir.checkpoint.exists():
            return f"({self.run_dir.checkpoint}, step {self._last_saved})"
        return "(none was written yet)"

    def run(self) -> TrainSummary:
        """Train to ``train.steps``; checkpoint every ``train.checkpoint_every`` and at the end."""
        if self.dist.is_main:
            self.run_dir.lock()
        try:
            return self._run()
        finally:
            if self.dist.is_main:
                self.run_dir.unlock()

    def _run(self) -> TrainSummary:
        r = self.recipe
        self._setup()
        self._last_saved, self._saved_at = self.step, time.monotonic()  # as if just saved
        if self.dist.is_main:
            self.run_dir.recipe.write_text(dump_recipe(
                r, header=f"Resolved recipe written by cpcframe {__version__}.\n"
                          f"Resume: cpcframe run {self.run_dir.root} --resume"))
        total = r.train.steps
        if self.step >= total:
            raise UserError(f"the run in {self.run_dir.root} already reached step {self.step} of {total}; "
                            "raise train.steps (--set train.steps=N) to continue it")
        loader = build_loader(r, self.dataset, self.view_sampler, start=self.step, stop=total,
                              rank=self.dist.rank, world_size=self.dist.world_size)
        bar = None
        if self.progress and self.dist.is_main:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True, leave=True)
        window: dict[str, list[float]] = defaultdict(list)  # metrics since the last record
        last: dict[str, float] = {}
        latest_val: dict[str, float] = {}
        started = time.perf_counter()
        window_start = started
        try:
            with self.stop:  # Ctrl-C / SIGTERM: finish the step, checkpoint, stop
                for batch in loader:
                    batch = batch.to(self.device, non_blocking=True)
                    if r.train.channels_last:
                        batch = to_channels_last(batch)
                    metrics = self._train_step(batch)
                    self.step += 1
                    for k, v in metrics.items():
                        window[k].append(v)
                    validated = self._validate(total)
                    latest_val = validated or latest_val
                    if self.step % r.train.log_every == 0 or self.step == total:
                        now = time.perf_counter()
                        last = self._record(window, now - window_start, validated, latest_val, bar)
                        window.clear()
                        window_start = now
                    elif validated and self.dist.is_main:  # a record of its own between the others
                        self.metrics_log.append({"step": self.step, **validated})
                    if bar is not None:
                        bar.update(1)
                    self._checkpoint_or_stop(total)
        finally:
            if bar is not None:
                bar.close()
        self._save_checkpoint()
        seconds = time.perf_counter() - started
        skipped = dict(getattr(self.dataset, "skipped", {}) or {})
        summary = TrainSummary(self.step, {**last, **latest_val}, seconds, skipped)
        if self.dist.is_main:
            plot_curves(self.metrics_log.read(), self.run_dir.curves, title=r.name or self.run_dir.root.name)
            self.run_dir.summary.write_text(json.dumps(attrs.asdict(summary), indent=2) + "\n")
        return summary

    def _record(self, window: dict[str, list[float]], seconds: float, validated: dict[str, float],
                latest_val: dict[str, float], bar: Any) -> dict[str, float]:
        """Append the record of this step (means of the window over steps and processes,
        this step's validation, learning rate, speed); returns the training means."""
        means = self.dist.mean_metrics({k: float(np.mean(v)) for k, v in window.items()})
        items = self.recipe.data.batch_size * self.dist.world_size * len(window["loss"])
        record = {"step": self.step, **means, **validated, "lr": self.scheduler.get_last_lr()[0],
                  "items_per_s": items / max(seconds, 1e-9)}
        if self.dist.is_main:
            self.metrics_log.append(record)
        if bar is not None:
            shown = {"loss": f"{means['loss']:.3f}", "acc": f"{means['acc']:.3f}"}
            if latest_val:
                shown["val_loss"] = f"{latest_val['val/loss']:.3f}"
            bar.set_postfix(**shown, it_s=f"{record['items_per_s']:.1f}")
        return means

    def _checkpoint_or_stop(self, total: int) -> None:
        """Save when a checkpoint is due (``checkpoint_every`` steps or ``checkpoint_minutes``
        since the last); on a stop request, save and raise. Every rank decides alike."""
        train = self.recipe.train
        minutes = train.checkpoint_minutes
        time_due = bool(minutes) and time.monotonic() - self._saved_at >= 60 * minutes
        stop, time_due = self.dist.any(self.stop.requested, time_due)  # one small collective
        if stop:
            self._save_checkpoint()
            raise TrainingInterrupted(
                f"stopped by {self.stop.reason} at step {self.step}; checkpoint saved in "
                f"{self.run_dir.root}. Continue with: cpcframe run {self.run_dir.root} --resume")
        if (self.step % train.checkpoint_every == 0 or time_due) and self.step != total:
            self._save_checkpoint()
