"""One training loop for every modality.

Exact resume: batches are a function of ``(seed, step)`` (see
:mod:`cpcframe.data.sampling`) and a checkpoint holds the model, optimizer, scheduler,
grad scaler and every RNG state, so on CPU the losses after resuming equal those of an
uninterrupted run.

The public seams, in the order :meth:`Trainer.run` uses them: :meth:`~Trainer.setup`
(datasets, :class:`~cpcframe.training.state.TrainState`, validation; the checkpoint when
resuming), :meth:`~Trainer.train_step`, :meth:`~Trainer.validate`, :meth:`~Trainer.save`
and :meth:`~Trainer.load`. Validation runs the model the way training does, through
:meth:`~Trainer.prepare` and :meth:`~Trainer.autocast`.

What an operator can rely on:

* a stop (Ctrl-C, or SIGTERM to the whole job, loader workers included) in any phase ends
  the run cleanly: in the loop after the step, with a checkpoint (``TrainingInterrupted``),
  elsewhere at once (:class:`~cpcframe.stopping.StopSignal`); see
  :mod:`cpcframe.stopping`;
* a checkpoint holds finite weights: one that would not is refused and the previous one
  kept (``TrainingDiverged``); its weights file and state file are written together and
  record their step;
* a resume records exactly what it runs (:mod:`cpcframe.training.resume`), and nothing is
  written before its settings are accepted;
* temporaries that killed writes left are removed when a run starts; skipped items are
  counted in whichever process read them (:mod:`cpcframe.training.skips`).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time

import attrs
import torch

from cpcframe.allocator import keep_freed_memory
from cpcframe._version import __version__
from cpcframe.batch import Batch
from cpcframe.build import build_dataset, build_loader, build_view_sampler
from cpcframe.config.loader import dump_recipe, load_recipe
from cpcframe.config.paths import check_paths
from cpcframe.config.recipe import Recipe
from cpcframe.errors import UserError
from cpcframe.model import ContrastiveModel, contrastive_loss
from cpcframe.negatives import resolve_policy
from cpcframe.registry import Registry
from cpcframe.data.workers import release_workers
from cpcframe.preflight import check_batch_fits
from cpcframe.runs.atomic import DiskFull, write_atomic_group, write_text_atomic
from cpcframe.runs.layout import RunDir
from cpcframe.runs.state import load_state, state_writer
from cpcframe.runs.weights import save_weights, weights_step, weights_writer
from cpcframe.shards.resume import check_resume_order, order_state
from cpcframe.runtime import resolve_device, restore_rank_rng, rng_state, seed_everything
from cpcframe.training.distributed import DistributedRuntime
from cpcframe.training.learning import LearningWatch, latent_spread
from cpcframe.training.metrics import MetricsLog
from cpcframe.training.plot import plot_curves
from cpcframe.training.progress import Progress
from cpcframe.training.resume import (Change, apply_optimizer_settings, check_changes, describe,
                                      misfit_error, recipe_changes)
from cpcframe.training.skips import SkipLog
from cpcframe.training.state import TrainState, create_train_state
from cpcframe.threads import apply_threads, available_cores, follower_for
from cpcframe.stopping import StopRequest, StopSignal, active_stop_request
from cpcframe.training.validation import Validator


class TrainingDiverged(UserError):
    """The loss, or the weights, became NaN or infinite."""


class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was saved."""


def to_channels_last(batch: Batch) -> Batch:
    """The batch with every 4-D view tensor ``(B, C, H, W)`` in channels-last memory format."""
    def convert(t):
        return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t

    views = tuple(convert(v) if isinstance(v, torch.Tensor) else {k: convert(t) for k, t in v.items()}
                  for v in batch.views)
    return Batch(views, batch.groups, batch.keys)


@attrs.frozen
class TrainSummary:
    """What ``summary.json`` holds: the last step, the final metrics (the last record's
    training means and the last validation), wall seconds of training over the whole run
    (every resumed part included), skipped items by reason (those skipped in loader
    workers included), whether it learned (:mod:`cpcframe.training.learning`), and the
    steps and seconds of this session alone (``resumed_at``: the step it continued from)."""

    step: int
    metrics: dict[str, float]
    seconds: float
    skipped: dict[str, int]
    learning: dict = attrs.Factory(dict)
    session_steps: int = 0
    session_seconds: float = 0.0
    resumed_at: int = 0


class Trainer:
    """Trains ``recipe`` into ``run_dir``; see :meth:`run` and the module docstring.

    Attributes (from :meth:`setup` on): ``device``, ``view_sampler``, ``dataset`` (the
    training split), ``state`` (:class:`TrainState`; ``model`` and ``step`` are its),
    ``validator`` (``None`` without ``train.validate_every``), ``metrics_log``.
    """

    def __init__(self, recipe: Recipe, registry: Registry, run_dir: RunDir, *, resume: bool = False,
                 progress: bool = True, dist: DistributedRuntime | None = None):
        self.recipe = recipe
        self.registry = registry
        self.run_dir = run_dir
        self.resume = resume
        self.progress = progress
        self.dist = dist or DistributedRuntime.from_environment(recipe.train.device)
        # Ctrl-C / SIGTERM: the command's request (cpcframe run installs one), else our own.
        self.stop = active_stop_request() or StopRequest(interrupt=True)
        self.state: TrainState | None = None
        self.changes: list[Change] = []  # what a resume changes, by key path

    @property
    def model(self) -> ContrastiveModel:
        return self.state.model

    @property
    def step(self) -> int:
        return self.state.step

    # ---- setup ---------------------------------------------------------------------
    def setup(self) -> None:
        """Device, view sampler, training data, :attr:`state`, validation; then the
        checkpoint's state when resuming (else a fresh ``metrics.jsonl``)."""
        r = self.recipe
        self.stop.enter_phase("set-up")
        check_paths(r)  # every missing corpus folder or list at once, before anything is built
        if self.resume:
            self.changes = self._resume_changes()
        self.device = self.dist.device if self.dist.enabled else resolve_device(r.train.device)
        if r.train.precision == "fp16" and self.device.type != "cuda":
            raise UserError("train.precision = 'fp16' needs a CUDA device; use 'bf16' on CPU")
        apply_threads(r.train.threads)  # free cores when 0 (cpcframe.threads)
        if r.train.keep_freed_memory:
            keep_freed_memory()  # no page faults on each step's large tensors (cpcframe.allocator)
        seed_everything(r.seed + self.dist.rank)
        self.view_sampler = build_view_sampler(r, self.registry)
        self.stop.enter_phase("data preparation")
        self.dataset = build_dataset(r, self.registry, split="train", run_dir=self.run_dir.root,
                                     view_sampler=self.view_sampler)
        self.stop.enter_phase("set-up")
        if self.dist.is_main:  # what was loaded, before minutes of training on it
            print(f"cpcframe: training data ({r.data.dataset.name}): {self.dataset.describe()}", file=sys.stderr)
        check_batch_fits(r, len(self.dataset), world_size=self.dist.world_size)
        self.skips = SkipLog(self.dataset, "train")
        self.state = create_train_state(r, self.registry, self.device, self.dist,
                                        view_sampler=self.view_sampler)
        self.negative_policy = resolve_policy(r.loss.negatives, self.registry)
        # e.g. a text corpus checks that its vocabulary fits the encoder's embedding table.
        self.dataset.check_model(self.model)
        self.metrics_log = MetricsLog(self.run_dir.metrics)
        self.validator = None
        if r.train.validate_every:
            self.stop.enter_phase("data preparation")
            self.validator = Validator(r, self.registry, self.view_sampler, dist=self.dist,
                                       device=self.device, run_dir=self.run_dir.root)
            self.stop.enter_phase("set-up")
        seed_everything(r.seed + 1000003 * self.dist.rank + 1)
        if self.resume:
            self.load()
        elif self.dist.is_main:
            self.run_dir.metrics.unlink(missing_ok=True)
        self._last_saved, self._saved_at = self.step, time.monotonic()  # as if just saved

    # ---- checkpoints ---------------------------------------------------------------
    def _resume_changes(self) -> list[Change]:
        """What this recipe changes against the run's own, refused early when a
        checkpoint cannot continue with it (nothing is written before)."""
        try:
            saved = load_recipe(self.run_dir.recipe, self.registry)
        except UserError:  # no recipe (a run started from Python), or one that no longer loads
            return []
        changes = recipe_changes(saved, self.recipe)
        check_changes(changes)
        return changes

    def load(self) -> None:
        """Continue from ``checkpoint.pt``: model, optimizer, schedule, scaler, step and
        this rank's RNG state (a rank the checkpoint has no state for gets its own seed).
        The recipe's optimizer settings replace the checkpoint's (a changed ``train.lr``
        applies from this step on); a model that does not fit is refused, located."""
        state = load_state(self.run_dir.checkpoint)
        # A sharded corpus: refuse a resume that would repeat or drop shards of the epoch.
        check_resume_order(state.get("data_order"), self._data_order(),
                           saved_world=int(state.get("world_size", 1)), world_size=self.dist.world_size)
        try:
            self.state.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise misfit_error(self.changes, self.run_dir.checkpoint, exc) from None
        apply_optimizer_settings(self.state, self.recipe.train)
        self._seconds_before = float(state.get("train_seconds", 0.0))  # the earlier sessions' time
        restore_rank_rng(state["rng"], rank=self.dist.rank, seed=self.recipe.seed, step=self.step)
        if self.dist.is_main:
            self.metrics_log.truncate_after(self.step)
            if self.changes:
                print(f"cpcframe: resuming {self.run_dir.root} at step {self.step} with "
                      f"{describe(self.changes)}", file=sys.stderr)
            if weights_step(self.run_dir.weights) != self.step:
                # A kill between the two renames of a checkpoint: the files agree again.
                save_weights(self.run_dir.weights, self.model, metadata=self._weights_metadata())

    def _data_order(self) -> dict[str, int] | None:
        return order_state(self.dataset, self.recipe.data.batch_size, self.dist.world_size)

    def _weights_metadata(self) -> dict[str, str]:
        return {"step": str(self.step), "cpcframe_version": __version__}

    def _weights_finite(self) -> bool:
        tensors = [t for t in self.model.state_dict().values() if t.is_floating_point()]
        return not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())

    def save(self) -> None:
        """Write ``model.safetensors`` and ``checkpoint.pt``, both recording the step
        (rank 0; every rank calls it).

        Raises:
            TrainingDiverged: the weights are not finite (the previous checkpoint is kept).
            DiskFull: the disk is full (the previous checkpoint is kept).
        """
        if not self._weights_finite():  # every rank holds the same weights: all refuse alike
            raise TrainingDiverged(
                f"the weights became NaN or infinite by step {self.step} (the update after a finite "
                f"loss exploded); the last checkpoint with finite weights {self._last_checkpoint_note()} "
                "is kept. Try a lower train.lr, train.grad_clip, or train.precision = 'fp32'.")
        rng = self.dist.gather_objects(rng_state())
        if self.dist.is_main:
            state = {**self.state.state_dict(), "rng": rng if self.dist.enabled else rng[0],
                     "world_size": self.dist.world_size, "cpcframe_version": __version__,
                     "train_seconds": self._train_seconds()}
            if (order := self._data_order()) is not None:
                state["data_order"] = order
            try:
                # The weights first, the state last: the state commits the checkpoint.
                write_atomic_group([(self.run_dir.weights, weights_writer(self.model, self._weights_metadata())),
                                    (self.run_dir.checkpoint, state_writer(state))])
            except DiskFull as exc:
                raise DiskFull(f"{exc} (checkpoint of step {self.step}; the last checkpoint "
                               f"{self._last_checkpoint_note()} is intact; continue with: "
                               f"cpcframe run {self.run_dir.root} --resume)") from None
            if self.skips.changed:
                self._write_skipped()
        self._last_saved, self._saved_at = self.step, time.monotonic()

    def _train_seconds(self) -> float:
        """Seconds of training of the whole run: earlier sessions' plus this one's loop."""
        started = getattr(self, "_loop_started", None)
        now = 0.0 if started is None else time.perf_counter() - started
        return getattr(self, "_seconds_before", 0.0) + now

    def _write_skipped(self) -> None:
        records = self.skips.records()
        if self.validator is not None:
            records += SkipLog(self.validator.dataset, "test").records()
        if records or self.run_dir.skipped.exists():
            write_text_atomic(self.run_dir.skipped, "".join(json.dumps(r) + "\n" for r in records))

    # ---- one step --------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """The mixed-precision context of ``train.precision`` (none for fp32)."""
        precision = self.recipe.train.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def prepare(self, batch: Batch) -> Batch:
        """A loader's batch on the device, channels-last when ``train.channels_last``."""
        batch = batch.to(self.device, non_blocking=True)
        return to_channels_last(batch) if self.recipe.train.channels_last else batch

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One optimisation step on a loader's batch; returns its metrics (``loss``,
        ``acc``, per prediction step, ``grad_norm`` with clipping).

        Raises:
            TrainingDiverged: the loss is not finite (before the update).
        """
        r, s = self.recipe, self.state
        s.model.train()
        with self.autocast():
            contrasts = s.forward_model(self.prepare(batch))
            out = contrastive_loss(contrasts, r.loss, transform=self.dist.contrast_transform(r.train),
                                   policy=self.negative_policy)
        if not math.isfinite(out.metrics["loss"]):
            raise TrainingDiverged(
                f"loss became {out.metrics['loss']} at step {s.step + 1}; the last good checkpoint "
                f"{self._last_checkpoint_note()} is kept. Try a lower train.lr, train.grad_clip, "
                "or train.precision = 'fp32'.")
        out.metrics["latent_spread"] = latent_spread(contrasts)  # collapse shows as ~0
        s.optimizer.zero_grad(set_to_none=True)
        s.scaler.scale(out.loss).backward()
        if r.train.grad_clip > 0:
            s.scaler.unscale_(s.optimizer)
            out.metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(s.model.parameters(),
                                                                            r.train.grad_clip))
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.scheduler.step()
        s.step += 1
        return out.metrics

    def validate(self) -> dict[str, float]:
        """``val/loss``, ``val/acc``, ... on the fixed validation batches (every rank)."""
        if self.validator is None:
            raise RuntimeError("this run does not validate (train.validate_every = 0)")
        return self.validator.run(self)

    def _last_checkpoint_note(self) -> str:
        if self.run_dir.checkpoint.exists():
            step = getattr(self, "_last_saved", None)
            return f"({self.run_dir.checkpoint}, step {step})" if step is not None else f"({self.run_dir.checkpoint})"
        return "(none was written yet)"

    def _stop_note(self) -> str:
        if self.run_dir.checkpoint.exists():
            return (f"the checkpoint in {self.run_dir.root} is unchanged; continue with: "
                    f"cpcframe run {self.run_dir.root} --resume")
        return "nothing was saved (training had not started)"

    # ---- the loop --------------------------------------------------------------------
    def run(self) -> TrainSummary:
        """Train to ``train.steps``; checkpoint every ``train.checkpoint_every`` and at the end.

        Raises:
            TrainingInterrupted: a stop during training (a checkpoint was saved).
            StopSignal: a stop in another phase (set-up, data preparation).
            TrainingDiverged, DiskFull, UserError: see their messages.
        """
        with self.stop:  # the handlers live for the whole run, set-up included
            try:
                if self.dist.is_main:
                    self.run_dir.lock()
                    removed = self.run_dir.remove_temporaries()
                    if removed:
                        print(f"cpcframe: removed {len(removed)} temporary file(s) that an interrupted "
                              f"write left in {self.run_dir.root}", file=sys.stderr)
                return self._run()
            except StopSignal as exc:
                raise StopSignal(exc.reason, exc.phase, self._stop_note()) from None
            finally:
                if self.dist.is_main:
                    self.run_dir.unlock()

    def _run(self) -> TrainSummary:
        r = self.recipe
        self.setup()
        total = r.train.steps
        if self.step >= total:
            raise UserError(f"the run in {self.run_dir.root} already reached step {self.step} of {total}; "
                            "raise train.steps (--set train.steps=N) to continue it")
        self.stop.check()  # a stop during set-up that something swallowed
        if self.dist.is_main:  # only now: a refused resume leaves the run's recipe as it was
            write_text_atomic(self.run_dir.recipe, dump_recipe(
                r, header=f"Resolved recipe written by cpcframe {__version__}.\n"
                          f"Resume: cpcframe run {self.run_dir.root} --resume"))
            self._write_skipped()
        loader = build_loader(r, self.dataset, self.view_sampler, start=self.step, stop=total,
                              rank=self.dist.rank, world_size=self.dist.world_size)
        last: dict[str, float] = {}
        latest_val: dict[str, float] = {}
        resumed_at = self.step
        watch = LearningWatch(r.train.plateau_steps, r.loss.num_negatives, start_step=self.step)
        follower = follower_for(r.train.threads)  # train.threads = 0: the free cores, followed
        if self.dist.is_main and self.device.type == "cpu":
            cores = follower.cores if follower is not None else available_cores()
            following = ", following the free cores" if follower is not None else ""
            print(f"cpcframe: training with {torch.get_num_threads()} CPU thread(s) of "
                  f"{cores} core(s){following}", file=sys.stderr)
        started = self._loop_started = time.perf_counter()
        # Ctrl-C / SIGTERM: finish the step, checkpoint, stop (the final save included).
        with self.stop.deferred("training"):
            batches = iter(loader)
            try:
                with Progress(self.metrics_log, self.dist, r.data.batch_size, total=total,
                              initial=self.step, bar=self.progress, watch=watch) as progress:
                    for batch in batches:
                        self.skips.add_all(getattr(batch, "skips", ()))
                        progress.add(self.train_step(batch))
                        changed = follower.poll() if follower is not None else None
                        if changed is not None and self.dist.is_main:
                            progress.note(f"cpcframe: {changed} CPU thread(s) from step {self.step}: "
                                          "other processes' use of the cores changed")
                        due = self.validator is not None and (self.step % r.train.validate_every == 0
                                                              or self.step == total)
                        validated = self.validate() if due else {}
                        latest_val = validated or latest_val
                        if self.step % r.train.log_every == 0 or self.step == total:
                            lr = self.state.scheduler.get_last_lr()[0]
                            last = progress.record(self.step, validated, latest_val, lr)
                        elif validated:
                            progress.record_validation(self.step, validated)
                        progress.advance()
                        self._checkpoint_or_stop(total)
            finally:
                release_workers(loader)  # the workers may end now (a stuck one by SIGTERM)
                del batches
            self.save()
            session = time.perf_counter() - started
            summary = TrainSummary(self.step, {**last, **latest_val}, self._train_seconds(),
                                   self.skips.counts, learning=watch.summary(),
                                   session_steps=self.step - resumed_at, session_seconds=session,
                                   resumed_at=resumed_at)
            if self.dist.is_main:
                plot_curves(self.metrics_log.read(), self.run_dir.curves, title=r.name or self.run_dir.root.name)
                self.run_dir.write_json(self.run_dir.summary, attrs.asdict(summary))
        return summary

    def _checkpoint_or_stop(self, total: int) -> None:
        """Save when a checkpoint is due (``checkpoint_every`` steps or ``checkpoint_minutes``
        since the last); on a stop request, save and raise. Every rank decides alike."""
        train = self.recipe.train
        minutes = train.checkpoint_minutes
        time_due = bool(minutes) and time.monotonic() - self._saved_at >= 60 * minutes
        stop, time_due = self.dist.any(self.stop.requested, time_due)  # one small collective
        if stop:
            self.save()
            raise TrainingInterrupted(
                f"stopped by {self.stop.reason} at step {self.step}; checkpoint saved in "
                f"{self.run_dir.root}. Continue with: cpcframe run {self.run_dir.root} --resume")
        if (self.step % train.checkpoint_every == 0 or time_due) and self.step != total:
            self.save()
