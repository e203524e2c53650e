"""The ``Dataset`` interface: a map-style corpus of :class:`cpcframe.Example`.

A dataset factory (``register_datasets``) returns one for a :class:`cpcframe.DatasetRequest`
(which split, where to cache, the run's seed). The trainer, validation and probes read a
dataset only through the members below, so a plugin's dataset is complete when it
implements ``__len__`` and ``__getitem__`` and sets what applies of the rest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from torch.utils.data import Dataset as TorchDataset

from cpcframe.batch import Example

if TYPE_CHECKING:
    from cpcframe.model import ContrastiveModel


class Dataset(TorchDataset, ABC):
    """A map-style dataset of :class:`cpcframe.Example`.

    Attributes:
        groups: one group id per item (a speaker, a class, a document source), used by
            grouped batching (``data.group_size``) and the ``same_group`` negative policy;
            ``None`` puts every item in group 0.
        skipped: reason -> count of items that could not be used (an unreadable file, a
            recording shorter than a view). A corrupt item is skipped and counted, never
            fatal; the run reports the counts.
        test_split_available: whether ``split="test"`` gives held-out items of this corpus
            (validation during training, probes); when ``False``, probes hold out a share
            of the training split themselves.
    """

    groups: Sequence[int] | None = None
    skipped: Mapping[str, int] = MappingProxyType({})
    test_split_available: ClassVar[bool] | bool = False

    @abstractmethod
    def __len__(self) -> int:
        """Number of usable items."""

    @abstractmethod
    def __getitem__(self, index: int) -> Example:
        """Item ``index`` (``0 <= index < len(self)``)."""

    def check_model(self, model: "ContrastiveModel") -> None:
        """Raise :class:`cpcframe.UserError` when ``model`` cannot train on this data (a
        vocabulary larger than the encoder's embedding table); called before training."""
