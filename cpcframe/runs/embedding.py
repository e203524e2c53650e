"""Features of input files from a trained model (``cpcframe embed`` and ``LoadedModel.embed``).

The recipe's view sampler reads each file into unbatched views
(:meth:`cpcframe.ViewSampler.inference_views`), views of equal shape are stacked into
batches, the encoder (``level="latent"``, z) or encoder + context model
(``level="context"``, c) runs on them, and every view's features, without the batch
axis, become one array named by the view's key: ``(T, C)`` for a sequence, ``(H, W, C)``
for a grid, and one array per scale (``key/scale``) for multi-scale encoders (AMDIM).
Sequence inputs (audio) are encoded one by one, a long one in pieces of the training
window (:mod:`cpcframe.runs.chunks`), exactly as the probes encode them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np
from torch import Tensor

from cpcframe.batch import View, stack_views
from cpcframe.encoder import Features
from cpcframe.errors import UserError
from cpcframe.runs.chunks import encode_in_chunks, encoder_hop

LEVELS = ("latent", "context")
#: What an unreadable input raises (soundfile: RuntimeError; PIL: OSError; parsing: ValueError).
READ_ERRORS = (OSError, ValueError, RuntimeError, UserError)


class Embedder(Protocol):
    """What embedding needs of a trained model (:class:`cpcframe.runs.LoadedModel` is one)."""

    run_dir: Path | None
    model: Any

    def view_sampler(self) -> Any:
        """The run's :class:`cpcframe.ViewSampler` (reads input files)."""

    def encode(self, view: View, level: str = "context") -> Features:
        """Features of a batched view, without gradient."""


@attrs.frozen
class EmbedResult:
    """What :func:`embed_files` produced.

    Attributes:
        features: key -> float32 array (no batch axis), in input order.
        sources: key -> the input file it came from.
        skipped: reason -> count of input files that could not be used.
    """

    features: dict[str, np.ndarray]
    sources: dict[str, Path]
    skipped: dict[str, int]


def _warn(message: str) -> None:
    print(f"cpcframe: warning: {message}", file=sys.stderr)


def _signature(view: View) -> Any:
    """Views with equal signatures can be stacked into one batch."""
    if isinstance(view, Tensor):
        return (tuple(view.shape), view.dtype)
    return tuple(sorted((k, tuple(t.shape), t.dtype) for k, t in view.items()))


def read_views(view_sampler: Any, paths: Sequence[str | Path], *, run_dir: Path | None = None,
               warn: Callable[[str], None] = _warn,
               skipped: dict[str, int] | None = None) -> Iterator[tuple[str, Path, View]]:
    """``(key, path, view)`` of every input; unreadable files are skipped, warned and counted.

    Raises:
        UserError: a path does not exist or is a directory, the sampler cannot read files,
            or two inputs give the same key.
    """
    skipped = {} if skipped is None else skipped
    seen: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            raise UserError(f"{path} is a directory; pass its files (e.g. {path}/*)")
        if not path.exists():
            raise UserError(f"no such input file: {path}")
        try:
            views = view_sampler.inference_views(path, run_dir=run_dir)
        except NotImplementedError:
            raise UserError(f"the run's view sampler ({type(view_sampler).__name__}) cannot read input "
                            "files: its plugin does not implement ViewSampler.inference_views") from None
        except READ_ERRORS as exc:
            warn(f"skipping {path}: {exc}")
            skipped["unreadable"] = skipped.get("unreadable", 0) + 1
            continue
        if not views:
            warn(f"skipping {path}: nothing to embed in it")
            skipped["empty"] = skipped.get("empty", 0) + 1
            continue
        for key, view in views:
            if key in seen:
                raise UserError(f"inputs {seen[key]} and {path} both give the key {key!r}; "
                                "rename one of them or embed them separately")
            seen[key] = path
            yield key, path, view


def _batches(items: Iterable[tuple[str, Path, View]], batch_size: int
             ) -> Iterator[list[tuple[str, Path, View]]]:
    """Consecutive items of equal view shape, at most ``batch_size`` at a time."""
    batch: list[tuple[str, Path, View]] = []
    for item in items:
        if batch and (len(batch) == batch_size or _signature(item[2]) != _signature(batch[0][2])):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _unbatch(features: Any, n: int) -> list[dict[str, np.ndarray]]:
    """Per item: ``{"": array}`` for a tensor, ``{scale: array}`` for a mapping of scales."""
    maps = {"": features} if isinstance(features, Tensor) else dict(features)
    out: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
    for scale, tensor in maps.items():
        array = tensor.detach().float().cpu().numpy()
        for i in range(n):
            out[i][scale] = np.ascontiguousarray(array[i])
    return out


def resolve_chunk(sampler: Any, chunk: int | None) -> int | None:
    """The piece length long inputs are encoded in: ``chunk`` when given, else the view
    sampler's :meth:`~cpcframe.ViewSampler.inference_chunk`; ``None`` = inputs that are
    not cut (images, texts).

    Raises:
        UserError: a negative ``chunk``, or a ``chunk`` for inputs that cannot be cut.
    """
    default = sampler.inference_chunk() if hasattr(sampler, "inference_chunk") else None
    if chunk is None:
        return default
    if chunk < 0:
        raise UserError(f"chunk must be >= 0 (0 = whole inputs), got {chunk}")
    if default is None:
        raise UserError(f"the run's view sampler ({type(sampler).__name__}) does not give sequences that "
                        "can be cut; --chunk applies to sequence inputs such as audio")
    return chunk


def embed_files(loaded: Embedder, paths: Sequence[str | Path], *, level: str = "context",
                batch_size: int = 16, chunk: int | None = None,
                warn: Callable[[str], None] = _warn) -> EmbedResult:
    """Features of every input file (see the module docstring).

    Args:
        chunk: for sequence inputs (audio), positions per encoded piece of a long input
            (:func:`cpcframe.encode_in_chunks`, as the probes encode); ``None`` = the view
            sampler's default (the training window for audio), ``0`` = whole inputs.

    Raises:
        UserError: a bad ``level``, ``batch_size`` or ``chunk``, a missing input, a sampler
            that cannot read files, duplicate keys, or no usable input at all.
    """
    if level not in LEVELS:
        raise UserError(f"level must be one of {LEVELS}, got {level!r}")
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    sampler = loaded.view_sampler()
    pieces = resolve_chunk(sampler, chunk)
    skipped: dict[str, int] = {}
    features: dict[str, np.ndarray] = {}
    sources: dict[str, Path] = {}
    items = read_views(sampler, paths, run_dir=loaded.run_dir, warn=warn, skipped=skipped)
    if pieces is not None:  # sequences: one at a time, each cut into pieces encoded as a batch
        hop = encoder_hop(loaded.model)
        for key, path, view in items:
            frames = encode_in_chunks(lambda piece: loaded.encode(piece, level=level), view, hop=hop,
                                      chunk=pieces, batch_size=batch_size)
            features[key], sources[key] = frames.numpy(), path
    else:
        for batch in _batches(items, batch_size):
            stacked = stack_views([view for _, _, view in batch])
            per_item = _unbatch(loaded.encode(stacked, level=level), len(batch))
            for (key, path, _), maps in zip(batch, per_item):
                for scale, array in maps.items():
                    name = f"{key}/{scale}" if scale else key
                    features[name] = array
                    sources[name] = path
    if not features:
        detail = ", ".join(f"{k}: {v}" for k, v in skipped.items())
        raise UserError(f"no input could be embedded ({detail or 'no input'})")
    return EmbedResult(features, sources, skipped)


def embed_file(loaded: Embedder, path: str | Path, *, level: str = "context",
               chunk: int | None = None) -> dict[str, np.ndarray]:
    """Features of one input file, ``{key: array}``; an unusable file is a :class:`UserError`
    (with the reason it was skipped) rather than a warning."""
    problems: list[str] = []
    try:
        return embed_files(loaded, [path], level=level, chunk=chunk, warn=problems.append).features
    except UserError:
        if problems:
            raise UserError(problems[0]) from None
        raise
