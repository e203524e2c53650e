"""What a dataset factory is asked for: :class:`DatasetRequest` (split, cache folder, seed, access, ...)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import attrs

#: The ways a dataset may be read (:attr:`DatasetRequest.access`).
ACCESS = ("random", "sequential")


def default_cache_dir() -> Path:
    """``$CPCFRAME_CACHE``, else ``$XDG_CACHE_HOME/cpcframe``, else ``~/.cache/cpcframe``."""
    if os.environ.get("CPCFRAME_CACHE"):
        return Path(os.environ["CPCFRAME_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cpcframe"


@attrs.frozen
class DatasetRequest:
    """Attributes:
        split: ``"train"`` for training; probes ask for ``"train"`` and ``"test"``.
        cache_dir: where decoded corpora may be cached (shared by runs).
        seed: the run's seed, for datasets that generate or subsample data.
        min_length: the smallest usable example for the view sampler (its
            :meth:`~cpcframe.ViewSampler.min_length`); shorter ones may be skipped.
        run_dir: the run directory, where a dataset may save artifacts that belong to
            the run (a tokenizer trained on the corpus); ``None`` outside a run.
        access: how the dataset will be read. ``"random"`` (the default: training,
            validation, probes) reads items in any order, many times over, so a source
            decodes its corpus once into a cache under ``cache_dir`` and slices it.
            ``"sequential"``: each item is read once, in index order (``cpcframe shard``
            writing shards), so a source should decode each item in ``__getitem__`` and
            build no cache; an item found unusable only then (unreadable, shorter than
            ``min_length``) raises :class:`cpcframe.UnusableItem`, which the reader skips
            and counts. A source that has no such mode may ignore it: random access
            serves sequential reading too.
    """

    split: str = "train"
    cache_dir: Path = attrs.field(factory=default_cache_dir, converter=Path)
    seed: int = 0
    min_length: int = 0
    run_dir: Path | None = None
    access: Literal["random", "sequential"] = attrs.field(default="random",
                                                        validator=attrs.validators.in_(ACCESS))
