"""The ``Dataset`` interface: a map-style corpus of :class:`cpcframe.Example`.

A dataset factory (``register_datasets``) is called as ``factory(config, *, request)``
with a :class:`cpcframe.DatasetRequest` (which split, where to cache, the run's seed, the
view sampler's minimum length) and returns a :class:`Dataset`. The trainer, validation
and probes read a dataset only through the members below, so a plugin's dataset is
complete when it implements ``__len__`` and ``__getitem__`` and sets what applies of the
rest; the class attributes are the defaults.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from torch.utils.data import Dataset as TorchDataset

from cpcframe.batch import Example

if TYPE_CHECKING:
    from cpcframe.model import ContrastiveModel


class Dataset(TorchDataset, ABC):
    """A map-style dataset of :class:`cpcframe.Example`.

    Indices come from the core's step-indexed batch sampler (a batch is a function of
    seed and step, which makes resuming exact), so iterable datasets are not supported.
    ``__getitem__`` runs every step in loader workers: decode once (into a cache under
    ``request.cache_dir``), then slice.

    Attributes:
        groups: ``len(self)`` integer group ids, one per item (a speaker, a subject, a
            document), used by grouped batching (``data.group_size``) and the
            ``same_group`` negative policy; ``None`` (the default) puts every item in
            group 0. Item ``i``'s ``Example.group`` should equal ``groups[i]``.
        skipped: reason -> count of items that could not be used (an unreadable file, a
            recording shorter than ``request.min_length``). A corrupt item is skipped
            and counted, never fatal; ``cpcframe run`` reports the counts, and an empty
            dataset is reported with them. Empty by default.
        skipped_items: ``(key, reason)`` of each skipped item the dataset can name (a
            file's path, an utterance id), in the order skipped; ``cpcframe run`` writes
            them all to the run directory. Items counted in ``skipped`` but not named
            here are listed there by count. Empty by default.
        test_split_available: whether ``split="test"`` gives held-out items of this
            corpus (its own test split, or a share it holds out by key hash); ``False``
            (the default) when the test split would repeat the training items, so probes
            hold out a share of the training split themselves.
        label_hop: samples along the data's last axis that one entry of ``labels`` (its
            last axis) covers: 160 for the audio datasets' 10 ms phone frames at 16 kHz.
            ``cpcframe shard --segment`` cuts a long item's labels with its data: piece
            boundaries snap to multiples of the hop and piece ``[a, b)`` gets labels
            ``[a // hop, b // hop)``. ``None`` (the default): labels are not per-sample
            frames, and cut pieces carry none.
    """

    groups: Sequence[int] | None = None
    label_hop: int | None = None
    skipped: Mapping[str, int] = MappingProxyType({})
    skipped_items: Sequence[tuple[str, str]] = ()
    test_split_available: bool = False

    @abstractmethod
    def __len__(self) -> int:
        """Number of usable items."""

    @abstractmethod
    def __getitem__(self, index: int) -> Example:
        """Item ``index`` (``0 <= index < len(self)``) as an :class:`~cpcframe.Example`."""

    def check_model(self, model: "ContrastiveModel") -> None:
        """Raise :class:`cpcframe.UserError` when ``model`` cannot train on this data (a
        vocabulary larger than the encoder's embedding table); called before training.
        The default accepts every model."""

    def describe(self) -> str:
        """One line saying what was loaded, printed when a run starts (``cpcframe run``):
        by default the items, groups and skipped items; a plugin adds what its field
        counts (utterances, speakers, hours, label classes)."""
        parts = [f"{len(self)} items"]
        if self.groups is not None:
            parts.append(f"{len(set(self.groups))} groups")
        return ", ".join(parts) + describe_skipped(self.skipped)


def describe_skipped(skipped: Mapping[str, int]) -> str:
    """``"; skipped 3 (too_short: 2, unreadable: 1)"``, or ``""`` when nothing was."""
    total = sum(skipped.values())
    if not total:
        return ""
    return f"; skipped {total} ({', '.join(f'{k}: {v}' for k, v in skipped.items() if v)})"


class DatasetAdapter(Dataset):
    """A :class:`Dataset` face on a third-party map-style dataset that does not subclass
    it (deprecated): the optional members are read here, with their defaults, so the
    rest of the core reads ``dataset.groups`` and friends directly. Other attributes
    (``keys``, ``targets``, ...) are those of the wrapped dataset.

    Attributes:
        dataset: the wrapped object (with ``__len__`` and ``__getitem__``).
    """

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Example:
        return self.dataset[index]

    # Properties, not copies: a dataset may count skipped items as it reads them.
    @property  # type: ignore[override]
    def groups(self) -> Sequence[int] | None:
        return getattr(self.dataset, "groups", None)

    @property  # type: ignore[override]
    def skipped(self) -> Mapping[str, int]:
        return getattr(self.dataset, "skipped", None) or {}

    @property  # type: ignore[override]
    def skipped_items(self) -> Sequence[tuple[str, str]]:
        return getattr(self.dataset, "skipped_items", None) or ()

    @property  # type: ignore[override]
    def test_split_available(self) -> bool:
        return bool(getattr(self.dataset, "test_split_available", False))

    @property  # type: ignore[override]
    def label_hop(self) -> int | None:
        return getattr(self.dataset, "label_hop", None)

    def check_model(self, model: "ContrastiveModel") -> None:
        check = getattr(self.dataset, "check_model", None)
        if check is not None:
            check(model)

    def describe(self) -> str:
        describe = getattr(self.dataset, "describe", None)
        return describe() if callable(describe) else Dataset.describe(self)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"DatasetAdapter({self.dataset!r})"
