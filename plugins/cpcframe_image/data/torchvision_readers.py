"""``cifar10``, ``cifar100`` and ``stl10``: torchvision's readers over a local copy
(``download=False``: nothing is fetched at run time; a missing copy is a ``UserError`` that
says where to get it).

The decoded arrays are held in memory (CIFAR: 50 000 x 32 x 32 x 3 bytes; STL-10 with
its unlabelled part: 105 000 x 3 x 96 x 96), so ``__getitem__`` is a slice.
Splits: ``train`` / ``test``; STL-10's training split is ``train_split`` (``train``: the
5 000 labelled images, ``train+unlabeled``: plus 100 000 unlabelled ones with class -1,
as AMDIM trains; ``unlabeled``), its test split the 8 000 test images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import numpy as np
import torch
from torch import Tensor

from cpcframe import DatasetRequest, UserError
from cpcframe_image.data.base import ImageDataset

SOURCES = {
    "cifar10": ("CIFAR10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": ("CIFAR100", "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
    "stl10": ("STL10", "stl10_binary", "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"),
}


@attrs.frozen
class CifarConfig:
    """Options of ``cifar10`` / ``cifar100``.

    Attributes:
        root: the folder holding ``cifar-10-batches-py`` (or ``cifar-100-python``), or that folder itself.
    """

    root: str = "data/cifar"


@attrs.frozen
class STL10Config:
    """Options of ``stl10``.

    Attributes:
        root: the folder holding ``stl10_binary``, or that folder itself.
        train_split: what ``split = "train"`` reads: ``train+unlabeled`` (AMDIM), ``train``
            or ``unlabeled``.
    """

    root: str = "data/stl10"
    train_split: Literal["train+unlabeled", "train", "unlabeled"] = attrs.field(
        default="train+unlabeled", validator=attrs.validators.in_(("train+unlabeled", "train", "unlabeled")))


def _root(name: str, root: str) -> Path:
    path = Path(root).expanduser()
    folder = SOURCES[name][1]
    return path.parent if path.name == folder else path


def _missing(name: str, root: Path) -> UserError:
    cls, folder, url = SOURCES[name]
    return UserError(
        f"{name}: no {cls} data under data.dataset.root = {str(root)!r} (expected {root / folder}). "
        f"Download {url} and extract it into {root}, or fetch it once with "
        f"python -c \"import torchvision; torchvision.datasets.{cls}({str(root)!r}, download=True)\"")


class ArrayImages(ImageDataset):
    """Images held as one uint8 array, ``(N, H, W, 3)`` (``hwc``) or ``(N, 3, H, W)``."""

    def __init__(self, data: np.ndarray, targets: list[int], classes: list[str], prefix: str, hwc: bool):
        super().__init__([f"{prefix}/{i}" for i in range(len(data))], targets, classes)
        self.data = data
        self.hwc = hwc

    def load(self, index: int) -> Tensor:
        image = torch.from_numpy(np.ascontiguousarray(self.data[index]))
        return image.permute(2, 0, 1).contiguous() if self.hwc else image


def _read(name: str, root_option: str, our_split: str, **kwargs):
    """torchvision's reader of ``name`` over the local copy (``UserError`` when it is
    missing); ``our_split`` is the run's ``train``/``test``, ``kwargs`` go to the reader."""
    import torchvision.datasets as tvd

    if our_split not in ("train", "test"):
        raise UserError(f"{name}: unknown split {our_split!r} (train or test)")
    root = _root(name, root_option)
    try:
        return getattr(tvd, SOURCES[name][0])(str(root), download=False, **kwargs)
    except RuntimeError:
        raise _missing(name, root) from None


def build_cifar(name: str, config: CifarConfig, split: str) -> ArrayImages:
    ds = _read(name, config.root, split, train=split == "train")
    return ArrayImages(ds.data, [int(t) for t in ds.targets], list(ds.classes), split, hwc=True)


def build_cifar10(config: CifarConfig, *, request: DatasetRequest) -> ArrayImages:
    """CIFAR-10 from a local copy (torchvision reader, no download)."""
    return build_cifar("cifar10", config, request.split)


def build_cifar100(config: CifarConfig, *, request: DatasetRequest) -> ArrayImages:
    """CIFAR-100 from a local copy (torchvision reader, no download)."""
    return build_cifar("cifar100", config, request.split)


def build_stl10(config: STL10Config, *, request: DatasetRequest) -> ArrayImages:
    """STL-10 from a local copy (train+unlabeled for training, test split for probes)."""
    split = config.train_split if request.split == "train" else "test"
    ds = _read("stl10", config.root, request.split, split=split)
    classes = list(getattr(ds, "classes", [])) or [str(i) for i in range(10)]
    return ArrayImages(ds.data, [int(t) for t in ds.labels], classes, split, hwc=False)
