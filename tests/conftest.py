"""Shared test setup: the toy plugin is loaded like any plugin named in CPCFRAME_PLUGINS."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
os.environ["CPCFRAME_PLUGINS"] = "toy_plugin"
# Subprocesses (CLI tests) find the toy plugin the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("OMP_NUM_THREADS", "2")
torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session caches decoded corpora in its own directory, not in ~/.cache."""
    monkeypatch.setenv("CPCFRAME_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def registry():
    from cpcframe.plugins import default_registry

    return default_registry()
