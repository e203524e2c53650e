"""``cifar10``, ``cifar100`` and ``stl10`` over local copies in the real on-disk formats.

The files are written here, tiny, in the exact layouts the datasets ship in (pickled
CIFAR batches; STL-10's raw binaries); only torchvision's MD5 checks are switched off,
since tiny files cannot match the published checksums.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from cpcframe import DatasetRequest

tvd = pytest.importorskip("torchvision.datasets")

from cpcframe_image.data.torchvision_readers import (CifarConfig, STL10Config, build_cifar10,  # noqa: E402
                                        build_cifar100, build_stl10)


def ctx(split: str, tmp: Path) -> DatasetRequest:
    return DatasetRequest(split=split, cache_dir=tmp, seed=0)


@pytest.fixture
def no_checksums(monkeypatch):
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(tvd.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvd.STL10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)


def cifar_images(n: int, first: int) -> np.ndarray:
    """``(n, 3072)`` rows as CIFAR stores them (R plane, G plane, B plane); image ``i`` is
    filled with ``first + i`` in R, so the reader's reshaping can be checked."""
    rows = np.zeros((n, 3, 32, 32), dtype=np.uint8)
    rows[:, 0] = (first + np.arange(n))[:, None, None]
    rows[:, 2, 0, 1] = 200  # one blue pixel at row 0, column 1: checks H/W are not swapped
    return rows.reshape(n, 3072)


def write_cifar(root: Path, hundred: bool) -> None:
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    label_key = "fine_labels" if hundred else "labels"
    batches = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    for b, name in enumerate(batches):
        data = cifar_images(2, 10 * b)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, label_key: [b % 10, (b + 1) % 10]}, f)
    with open(folder / ("test" if hundred else "test_batch"), "wb") as f:
        pickle.dump({"data": cifar_images(3, 100), label_key: [7, 8, 9]}, f)
    meta_key = "fine_label_names" if hundred else "label_names"
    names = [f"class{i}" for i in range(100 if hundred else 10)]
    with open(folder / ("meta" if hundred else "batches.meta"), "wb") as f:
        pickle.dump({meta_key: names}, f)


def test_cifar10_reads_every_batch_in_image_layout(tmp_path, no_checksums):
    write_cifar(tmp_path, hundred=False)
    train = build_cifar10(CifarConfig(root=str(tmp_path)), request=ctx("train", tmp_path))
    assert len(train) == 10
    first = train[0]
    assert first.data.shape == (3, 32, 32) and str(first.data.dtype) == "torch.uint8"
    assert int(first.data[0, 5, 5]) == 0 and int(train[3].data[0, 5, 5]) == 11  # batch 2, image 2
    assert int(first.data[2, 0, 1]) == 200 and int(first.data[2, 1, 0]) == 0
    assert [train[i].labels for i in range(4)] == [0, 1, 1, 2]
    test = build_cifar10(CifarConfig(root=str(tmp_path / "cifar-10-batches-py")),
                         request=ctx("test", tmp_path))  # the inner folder works as root too
    assert len(test) == 3 and [test[i].labels for i in range(3)] == [7, 8, 9]
    assert int(test[2].data[0, 0, 0]) == 102


def test_cifar100_uses_fine_labels(tmp_path, no_checksums):
    write_cifar(tmp_path, hundred=True)
    train = build_cifar100(CifarConfig(root=str(tmp_path)), request=ctx("train", tmp_path))
    test = build_cifar100(CifarConfig(root=str(tmp_path)), request=ctx("test", tmp_path))
    assert len(train) == 2 and len(test) == 3 and test[0].labels == 7


def write_stl10(root: Path) -> None:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)

    def images(values: list[int]) -> np.ndarray:
        # STL-10 stores each image channel-major and column-major: (N, 3, W, H).
        x = np.zeros((len(values), 3, 96, 96), dtype=np.uint8)
        x[:, 0] = np.asarray(values, dtype=np.uint8)[:, None, None]
        x[:, 1, 2, 0] = 255  # column 2, row 0 on disk -> pixel (row 0, column 2)
        return x

    images([1, 2, 3, 4]).tofile(folder / "train_X.bin")
    np.asarray([1, 2, 3, 10], dtype=np.uint8).tofile(folder / "train_y.bin")  # 1-based on disk
    images([50, 51, 52]).tofile(folder / "unlabeled_X.bin")
    images([90, 91]).tofile(folder / "test_X.bin")
    np.asarray([5, 6], dtype=np.uint8).tofile(folder / "test_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")


@pytest.mark.parametrize("train_split,count,labels", [
    ("train", 4, [0, 1, 2, 9]),
    ("train+unlabeled", 7, [0, 1, 2, 9, -1, -1, -1]),
    ("unlabeled", 3, [-1, -1, -1]),
])
def test_stl10_train_splits(tmp_path, no_checksums, train_split, count, labels):
    write_stl10(tmp_path)
    ds = build_stl10(STL10Config(root=str(tmp_path), train_split=train_split), request=ctx("train", tmp_path))
    assert len(ds) == count and [ds[i].labels for i in range(count)] == labels
    image = ds[0].data
    assert image.shape == (3, 96, 96)
    assert int(image[1, 0, 2]) == 255 and int(image[1, 2, 0]) == 0  # rows and columns in place


def test_stl10_test_split(tmp_path, no_checksums):
    write_stl10(tmp_path)
    ds = build_stl10(STL10Config(root=str(tmp_path)), request=ctx("test", tmp_path))
    assert len(ds) == 2 and [ds[i].labels for i in range(2)] == [4, 5]
    assert int(ds[1].data[0, 50, 50]) == 91
