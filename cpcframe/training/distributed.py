"""torch.distributed plumbing for the trainer (launch with ``torchrun``).

One process per device. ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :meth:`DistributedRuntime.from_environment` joins the
process group from them (NCCL on GPUs, gloo on CPUs). ``data.batch_size`` is per process:
the global batch is ``batch_size · world_size`` (see :mod:`cpcframe.data.sampling`), and
with ``train.gather_negatives`` every process scores its queries against the keys of the
whole global batch (:mod:`cpcframe.training.gather`). See ``docs/distributed.md``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import attrs
import torch
import torch.distributed as dist

from cpcframe.contrast import Contrast
from cpcframe.errors import UserError


def launched_distributed() -> bool:
    """True in a process started by ``torchrun`` (or similar) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _wants_cuda(device: str) -> bool:
    if device == "auto":
        return torch.cuda.is_available()
    return torch.device(device).type == "cuda"


@attrs.define
class DistributedRuntime:
    """Rank, world size and device of this process; a single process when not enabled.

    Attributes:
        enabled: a process group with more than one process is in use.
        rank: global rank (0 writes checkpoints, metrics and progress).
        world_size: number of processes.
        local_rank: rank on this node (picks the GPU).
        device: this process's device.
    """

    enabled: bool = False
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = attrs.field(factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: str = "auto") -> "DistributedRuntime":
        """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1).

        ``device`` is the recipe's ``train.device``: ``auto`` uses the GPU of
        ``LOCAL_RANK`` with NCCL when CUDA is available, else the CPU with gloo;
        ``cpu`` forces gloo on the CPU; ``cuda``/``cuda:N`` need a GPU per process
        (the index comes from ``LOCAL_RANK``). A process group that already exists
        (initialised by the caller) is used as it is.
        """
        if dist.is_available() and dist.is_initialized():
            return cls._from_group(device)
        if not launched_distributed():
            return cls()
        if not dist.is_available():
            raise UserError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
        cuda = _wants_cuda(device)
        if cuda and not torch.cuda.is_available():
            raise UserError(f"train.device = {device!r} but no CUDA device is available")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            if local_rank >= torch.cuda.device_count():
                raise UserError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPU(s) "
                                "are visible; start at most one process per GPU (--nproc_per_node)")
            # Before init: NCCL binds this process's communicator to the current device.
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
        return cls._from_group(device)

    @classmethod
    def _from_group(cls, device: str = "auto") -> "DistributedRuntime":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        # A gloo group works on the CPU unless the recipe asks for CUDA explicitly.
        explicit_cuda = device != "auto" and _wants_cuda(device)
        if dist.get_backend() == "nccl" or (explicit_cuda and torch.cuda.is_available()):
            torch.cuda.set_device(local_rank)
            dev = torch.device("cuda", local_rank)
        else:
            dev = torch.device("cpu")
        world = dist.get_world_size()
        return cls(world > 1, dist.get_rank(), world, local_rank, dev)

    # ---- model ---------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel around ``model`` (which keeps its own parameters):
        identical initial weights (broadcast from rank 0) and gradients averaged over
        processes in backward."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def contrast_transform(self, train: Any) -> Callable[[Contrast], Contrast] | None:
        """:func:`~cpcframe.training.gather.gather_keys` when ``train.gather_negatives``."""
        if not self.enabled or not getattr(train, "gather_negatives", False):
            return None
        from cpcframe.training.gather import gather_keys

        return gather_keys

    # ---- small collectives (every rank must call them at the same point) -------------
    def gather_objects(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (a list of one when not distributed)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def mean_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Each metric averaged over processes (every rank logs the global batch's value).

        All ranks hold the same keys: they run the same model and critic.
        """
        if not self.enabled or not metrics:
            return metrics
        names = sorted(metrics)
        values = torch.tensor([metrics[n] for n in names], dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        values /= self.world_size
        reduced = dict(zip(names, values.tolist()))
        return {name: reduced[name] for name in metrics}

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """For each flag, true on every rank when it is true on one of them (a stop
        request, a time-based checkpoint), so that all processes act at the same step.
        One collective for all the flags."""
        if not self.enabled:
            return flags
        value = torch.tensor([int(f) for f in flags], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in value.tolist())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def finish_process_group() -> None:
    """Barrier, then ``destroy_process_group()``: every rank is done with collectives.

    Call it on success only: after a failure the other ranks may sit in a collective
    this process will never join, and a barrier would hang until the timeout.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def exit_distributed(status: int) -> NoReturn:
    """End a distributed process with ``status`` without interpreter teardown.

    gloo (and sometimes NCCL) workers can abort in their destructors at interpreter exit
    after the work is done, which ``torchrun`` would report as a failure. So: on success
    barrier + ``destroy_process_group()``; then flush and ``os._exit``. On failure the
    process group is left as it is (``torchrun`` stops the other workers).
    """
    if status == 0:
        try:
            finish_process_group()
        except Exception as exc:  # a peer died after its work: report, keep our status
            print(f"cpcframe: warning: distributed shutdown: {exc}", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)
