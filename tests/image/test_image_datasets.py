"""Image datasets: folders, torchvision readers over a local root, Hugging Face datasets."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from cpcframe import DatasetRequest, UserError
from cpcframe_image.data.base import ImageDataset
from cpcframe_image.data.image_folder import ImageFolder, ImageFolderConfig, build_image_folder
from cpcframe_image.data.decode import UnreadableImage, decode
from cpcframe_image.data.synthetic import CLASSES, write_shapes
from cpcframe_image.data.torchvision_readers import CifarConfig, STL10Config, build_cifar10, build_cifar100, build_stl10

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def ctx(split="train", tmp=None):
    return DatasetRequest(split=split, cache_dir=tmp or Path("/tmp"), seed=0)


@pytest.fixture
def shapes_dir(tmp_path) -> Path:
    return write_shapes(tmp_path / "shapes", per_class=10, size=32, seed=0)


def test_image_folder_reads_classes_and_holds_out_a_test_share(shapes_dir):
    train = build_image_folder(ImageFolderConfig(root=str(shapes_dir)), request=ctx("train"))
    test = build_image_folder(ImageFolderConfig(root=str(shapes_dir)), request=ctx("test"))
    assert train.classes == sorted(CLASSES) and test.classes == train.classes
    assert len(train) == 32 and len(test) == 8  # 20 % of each class of 10
    assert not set(train.keys) & set(test.keys)
    assert sorted(test.targets) == [0, 0, 1, 1, 2, 2, 3, 3]
    ex = train[0]
    assert ex.data.shape == (3, 32, 32) and ex.data.dtype == torch.uint8
    assert ex.labels == train.targets[0] and ex.group == 0 and ex.key.endswith(".png")
    assert train.groups == [0] * 32 and train.skipped == {}
    again = build_image_folder(ImageFolderConfig(root=str(shapes_dir)), request=ctx("test"))
    assert again.keys == test.keys  # deterministic


def test_image_folder_uses_split_folders_when_present(tmp_path):
    write_shapes(tmp_path / "data" / "train", per_class=3, seed=0, classes=("circle", "square"))
    write_shapes(tmp_path / "data" / "val", per_class=2, seed=1, classes=("square", "cross"))
    train = build_image_folder(ImageFolderConfig(root=str(tmp_path / "data")), request=ctx("train"))
    test = build_image_folder(ImageFolderConfig(root=str(tmp_path / "data")), request=ctx("test"))
    assert train.classes == ["circle", "cross", "square"] == test.classes
    assert len(train) == 6 and len(test) == 4
    assert all(k.startswith("val/") for k in test.keys)
    assert sorted(set(test.targets)) == [1, 2]


def test_unreadable_images_are_skipped_and_counted_at_index_time(shapes_dir):
    (shapes_dir / "circle" / "garbage.png").write_bytes(b"this is not a png at all")
    (shapes_dir / "square" / "empty.jpg").write_bytes(b"")
    (shapes_dir / "square" / "notes.txt").write_text("ignored: not an image extension")
    with pytest.warns(UserWarning, match="skipped 2 files"):
        ds = ImageFolder(ImageFolderConfig(root=str(shapes_dir), test_fraction=0.5), split="train")
    assert ds.skipped == {"not an image": 1, "empty file": 1}
    assert not any("garbage" in k or "empty" in k for k in ds.keys)
    for i in range(len(ds)):
        assert ds[i].data.shape == (3, 32, 32)


def test_image_that_fails_to_decode_is_replaced_and_counted(shapes_dir):
    good = (shapes_dir / "circle" / "circle_0000.png").read_bytes()
    (shapes_dir / "circle" / "aaa_truncated.png").write_bytes(good[:60])  # valid header, cut short
    ds = ImageFolder(ImageFolderConfig(root=str(shapes_dir), test_fraction=0.5), split="train")
    ds_test = ImageFolder(ImageFolderConfig(root=str(shapes_dir), test_fraction=0.5), split="test")
    owner = ds if "circle/aaa_truncated.png" in ds.keys else ds_test
    bad = owner.keys.index("circle/aaa_truncated.png")
    with pytest.warns(UserWarning, match="unreadable image"):
        ex = owner[bad]
    assert ex.key != "circle/aaa_truncated.png" and ex.data.shape == (3, 32, 32)
    assert owner.skipped == {"unreadable image": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known bad: no second warning, no second count
        owner[bad]
    assert owner.skipped == {"unreadable image": 1}


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"GIF89a\x05\x00",
                                  b"plain text, not an image"])
def test_decode_reports_bad_data_as_unreadable_image(data):
    with pytest.raises(UnreadableImage):
        decode(data)


def test_a_bug_in_load_propagates_instead_of_being_counted():
    class Buggy(ImageDataset):
        def load(self, index):
            return {}["image"]  # a programming error, not bad data

    ds = Buggy(keys=["a", "b"], targets=[0, 0], classes=["c"])
    with pytest.raises(KeyError):
        ds[0]
    assert ds.skipped == {}


def test_verify_decode_catches_truncated_files_at_index_time(shapes_dir):
    good = (shapes_dir / "cross" / "cross_0000.png").read_bytes()
    (shapes_dir / "cross" / "cut.png").write_bytes(good[:60])
    with pytest.warns(UserWarning):
        ds = ImageFolder(ImageFolderConfig(root=str(shapes_dir), verify="decode"), split="train")
    assert ds.skipped == {"undecodable image": 1}


def test_image_folder_user_errors(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        ImageFolder(ImageFolderConfig(root=str(tmp_path / "missing")))
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(UserError, match="no class sub-folders"):
        ImageFolder(ImageFolderConfig(root=str(tmp_path / "flat")))


@pytest.mark.parametrize("name,builder,config,url", [
    ("cifar10", build_cifar10, CifarConfig, "cifar-10-python.tar.gz"),
    ("cifar100", build_cifar100, CifarConfig, "cifar-100-python.tar.gz"),
    ("stl10", build_stl10, STL10Config, "stl10_binary.tar.gz"),
])
def test_torchvision_readers_explain_where_to_get_missing_data(tmp_path, name, builder, config, url):
    with pytest.raises(UserError, match=url) as info:
        builder(config(root=str(tmp_path)), request=ctx("train"))
    assert str(tmp_path) in str(info.value) and "download=True" in str(info.value)


def test_cifar10_from_shared_data_when_present():
    root = SHARED_DATA / "cifar10"
    if not (root / "cifar-10-batches-py").is_dir():
        pytest.skip(f"no CIFAR-10 under {root}")
    ds = build_cifar10(CifarConfig(root=str(root)), request=ctx("test"))
    assert len(ds) == 10000 and ds[0].data.shape == (3, 32, 32) and 0 <= ds[0].labels < 10


# ---- Hugging Face datasets -------------------------------------------------------------

def _hf_dataset(tmp_path: Path, with_test: bool):
    datasets = pytest.importorskip("datasets")
    from PIL import Image
    import io

    def png(value: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.full((8, 10, 3), value, dtype=np.uint8)).save(buf, format="PNG")
        return buf.getvalue()

    features = datasets.Features({"img": datasets.Image(),
                                  "y": datasets.ClassLabel(names=["dark", "light"])})
    rows = {"img": [{"bytes": png(20 * i), "path": None} for i in range(10)], "y": [i % 2 for i in range(10)]}
    rows["img"][3] = {"bytes": b"\x89PNG\r\n\x1a\n broken", "path": None}
    train = datasets.Dataset.from_dict(rows, features=features)
    out = tmp_path / "hf"
    if with_test:
        test = datasets.Dataset.from_dict({"img": rows["img"][:4], "y": rows["y"][:4]}, features=features)
        datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(out))
    else:
        train.save_to_disk(str(out))
    return out


def test_hf_images_reads_saved_dataset_and_skips_broken_images(tmp_path):
    from cpcframe_image.data.hf_images import HFImagesConfig, build_hf_images

    path = _hf_dataset(tmp_path, with_test=True)
    cfg = HFImagesConfig(path=str(path), image_column="img", label_column="y")
    train = build_hf_images(cfg, request=ctx("train"))
    test = build_hf_images(cfg, request=ctx("test"))
    assert len(train) == 10 and len(test) == 4 and train.classes == ["dark", "light"]
    ex = train[1]
    assert ex.data.shape == (3, 8, 10) and int(ex.data[0, 0, 0]) == 20 and ex.labels == 1
    with pytest.warns(UserWarning, match="unreadable image"):
        replaced = train[3]
    assert replaced.key == "train/4" and train.skipped == {"unreadable image": 1}


def test_hf_images_holds_out_a_share_without_test_split(tmp_path):
    from cpcframe_image.data.hf_images import HFImagesConfig, build_hf_images

    path = _hf_dataset(tmp_path, with_test=False)
    cfg = HFImagesConfig(path=str(path), image_column="img", label_column="y", test_fraction=0.2)
    train = build_hf_images(cfg, request=ctx("train"))
    test = build_hf_images(cfg, request=ctx("test"))
    assert len(train) + len(test) == 10 and len(test) == 2
    assert not set(train.keys) & set(test.keys)
    with pytest.raises(UserError, match="not an image column"):
        build_hf_images(HFImagesConfig(path=str(path), image_column="y", label_column=""), request=ctx("train"))
    with pytest.raises(UserError, match="cannot"):
        build_hf_images(HFImagesConfig(path=str(tmp_path / "nothing-here")), request=ctx("train"))
