"""``shards``: a dataset source that reads a sharded corpus (any modality) written by
``cpcframe shard``, from a folder or a URL (:mod:`cpcframe.shards.location`).

Items are read shard by shard: a loader worker reads a whole shard when it first needs
one of its items and keeps at most ``cache_shards`` of them (least recently used first
out), so memory is bounded by ``cache_shards x shard size x workers`` whatever the corpus
size. A shard that is missing, truncated, does not match its index entry or cannot be
fetched is skipped and counted (``skipped``), its items replaced by the next readable
shard's, and never tried again by that process. A location that cannot be reached, an
index that does not match its shards, or a corpus none of whose shards can be read, is a
:class:`cpcframe.UserError`.
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
from cpcframe.shards.location import Location, LocationError

#: Skip reasons (``skipped``, the run's skipped-items file).
MISSING, UNREADABLE, MISMATCH, UNREACHABLE = ("missing shard", "unreadable shard",
                                              "shard not matching its index", "unreachable shard")
#: Remote shards failing in a row (not missing: no answer) before the location counts as down.
DOWN_AFTER = 3


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
        timeout: seconds one read of a remote location (a URL, ``s3://``, ``pipe:``) may take.
        retries: retries of a transient HTTP failure (curl's ``--retry``).
    """

    root: str = ""
    cache_shards: int = attrs.field(default=2, validator=validators.positive)
    test_fraction: float = attrs.field(default=0.0, validator=validators.probability)
    streams: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    timeout: float = attrs.field(default=120.0, validator=validators.positive)
    retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))


def read_shard(source: bytes | Path) -> dict[str, bytes]:
    """``key -> payload`` of every item of one tar shard (plain tar, as WebDataset writes),
    from its bytes or its file."""
    out: dict[str, bytes] = {}
    opened = tarfile.open(fileobj=io.BytesIO(source), mode="r") if isinstance(source, bytes) else \
        tarfile.open(source, mode="r")
    with opened as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".pth"):
                out[member.name[:-4]] = tar.extractfile(member).read()
    return out


class ShardDataset(Dataset):
    """Items of the shards ``entries`` of a corpus; ``self.shard_items`` for the sampler.

    Attributes:
        keys, groups: per item; shard_items: items per shard, in order.
    """

    def __init__(self, root: Location | str, entries: list[dict], cache_shards: int = 2,
                 skipped: dict[str, int] | None = None, test_split_available: bool = False,
                 attributes: dict | None = None, streams: int = 0, missing: set[int] | frozenset = frozenset()):
        self.location = root if isinstance(root, Location) else Location(str(root))
        self.root = self.location.root
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
        self._cache: OrderedDict[int, dict[str, bytes]] = OrderedDict()
        self._bad: set[int] = set()  # shards this process found unreadable: not tried again
        self._down = 0  # remote shards in a row that got no answer
        for k in sorted(missing):  # found missing when the corpus was opened
            self._skip(k, MISSING)
        # What the modality's probes read (the speech probe: lengths, speakers, labels).
        attributes = attributes or {}
        self.lengths = np.asarray([n for e in entries for n in e.get("lengths", [0] * e["items"])], np.int64)
        self._labelled = [b for e in entries for b in e.get("labelled", [True] * e["items"])]
        names = attributes.get("group_names")
        self.speaker_ids = names if names else [str(g) for g in range(max(self.groups, default=-1) + 1)]
        if attributes.get("sample_rate"):
            self.sample_rate = int(attributes["sample_rate"])
        if attributes.get("label_hop"):  # labels that are frames of the data: shards of shards cut them too
            self.label_hop = int(attributes["label_hop"])

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

    def _skip(self, k: int, reason: str) -> None:
        self._bad.add(k)
        name = self.entries[k]["name"]
        if name not in {key for key, _ in self.skipped_items}:
            self.skipped[reason] = self.skipped.get(reason, 0) + 1
            self.skipped_items.append((name, reason))

    def _read(self, k: int) -> tuple[dict[str, bytes] | None, str]:
        """Shard ``k``'s items, or ``None`` and the reason it is skipped."""
        entry = self.entries[k]
        try:
            if self.location.remote:
                payload: bytes | Path = self.location.read(entry["name"])
                size = len(payload)
            else:  # read member by member from the file: no second copy of the shard in memory
                payload = self.location.path(entry["name"])
                size = payload.stat().st_size
        except FileNotFoundError:
            return None, MISSING
        except LocationError as exc:
            if exc.missing:
                return None, MISSING
            self._down += 1
            if self._down >= DOWN_AFTER:
                raise UserError(f"shards location {self.root} is not reachable ({DOWN_AFTER} shards in a row "
                                f"failed; the last: {exc})") from None
            return None, UNREACHABLE
        except OSError:
            return None, UNREADABLE
        self._down = 0
        try:
            items = read_shard(payload)
        except FileNotFoundError:  # removed since it was found
            return None, MISSING
        except (tarfile.TarError, OSError, EOFError, ValueError):
            return None, UNREADABLE
        if set(items) != {safe_key(key) for key in entry["keys"]}:
            # cut short at a member boundary, or a shard rewritten after the index
            truncated = size < entry.get("bytes", 0) and set(items) < {safe_key(x) for x in entry["keys"]}
            return None, UNREADABLE if truncated else MISMATCH
        return items, ""

    def _shard(self, k: int) -> dict[str, bytes] | None:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        if k in self._bad:
            return None
        # Make room first: reading the next shard while keeping all others would hold
        # cache_shards + 1 shards at each change of shard (the peak, not the budget).
        while len(self._cache) >= self.cache_shards:
            self._cache.popitem(last=False)
        items, reason = self._read(k)
        if items is None:
            self._skip(k, reason)
            return None
        self._cache[k] = items
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
        reasons = ", ".join(f"{r}: {n}" for r, n in self.skipped.items() if r in (MISSING, UNREADABLE, MISMATCH,
                                                                                   UNREACHABLE))
        raise UserError(f"no shard of {self.root} can be read ({reasons})")


def local_problems(location: Location, entries: list[dict]) -> set[int]:
    """Shards of a local corpus that are not there (``stat`` only, no read); a
    :class:`UserError` when none is there, or when no shard has its index's size (an
    index of another corpus, or shards rewritten after it)."""
    missing, sizes = set(), []
    for k, entry in enumerate(entries):
        try:
            sizes.append((location.path(entry["name"]).stat().st_size, entry.get("bytes")))
        except FileNotFoundError:
            missing.add(k)
    if entries and len(missing) == len(entries):
        raise UserError(f"shards location {location}: none of the {len(entries)} shards of its index.json is "
                        f"there (the first: {entries[0]['name']})")
    if sizes and all(b is not None and size != b for size, b in sizes):
        raise UserError(f"{location}: index.json does not match its shards (no shard has the size the index "
                        "records: all truncated, or rewritten after the index): write it again with cpcframe shard")
    return missing


def build_shards(config: ShardsConfig, *, request: DatasetRequest) -> ShardDataset:
    """A sharded corpus (written by ``cpcframe shard``), read shard by shard."""
    if not config.root:
        raise UserError("data.dataset.root: the folder or URL of a sharded corpus (written by cpcframe shard)")
    location = Location(config.root, timeout=config.timeout, retries=config.retries)
    index = read_index(location)
    entries = [e for e in index["shards"] if e["items"] > 0]
    names = [e["name"] for e in entries]
    held = set(hold_out(names, config.test_fraction)) if config.test_fraction > 0 else set()
    if request.split == "test":
        if not held:
            raise UserError("shards: no test split (set data.dataset.test_fraction > 0)")
        chosen = [e for i, e in enumerate(entries) if i in held]
    else:
        chosen = [e for i, e in enumerate(entries) if i not in held]
    missing = set() if location.remote else local_problems(location, chosen)
    return ShardDataset(location, chosen, config.cache_shards, skipped=index.get("skipped"),
                        test_split_available=bool(held), attributes=index.get("attributes"),
                        streams=config.streams, missing=missing)
