"""``image_folder``: images in class sub-folders (``ROOT/<class>/**/*.png``), like
torchvision's ``ImageFolder``.

Splits: when ``ROOT/train`` and ``ROOT/test`` (or ``ROOT/val``) exist, they are the train
and test splits (each with class sub-folders; classes are the union, sorted). Otherwise a
deterministic ``test_fraction`` of each class is held out for ``split = "test"`` and left
out of ``"train"``.

Unreadable files never stop a run: with ``verify = "header"`` (default) each file's first
bytes are checked at index time (empty files and files that are not images are skipped
and counted); a file that passes but fails to decode later is counted and replaced by
the next readable one. ``verify = "decode"`` decodes every file at index time (small
folders); ``"none"`` trusts the names (huge folders).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
from torch import Tensor

from cpcframe import DatasetRequest, UserError, validators
from cpcframe_image.data.base import ImageDataset, split_rows, warn_skipped
from cpcframe_image.data.decode import EXTENSIONS, decode, sniff


@attrs.frozen
class ImageFolderConfig:
    """Options of ``image_folder``.

    Attributes:
        root: folder with one sub-folder per class (or ``train``/``test`` split folders).
        test_fraction: held-out share of each class when there are no split folders.
        verify: ``header`` (magic bytes), ``decode`` (full decode) or ``none``, at index time.
        max_per_class: keep at most this many files per class (0 = all; sorted by name).
    """

    root: str = "data/images"
    test_fraction: float = attrs.field(default=0.2, validator=validators.fraction)
    verify: Literal["header", "decode", "none"] = attrs.field(
        default="header", validator=attrs.validators.in_(("header", "decode", "none")))
    max_per_class: int = attrs.field(default=0, validator=validators.non_negative)


def _split_dirs(root: Path) -> dict[str, Path] | None:
    test = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test is not None:
        return {"train": root / "train", "test": test}
    return None


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
                  and not p.name.startswith("."))


class ImageFolder(ImageDataset):
    """Images of ``ROOT/<class>/...``; see the module docstring."""

    def __init__(self, config: ImageFolderConfig, split: str = "train"):
        if not config.root:
            raise UserError("image_folder: set data.dataset.root to a folder of class sub-folders")
        root = Path(config.root).expanduser()
        if not root.is_dir():
            raise UserError(f"image_folder: data.dataset.root = {str(root)!r} is not a folder")
        split_dirs = _split_dirs(root)
        if split_dirs is not None:
            if split not in split_dirs:
                raise UserError(f"image_folder: unknown split {split!r}; {root} has 'train' and "
                                f"'{split_dirs['test'].name}'")
            folders = [split_dirs[split]]
            class_names = sorted({d.name for f in split_dirs.values() for d in _class_dirs(f)})
        else:
            folders = [root]
            class_names = [d.name for d in _class_dirs(root)]
        if not class_names:
            raise UserError(f"image_folder: {root} has no class sub-folders (expected ROOT/<class>/<image files>)")
        index = {name: i for i, name in enumerate(class_names)}
        self.root = root
        self.paths: list[Path] = []
        targets: list[int] = []
        skipped: dict[str, int] = {}
        for class_dir in (d for folder in folders for d in _class_dirs(folder)):
            paths = self._usable(_files(class_dir), config, skipped)
            self.paths += paths
            targets += [index[class_dir.name]] * len(paths)
        if not self.paths and not skipped:
            raise UserError(f"image_folder: no image files ({', '.join(EXTENSIONS)}) under {root}")
        keys = [path.relative_to(root).as_posix() for path in self.paths]
        if split_dirs is None:
            keep = split_rows(keys, targets, config.test_fraction, split)
            self.paths = [self.paths[i] for i in keep]
            keys = [keys[i] for i in keep]
            targets = [targets[i] for i in keep]
        super().__init__(keys, targets, class_names, skipped)
        warn_skipped(f"image_folder {root}", skipped)

    @classmethod
    def _usable(cls, files: list[Path], config: ImageFolderConfig, skipped: dict[str, int]) -> list[Path]:
        """The first ``max_per_class`` (0 = all) of ``files`` that pass ``verify``; the
        others it checks are counted in ``skipped`` by reason."""
        kept: list[Path] = []
        for path in files:
            if config.max_per_class and len(kept) >= config.max_per_class:
                break
            reason = cls._verify(path, config.verify)
            if reason == "ok":
                kept.append(path)
            else:
                skipped[reason] = skipped.get(reason, 0) + 1
        return kept

    @staticmethod
    def _verify(path: Path, mode: str) -> str:
        if mode == "none":
            return "ok"
        reason = sniff(path)
        if reason != "ok" or mode == "header":
            return reason
        try:
            decode(path)
        except OSError:  # UnreadableImage included
            return "undecodable image"
        return "ok"

    def load(self, index: int) -> Tensor:
        return decode(self.paths[index])


def build_image_folder(config: ImageFolderConfig, *, request: DatasetRequest) -> ImageFolder:
    """Images in class sub-folders (train/test split folders, or a held-out share)."""
    return ImageFolder(config, split=request.split)
