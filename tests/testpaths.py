"""Paths and helpers shared by the tests (a module with a unique name, so it never
collides with the per-folder ``conftest.py`` files)."""

from __future__ import annotations

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: this one's, plus ``extra``."""
    env = dict(os.environ)
    env.update(extra)
    return env
