"""Trained models leave the lab: exported model folders, the Hugging Face Hub, s3prl.

* :mod:`~cpcframe.export.layout`: the exported folder's files (:class:`ExportDir`).
* :mod:`~cpcframe.export.bundle`: :func:`export_run` (``cpcframe export RUN_DIR OUT_DIR``).
* :mod:`~cpcframe.export.manifest`: ``cpcframe.json``, which plugin (distribution,
  version) supplied each component; :mod:`~cpcframe.export.plugin_check` turns a missing
  one into ``pip install ...`` advice when the model is loaded.
* :mod:`~cpcframe.export.card`: the model card ``README.md``.
* :mod:`~cpcframe.export.s3prl` and :mod:`~cpcframe.export.s3prl_expert`: the s3prl
  upstream (``expert.py``, ``requirements.txt``) of speech models.
* :mod:`~cpcframe.export.hub`: :func:`locate_model`, a Hub id or folder -> a local folder
  (what :func:`cpcframe.load` reads); :mod:`~cpcframe.export.push`: :func:`push_run`
  (``cpcframe push RUN_DIR ORG/NAME``).

Names are imported on first use: loading (:mod:`cpcframe.runs.loading`) consults
:mod:`~cpcframe.export.plugin_check`, and the bundle loads models, so importing the
bundle here eagerly would make a circle ``runs.loading -> export -> bundle -> runs.loading``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cpcframe.export.bundle import ExportResult, export_run
    from cpcframe.export.hub import locate_model
    from cpcframe.export.layout import ExportDir
    from cpcframe.export.manifest import Manifest, read_manifest
    from cpcframe.export.push import PushResult, push_run

_LAZY = {"ExportResult": "bundle", "export_run": "bundle", "locate_model": "hub", "ExportDir": "layout",
         "Manifest": "manifest", "read_manifest": "manifest", "PushResult": "push", "push_run": "push"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"cpcframe.export.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'cpcframe.export' has no attribute {name!r}")


__all__ = ["ExportDir", "ExportResult", "Manifest", "PushResult", "export_run", "locate_model", "push_run",
           "read_manifest"]
