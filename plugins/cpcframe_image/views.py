"""What the image view samplers (``amdim_views``, ``image_patches``) share: ImageNet
normalisation defaults, the contract-test example, and reading a file for
``cpcframe embed`` through the sampler's deterministic ``eval_view``."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import torch
from torch import Tensor

from cpcframe import Example, ViewSampler

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageViewSampler(ViewSampler):
    """A view sampler of ``(3, H, W)`` images configured by ``config``."""

    def __init__(self, config):
        self.config = config

    def example_size(self) -> tuple[int, int]:
        """``(H, W)`` of the random image :meth:`example` returns."""
        return 40, 48

    def example(self) -> Example:
        g = torch.Generator().manual_seed(0)
        return Example(data=torch.randint(0, 256, (3, *self.example_size()), generator=g, dtype=torch.uint8),
                       key="random")

    @abstractmethod
    def eval_view(self, example: Example) -> Tensor:
        """The deterministic (no augmentation) view of ``example``, for probes and embedding."""

    def inference_views(self, path: Path, run_dir: Path | None = None) -> list[tuple[str, Tensor]]:
        """``[(path.stem, view)]``: the image file through :meth:`eval_view` (for
        ``cpcframe embed``). Raises ``OSError``/``ValueError`` when the file is not a
        readable image."""
        from cpcframe_image.data.decode import decode

        path = Path(path)
        return [(path.stem, self.eval_view(Example(data=decode(path), key=path.stem)))]
