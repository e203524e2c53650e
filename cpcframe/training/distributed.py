"""torch.distributed plumbing for the trainer (launch with ``torchrun``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.distributed as dist

from cpcframe.contrast import Contrast


@attrs.define
class DistributedContext:
    """Rank, world size and device of this process; a single process when not enabled."""

    enabled: bool = False
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = attrs.field(factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> "DistributedContext":
        """Enabled when launched by torchrun (``WORLD_SIZE`` > 1) or a process group exists."""
        if dist.is_available() and dist.is_initialized():
            return cls._from_group()
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
            return cls._from_group()
        return cls()

    @classmethod
    def _from_group(cls) -> "DistributedContext":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
        return cls(True, dist.get_rank(), dist.get_world_size(), local_rank, device)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def gather_objects(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def contrast_transform(self, train: Any) -> Callable[[Contrast], Contrast] | None:
        if not self.enabled or not getattr(train, "gather_negatives", False):
            return None
        from cpcframe.training.gather import gather_keys

        return gather_keys
