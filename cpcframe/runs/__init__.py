"""Run directories: their format, and using the model a run trained.

* :class:`RunDir` (:mod:`~cpcframe.runs.layout`) names every file of a run and holds
  its lock; nothing else spells those names.
* :mod:`~cpcframe.runs.atomic`: files and folders that appear complete or not at all.
* :mod:`~cpcframe.runs.weights` (``model.safetensors``) and :mod:`~cpcframe.runs.state`
  (``checkpoint.pt``, loaded without running code).
* :func:`load_run` / :class:`LoadedModel` (:mod:`~cpcframe.runs.loading`, what
  :func:`cpcframe.load` returns), :func:`embed_files` (:mod:`~cpcframe.runs.embedding`)
  and feature files (:mod:`~cpcframe.runs.features`).

``load_run`` and ``LoadedModel`` are imported on first use: loading builds models
(:mod:`cpcframe.build`), and the data side imports :mod:`~cpcframe.runs.atomic`, so
importing them here eagerly would make a circle ``runs -> build -> data -> runs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cpcframe.runs.atomic import publish_dir, write_atomic, write_text_atomic
from cpcframe.runs.embedding import EmbedResult, embed_file, embed_files
from cpcframe.runs.features import FORMATS, load_features, save_features
from cpcframe.runs.features import load_per_file, save_per_file
from cpcframe.runs.layout import RunDir
from cpcframe.runs.state import load_state, save_state
from cpcframe.runs.weights import load_weights, save_weights

if TYPE_CHECKING:
    from cpcframe.runs.loading import LoadedModel, load_run

_LAZY = {"LoadedModel", "load_run"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from cpcframe.runs import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'cpcframe.runs' has no attribute {name!r}")


__all__ = [
    "EmbedResult", "FORMATS", "LoadedModel", "RunDir", "embed_file", "embed_files", "load_features",
    "load_run", "load_state", "load_weights", "publish_dir", "save_features", "save_state",
    "save_weights", "write_atomic", "write_text_atomic",
    "load_per_file", "save_per_file",
]
