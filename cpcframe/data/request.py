"""What a dataset factory is asked for: :class:`DatasetRequest` (split, cache folder, seed, ...)."""

from __future__ import annotations

import os
from pathlib import Path

import attrs


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
    """

    split: str = "train"
    cache_dir: Path = attrs.field(factory=default_cache_dir, converter=Path)
    seed: int = 0
    min_length: int = 0
    run_dir: Path | None = None
