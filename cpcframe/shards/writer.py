"""Write any :class:`cpcframe.Dataset` into WebDataset tar shards (``cpcframe shard``).

Shard ``k`` holds items ``[k·n, (k+1)·n)`` of the dataset, so the plan is known before
writing: each shard is written to a temporary file and renamed (atomic), with a small
``.json`` sidecar naming its keys and groups; a re-run skips shards already complete
(resumable). ``index.json`` is written last, atomically, from the sidecars. Shards are
written by ``workers`` processes in parallel (each builds its own copy of the dataset).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from cpcframe.dataset import Dataset
from cpcframe.errors import UnusableItem
from cpcframe.runs.atomic import write_text_atomic
import torch

from cpcframe.batch import Example
from cpcframe.shards.format import FORMAT, INDEX, encode_example, safe_key, shard_name


def _webdataset():
    try:
        import webdataset
    except ImportError:
        from cpcframe.errors import UserError
        raise UserError("sharding needs WebDataset: pip install 'cpcframe[shards]'") from None
    return webdataset


def skip_reason(exc: Exception) -> str:
    """The ``skipped`` counter of an item whose read raised ``exc``: the dataset's own
    reason (:class:`cpcframe.UnusableItem`, e.g. ``unreadable`` or ``too_short``), else
    the exception's class name."""
    return exc.reason if isinstance(exc, UnusableItem) else type(exc).__name__


def segments(example: Example, segment: int, voiced: list[tuple[int, int]] | None = None,
             hop: int | None = None) -> list[Example]:
    """``example`` cut along its last axis into pieces of ``segment`` (a long recording into
    segments; the remainder shorter than ``segment`` is dropped unless it is the only
    piece), or, with ``voiced`` spans (samples), into voice-activity pieces of at most
    ``segment`` (:func:`cpcframe.shards.vad.vad_pieces`, pieces under ``segment // 10``
    dropped). Keys ``KEY/NNNN``. ``segment = 0`` or a non-tensor: unchanged.

    ``hop`` (the dataset's :attr:`~cpcframe.Dataset.label_hop`): samples per label. Piece
    boundaries then fall on multiples of it (``segment`` rounded down to one, voiced spans
    widened to them; only a piece ending at the recording's end ends elsewhere), and piece
    ``[a, b)`` keeps labels ``[a // hop, b // hop)`` (clipped to the labels' length). Without
    a hop, pieces carry no labels (``None``): their unit is unknown."""
    data = example.data
    if segment <= 0 or not isinstance(data, torch.Tensor):
        return [example]
    if hop:
        segment = max(hop, segment - segment % hop)
    if voiced is not None:
        from cpcframe.shards.vad import vad_pieces

        if hop:
            voiced = [(a - a % hop, -(-b // hop) * hop) for a, b in voiced]
        ranges = vad_pieces(voiced, data.shape[-1], segment, max(1, segment // 10))
    elif data.shape[-1] < 2 * segment:
        return [example]
    else:
        ranges = [(i * segment, (i + 1) * segment) for i in range(data.shape[-1] // segment)]
    labels = example.labels if hop and isinstance(example.labels, torch.Tensor) else None

    def cut(a: int, b: int) -> torch.Tensor | None:
        piece = None if labels is None else labels[..., a // hop:b // hop]
        return None if piece is None or piece.shape[-1] == 0 else piece.clone()  # past the labels' end: none

    return [Example(data[..., a:b].clone(), group=example.group, key=f"{example.key}/{i:04d}", labels=cut(a, b))
            for i, (a, b) in enumerate(ranges)]


def write_shard(dataset: Dataset, out: Path, k: int, lo: int, hi: int, segment: int = 0,
                voice_activity: dict[str, str] | None = None) -> dict[str, Any]:
    """Write items ``lo..hi-1`` (each cut into :func:`segments`, at its voice-activity
    spans when ``voice_activity`` maps its key to a JSON file, its labels cut with it when
    the dataset has a ``label_hop``) as shard ``k`` (atomically); returns its index entry."""
    wds = _webdataset()
    final = out / shard_name(k)
    sidecar = final.with_suffix(".json")
    if final.is_file() and sidecar.is_file():
        entry = json.loads(sidecar.read_text())
        if entry.get("bytes") == final.stat().st_size:
            return entry  # done by an earlier run
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    keys, groups, lengths, labelled, skipped, vad_cut = [], [], [], [], {}, 0
    hop = getattr(dataset, "label_hop", None)
    with open(tmp, "wb") as stream:
        with wds.TarWriter(stream) as sink:
            for i in range(lo, hi):
                try:
                    example = dataset[i]
                except (UnusableItem, OSError, ValueError, RuntimeError) as exc:  # a corrupt item: counted
                    reason = skip_reason(exc)
                    skipped[reason] = skipped.get(reason, 0) + 1
                    continue
                if not example.key:
                    example = Example(example.data, example.group, f"item-{i}", example.labels)
                voiced = None
                if segment > 0 and voice_activity and example.key in voice_activity:
                    from cpcframe.shards.vad import voiced_spans

                    rate = int(getattr(dataset, "sample_rate", None) or 16000)
                    voiced = voiced_spans(voice_activity[example.key], rate)
                    vad_cut += voiced is not None
                for piece in segments(example, segment, voiced, hop):
                    # WebDataset splits member names at the first dot: keep keys dot-free.
                    sink.write({"__key__": safe_key(piece.key), "pth": encode_example(piece)})
                    keys.append(piece.key)
                    groups.append(int(piece.group))
                    data = piece.data
                    lengths.append(int(data.shape[-1]) if hasattr(data, "shape") else len(data))
                    labelled.append(piece.labels is not None)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, final)
    entry = {"name": final.name, "items": len(keys), "bytes": final.stat().st_size,
             "keys": keys, "groups": groups, "lengths": lengths, "labelled": labelled, "skipped": skipped,
             "vad_cut": vad_cut}
    write_text_atomic(sidecar, json.dumps(entry))
    return entry


_WORKER: dict[str, Any] = {}


def _init_worker(make_dataset: Callable[[], Dataset], voice_activity: dict[str, str] | None) -> None:
    _WORKER["dataset"] = make_dataset()
    _WORKER["vad"] = voice_activity


def _write_in_worker(out: Path, k: int, lo: int, hi: int, segment: int) -> dict[str, Any]:
    return write_shard(_WORKER["dataset"], out, k, lo, hi, segment, _WORKER["vad"])


def write_shards(make_dataset: Callable[[], Dataset], out: Path, *, shard_items: int, workers: int = 1,
                 segment: int = 0, voice_activity: dict[str, str] | None = None,
                 source: dict[str, Any] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Shard the dataset ``make_dataset()`` builds into ``out``; returns the index.

    ``make_dataset`` is picklable (a top-level function or a ``functools.partial``) when
    ``workers > 1``; ``shard_items`` source items per shard, each cut into pieces of
    ``segment`` along its last axis (0 = whole items), at voice-activity spans for the
    keys ``voice_activity`` maps to a JSON file (:func:`cpcframe.shards.vad.find_voice_activity`).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = make_dataset()
    n = len(dataset)
    plan = [(k, lo, min(lo + shard_items, n)) for k, lo in enumerate(range(0, n, shard_items))]
    entries: list[dict[str, Any]] = []
    if workers <= 1:
        for done, (k, lo, hi) in enumerate(plan):
            entries.append(write_shard(dataset, out, k, lo, hi, segment, voice_activity))
            if progress:
                progress(done + 1, len(plan))
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(make_dataset, voice_activity)) as pool:
            futures = [pool.submit(_write_in_worker, out, k, lo, hi, segment) for k, lo, hi in plan]
            for done, future in enumerate(futures):
                entries.append(future.result())
                if progress:
                    progress(done + 1, len(plan))
    skipped: dict[str, int] = dict(getattr(dataset, "skipped", None) or {})
    for entry in entries:
        for reason, count in entry.get("skipped", {}).items():
            skipped[reason] = skipped.get(reason, 0) + count
    # What probes read besides the items: group names (speaker ids), the sample rate.
    names = getattr(dataset, "speaker_ids", None)
    attributes = {"group_names": [str(n) for n in names] if names is not None else None,
                  "sample_rate": getattr(dataset, "sample_rate", None),
                  "label_hop": getattr(dataset, "label_hop", None)}
    index = {"format": FORMAT, "source": source or {}, "attributes": attributes,
             "items": sum(e["items"] for e in entries),
             "vad_cut": sum(e.get("vad_cut", 0) for e in entries),
             "skipped": skipped, "shards": entries}
    write_text_atomic(out / INDEX, json.dumps(index))
    return index
