"""``shards``: a dataset source that reads a sharded corpus (any modality) written by
``cpcframe shard``.

Items are read shard by shard: a loader worker decodes a whole shard when it first needs
one of its items and keeps at most ``cache_shards`` decoded shards (least recently used
first out), so memory is bounded by ``cache_shards x shard size x workers`` whatever the
corpus size. A missing or truncated shard is skipped and counted (``skipped``), its
items replaced by the next readable shard's; a corpus whose shards are all unreadable,
or an index that does not match, is a :class:`cpcframe.UserError`.
"""

from __future__ import annotations

import io
import tarfile
from collections import OrderedDict
from pathlib import Path

import attrs
import numpy as np

from cpcframe import validators
from cpcframe.batch import Example
from cpcframe.data.request import DatasetRequest
from cpcframe.data.splits import hold_out
from cpcframe.dataset import Dataset
from cpcframe.errors import UserError
from cpcframe.shards.format import decode_example, read_index, safe_key


@attrs.frozen
class ShardsConfig:
    """Options of ``shards``.

    Attributes:
        root: the corpus folder (``index.json`` and ``shard-*.tar``).
        cache_shards: decoded shards each process keeps in memory.
        test_fraction: share of shards held out (by name hash) as the ``test`` split.
        streams: virtual reading streams (0 = the number of processes). Set it to a
            number every process count you may resume on divides (e.g. 8 or 64): the
            order is then the same on any of them (see :mod:`cpcframe.shards.sampler`).
    """

    root: str = ""
    cache_shards: int = attrs.field(default=2, validator=validators.positive)
    test_fraction: float = attrs.field(default=0.0, validator=validators.probability)
    streams: int = attrs.field(default=0, validator=attrs.validators.ge(0))


def read_shard(path: Path) -> dict[str, bytes]:
    """``key -> payload`` of every item of one tar shard (plain tar, as WebDataset writes)."""
    out: dict[str, bytes] = {}
    with tarfile.open(path, "r") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".pth"):
                out[member.name[:-4]] = tar.extractfile(member).read()
    return out


class ShardDataset(Dataset):
    """Items of the shards ``entries`` of a corpus; ``self.shard_items`` for the sampler.

    Attributes:
        keys, groups: per item; shard_items: items per shard, in order.
    """

    def __init__(self, root: Path, entries: list[dict], cache_shards: int = 2,
                 skipped: dict[str, int] | None = None, test_split_available: bool = False,
                 attributes: dict | None = None, streams: int = 0):
        self.root = Path(root)
        self.streams = streams
        self.entries = entries
        self.cache_shards = cache_shards
        self.keys = [k for e in entries for k in e["keys"]]
        self.groups = [g for e in entries for g in e["groups"]]
        self.shard_items = [e["items"] for e in entries]
        self._shard_of = np.repeat(np.arange(len(entries)), self.shard_items)
        self._first = np.concatenate([[0], np.cumsum(self.shard_items)[:-1]]).astype(np.int64)
        self.skipped = dict(skipped or {})
        self.skipped_items: list[tuple[str, str]] = []
        self.test_split_available = test_split_available
        self._cache: OrderedDict[int, dict[str, bytes] | None] = OrderedDict()
        # What the modality's probes read (the speech probe: lengths, speakers, labels).
        attributes = attributes or {}
        self.lengths = np.asarray([n for e in entries for n in e.get("lengths", [0] * e["items"])], np.int64)
        self._labelled = [b for e in entries for b in e.get("labelled", [True] * e["items"])]
        names = attributes.get("group_names")
        self.speaker_ids = names if names else [str(g) for g in range(max(self.groups, default=-1) + 1)]
        if attributes.get("sample_rate"):
            self.sample_rate = int(attributes["sample_rate"])

    def has_labels(self, i: int) -> bool:
        return bool(self._labelled[int(i)])

    def labels(self, i: int):
        return self[i].labels

    def waveform(self, i: int):
        """Item ``i``'s data as float32 (a ``(1, S)`` waveform for audio)."""
        return self[i].data.float()

    def __len__(self) -> int:
        return len(self.keys)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # each worker decodes its own shards
        return state

    def _shard(self, k: int) -> dict[str, bytes] | None:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        name = self.entries[k]["name"]
        try:
            items = read_shard(self.root / name)
            if len(items) != self.entries[k]["items"]:
                raise ValueError(f"{len(items)} items, the index says {self.entries[k]['items']}")
        except (OSError, tarfile.TarError, ValueError, EOFError) as exc:
            reason = "missing shard" if isinstance(exc, FileNotFoundError) else "unreadable shard"
            if name not in {key for key, _ in self.skipped_items}:
                self.skipped[reason] = self.skipped.get(reason, 0) + 1
                self.skipped_items.append((name, reason))
            items = None
        self._cache[k] = items
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return items

    def __getitem__(self, index: int) -> Example:
        index = int(index)
        for hop in range(len(self.entries)):  # an unreadable shard: the next shard's item instead
            k = (int(self._shard_of[index]) + hop) % len(self.entries)
            items = self._shard(k)
            if items is not None:
                entry = self.entries[k]
                within = (index - int(self._first[int(self._shard_of[index])])) % entry["items"]
                key = entry["keys"][within]
                return decode_example(key, items[safe_key(key)])
        raise UserError(f"no shard of {self.root} can be read (see the skipped shards)")


def build_shards(config: ShardsConfig, *, request: DatasetRequest) -> ShardDataset:
    """A sharded corpus (written by ``cpcframe shard``), read shard by shard."""
    if not config.root:
        raise UserError("data.dataset.root: the folder of a sharded corpus (written by cpcframe shard)")
    root = Path(config.root).expanduser()
    index = read_index(root)
    entries = [e for e in index["shards"] if e["items"] > 0]
    names = [e["name"] for e in entries]
    held = set(hold_out(names, config.test_fraction)) if config.test_fraction > 0 else set()
    if request.split == "test":
        if not held:
            raise UserError("shards: no test split (set data.dataset.test_fraction > 0)")
        chosen = [e for i, e in enumerate(entries) if i in held]
    else:
        chosen = [e for i, e in enumerate(entries) if i not in held]
    return ShardDataset(root, chosen, config.cache_shards, skipped=index.get("skipped"),
                        test_split_available=bool(held), attributes=index.get("attributes"),
                        streams=config.streams)
