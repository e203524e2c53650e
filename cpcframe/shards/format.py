"""The on-disk layout of a sharded corpus, and how one item is encoded.

A corpus folder holds WebDataset tar shards ``shard-000000.tar`` ... and ``index.json``::

    {"format": 1, "source": {...}, "shards": [{"name", "items", "bytes", "groups", "keys"}], ...}

Each tar member group is one item: ``KEY.pth`` (``torch.save`` of ``{"data", "group",
"labels"}``: any modality's tensors or lists, read back with ``weights_only=True``).
"""

from __future__ import annotations

import io
import json
from typing import Any

import torch

from cpcframe.batch import Example
from cpcframe.errors import UserError

FORMAT = 1
INDEX = "index.json"


def shard_name(k: int) -> str:
    return f"shard-{k:06d}.tar"


def safe_key(key: str) -> str:
    """A tar member stem WebDataset reads back whole (it splits names at the first dot)."""
    return key.replace(".", "_")


def encode_example(example: Example) -> bytes:
    buffer = io.BytesIO()
    torch.save({"data": example.data, "group": int(example.group), "labels": example.labels}, buffer)
    return buffer.getvalue()


def decode_example(key: str, payload: bytes) -> Example:
    item = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    return Example(item["data"], group=int(item["group"]), key=key, labels=item["labels"])


def read_index(location: Any) -> dict[str, Any]:
    """The corpus's ``index.json``, checked; a clear :class:`UserError` otherwise.

    ``location``: a folder (``Path`` or ``str``) or a
    :class:`~cpcframe.shards.location.Location`."""
    from cpcframe.shards.location import Location, LocationError

    if not isinstance(location, Location):
        location = Location(str(location))
    where = f"{location.root.rstrip('/')}/{INDEX}"
    if not location.remote and not location.path("").is_dir():
        raise UserError(f"shards location {location} does not exist or is not reachable")
    try:
        index = json.loads(location.read(INDEX))
    except FileNotFoundError:
        raise UserError(f"{location} has no {INDEX}: not a sharded corpus (write one with cpcframe shard)") from None
    except LocationError as exc:
        if exc.missing:
            raise UserError(f"{location} has no {INDEX} ({exc}): not a sharded corpus, or the wrong "
                            "location") from None
        raise UserError(f"shards location {location} is not reachable: {exc}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read shard index {where}: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("shards"), list):
        raise UserError(f"{where} is not a cpcframe shard index (format {FORMAT})")
    for entry in index["shards"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("items"), int):
            raise UserError(f"{where}: a shard entry without its item count: {str(entry)[:80]}")
        if len(entry.get("keys", ())) != entry.get("items") or len(entry.get("groups", ())) != entry.get("items"):
            raise UserError(f"{where}: the entry of {entry.get('name')} does not match its item count")
    return index
