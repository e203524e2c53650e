"""Helpers of the probe tests: a tiny trained toy run, and registries with test plugins."""

from __future__ import annotations

from pathlib import Path

from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"


def train_toy_run(out: Path, *sets: str) -> Path:
    """A run directory of the toy recipe after two steps (no [probe] in its recipe)."""
    from cpcframe.cli import main

    args = ["run", str(TOY), "--out", str(out), "--quiet", "--no-probe", "--set", "train.steps=2"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return out


def registry_with(*plugins):
    """The installed plugins (and the toy plugin) plus ``plugins``."""
    from cpcframe.plugins import build_registry, make_plugin_manager

    return build_registry(make_plugin_manager(plugins))
