"""``hf_images``: an image dataset of Hugging Face ``datasets``, read locally.

``path`` is a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
(read with ``load_from_disk``), or anything ``load_dataset`` reads from disk or its cache
(a local loading script or data folder, an already-downloaded hub dataset). Images are
read undecoded (``Image(decode=False)``) and decoded per item, so a corrupt image is
skipped and counted (``skipped["unreadable image"]``) and replaced by the next readable
one instead of stopping the run.

Splits: ``train_split`` for ``split = "train"``, ``test_split`` for ``"test"``; when the
dataset has no such test split, a deterministic ``test_fraction`` of the training split
is held out (and left out of training).
"""

from __future__ import annotations

from pathlib import Path

import attrs
from torch import Tensor

from cpcframe import DatasetRequest, UserError, validators
from cpcframe_image.data.base import ImageDataset, split_rows
from cpcframe_image.data.decode import UnreadableImage, decode, pil_to_tensor


@attrs.frozen
class HFImagesConfig:
    """Options of ``hf_images``.

    Attributes:
        path: a ``save_to_disk`` folder, or a name/path for ``load_dataset`` (local/cached).
        subset: the dataset's configuration, for ``load_dataset``'s ``name`` ("" = default).
        train_split, test_split: split names.
        image_column: column of ``Image`` type.
        label_column: integer / ``ClassLabel`` column ("" = unlabelled).
        test_fraction: held-out share when there is no ``test_split``.
    """

    path: str = attrs.field(validator=attrs.validators.min_len(1))
    subset: str = ""
    train_split: str = "train"
    test_split: str = "test"
    image_column: str = "image"
    label_column: str = "label"
    test_fraction: float = attrs.field(default=0.2, validator=validators.fraction)


def _is_saved(path: Path) -> bool:
    return any((path / f).is_file() for f in ("dataset_dict.json", "state.json", "dataset_info.json"))


def _load(config: HFImagesConfig):
    """``{split: Dataset}`` of the source."""
    import datasets

    path = Path(config.path).expanduser()
    try:
        if path.is_dir() and _is_saved(path):
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(config.path, config.subset or None)
    except FileNotFoundError as exc:
        raise UserError(f"hf_images: cannot find data.dataset.path = {config.path!r} ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot read it"
        raise UserError(f"hf_images: cannot load {config.path!r}: {type(exc).__name__}: {exc}") from None
    if isinstance(loaded, datasets.Dataset):
        return {config.train_split: loaded}
    return dict(loaded)


class HFImages(ImageDataset):
    """Images (and classes) of one split of a Hugging Face dataset."""

    def __init__(self, config: HFImagesConfig, split: str = "train"):
        import datasets

        splits = _load(config)
        if config.train_split not in splits:
            raise UserError(f"hf_images: {config.path!r} has no split {config.train_split!r} "
                            f"(data.dataset.train_split); it has {sorted(splits)}")
        if split not in ("train", "test"):
            raise UserError(f"hf_images: unknown split {split!r} (train or test)")
        # Without a test split, a held-out share of the training split plays its part.
        hold = config.test_split not in splits
        own = config.test_split if split == "test" and not hold else config.train_split
        ds = splits[own]
        features = ds.features
        if config.image_column not in features or not isinstance(features[config.image_column], datasets.Image):
            raise UserError(f"hf_images: column {config.image_column!r} (data.dataset.image_column) is not an "
                            f"image column; columns: {sorted(features)}")
        if config.label_column and config.label_column not in features:
            raise UserError(f"hf_images: no label column {config.label_column!r} (data.dataset.label_column; "
                            f"\"\" for none); columns: {sorted(features)}")
        n = len(ds)
        targets = [int(t) for t in ds[config.label_column]] if config.label_column else [-1] * n
        label_feature = features.get(config.label_column) if config.label_column else None
        classes = list(getattr(label_feature, "names", None) or [str(c) for c in sorted(set(targets)) if c >= 0])
        keys = [f"{own}/{i}" for i in range(n)]
        rows = list(range(n))
        if hold:
            rows = split_rows(keys, targets, config.test_fraction, split)
            keys, targets = [keys[i] for i in rows], [targets[i] for i in rows]
        self.rows = rows
        self.column = config.image_column
        self.images = ds.select_columns([config.image_column]).cast_column(
            config.image_column, datasets.Image(decode=False))
        super().__init__(keys, targets, classes)

    def load(self, index: int) -> Tensor:
        item = self.images[self.rows[index]][self.column]
        if item is None:
            raise UnreadableImage("no image")
        if not isinstance(item, dict):  # a decoded PIL image (older datasets versions)
            return pil_to_tensor(item)
        if item.get("bytes"):
            return decode(item["bytes"])
        if item.get("path"):
            return decode(Path(item["path"]))
        raise UnreadableImage("image has neither bytes nor a path")


def build_hf_images(config: HFImagesConfig, *, request: DatasetRequest) -> HFImages:
    """A Hugging Face image dataset read locally (load_from_disk / load_dataset)."""
    return HFImages(config, split=request.split)
