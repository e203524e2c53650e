"""The recipe: every setting of a run, as frozen attrs classes."""

from __future__ import annotations

from typing import Literal, Optional

import attrs

from cpcframe.config.component import ComponentSpec, component_field
from cpcframe.config.validators import adam_betas, device_name, learning_rate, non_negative, positive
from cpcframe.identity import DEFAULT_CONTEXT_MODEL
from cpcframe.infonce import InfoNCEConfig


@attrs.frozen
class DataSection:
    """``[data]``: what to read, how to cut views, how to batch.

    Attributes:
        dataset: ``[data.dataset]``, a registered dataset.
        views: ``[data.views]``, a registered view sampler.
        batch_size: items per optimisation step (per process).
        group_size: when > 0, each batch holds ``batch_size / group_size`` groups
            (e.g. speakers) of ``group_size`` items each (for group negative policies).
        num_workers: loader worker processes (0 = in the training process).
        pin_memory: pin batches for faster host-to-GPU copies.
        prefetch_factor: batches each worker prepares ahead.
    """

    dataset: ComponentSpec = component_field("dataset")
    views: ComponentSpec = component_field("view_sampler")
    batch_size: int = attrs.field(default=8, validator=positive)
    group_size: int = attrs.field(default=0, validator=non_negative)
    num_workers: int = attrs.field(default=0, validator=non_negative)
    pin_memory: bool = False
    prefetch_factor: int = attrs.field(default=2, validator=positive)

    def __attrs_post_init__(self) -> None:
        if self.group_size and self.batch_size % self.group_size:
            raise ValueError(f"batch_size={self.batch_size} must be a multiple of "
                             f"group_size={self.group_size}")


@attrs.frozen(kw_only=True)  # a required critic after the optional context
class ModelSection:
    """``[model]``: the three model components.

    Attributes:
        encoder: ``[model.encoder]``, a registered encoder.
        context: ``[model.context]``, a registered context model; ``identity`` (``c = z``,
            as AMDIM) when the recipe has none.
        critic: ``[model.critic]``, a registered critic.
    """

    encoder: ComponentSpec = component_field("encoder")
    context: ComponentSpec = component_field("context_model", default=DEFAULT_CONTEXT_MODEL)
    critic: ComponentSpec = component_field("critic")


@attrs.frozen
class TrainSection:
    """``[train]``: optimisation and bookkeeping.

    Attributes:
        steps: optimisation steps in all.
        lr: peak learning rate (Adam; CPC: 2e-4).
        betas, eps, weight_decay: AdamW's.
        warmup_steps: linear warm-up from 0 to ``lr``.
        schedule: after warm-up: ``constant``, ``cosine`` (to 0) or ``linear`` (to 0).
        grad_clip: clip the global gradient norm to this (0 = off).
        precision: ``fp32``, ``bf16`` (autocast) or ``fp16`` (autocast + grad scaler; GPU).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, ...
        compile: wrap the model in ``torch.compile``.
        channels_last: use channels-last memory format (image encoders).
        threads: CPU threads per process for PyTorch's operators (``torch.set_num_threads``),
            for training and for ``cpcframe probe`` and ``embed`` of the run; 0 = the free
            cores of the CPUs the process may use, at least 1, measured at start and
            followed during a run (``OMP_NUM_THREADS`` when set), see :mod:`cpcframe.threads`. On a CPU shared with other jobs, more threads than
            free cores oversubscribe it (measured: 2 threads cost ~6x the CPU of 1 per step).
        keep_freed_memory: keep freed memory in the process for the next step instead of
            handing large blocks back to the system (glibc's malloc; off elsewhere): a step
            then does not page-fault its large tensors in again (the loss head at batch 64:
            15 % faster on a 2-core Xeon); resident memory stays at its peak. See
            :mod:`cpcframe.allocator`.
        log_every: steps between metric records (``metrics.jsonl``).
        validate_every: steps between validations on the dataset's ``"test"`` split
            (``val/loss``, ``val/acc``, ... in ``metrics.jsonl``; 0 = none).
        validate_batches: batches per validation (the same ones every time).
        validate_probe: ``[train.validate_probe]``, a registered probe also run at every
            validation (e.g. ``abx`` with ``max_items``), its results logged as
            ``val/<task>/<features>`` (none by default).
        checkpoint_every: steps between checkpoints (one at the end too).
        checkpoint_minutes: also checkpoint when this many minutes passed since the last
            one (0 = off): bounds the work a hard kill (node failure, out of memory) loses
            when steps are slow.
        gather_negatives: in distributed runs, draw negatives from the global batch.
        plateau_steps: from this step on, a training accuracy still below twice chance
            (or collapsed, near-constant latents) is reported as a run that is not
            learning: a warning with what to try, the progress bar and ``summary.json``
            (``learning``) say so (0 = never; :mod:`cpcframe.training.learning`).
    """

    steps: int = attrs.field(default=1000, validator=positive)
    lr: float = attrs.field(default=2e-4, validator=learning_rate)
    betas: tuple[float, float] = attrs.field(default=(0.9, 0.999), validator=adam_betas)
    eps: float = attrs.field(default=1e-8, validator=positive)
    weight_decay: float = attrs.field(default=0.0, validator=non_negative)
    warmup_steps: int = attrs.field(default=0, validator=non_negative)
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    grad_clip: float = attrs.field(default=0.0, validator=non_negative)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    device: str = attrs.field(default="auto", validator=device_name)
    compile: bool = False
    channels_last: bool = False
    threads: int = attrs.field(default=0, validator=non_negative)
    keep_freed_memory: bool = True
    log_every: int = attrs.field(default=10, validator=positive)
    validate_every: int = attrs.field(default=0, validator=non_negative)
    validate_batches: int = attrs.field(default=10, validator=positive)
    validate_probe: Optional[ComponentSpec] = component_field("probe", optional=True)
    checkpoint_every: int = attrs.field(default=500, validator=positive)
    checkpoint_minutes: float = attrs.field(default=0.0, validator=non_negative)
    gather_negatives: bool = True
    plateau_steps: int = attrs.field(default=500, validator=non_negative)


@attrs.frozen
class Recipe:
    """A whole run. See ``docs/recipes.md`` for every key."""

    data: DataSection
    model: ModelSection
    loss: InfoNCEConfig = InfoNCEConfig()
    train: TrainSection = TrainSection()
    probe: Optional[ComponentSpec] = component_field("probe", optional=True)
    seed: int = 0
    name: str = ""
