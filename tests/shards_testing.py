"""Shards of the toy corpus, written once per test module (the shard tests)."""

from __future__ import annotations

from pathlib import Path

from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"


def write_toy_shards(out: Path, shard_items: int = 8) -> Path:
    """The toy recipe's dataset written as shards of ``shard_items`` items into ``out``."""
    from cpcframe.build import build_dataset
    from cpcframe.config.loader import load_recipe
    from cpcframe.plugins import default_registry
    from cpcframe.shards.writer import write_shards

    registry = default_registry()
    write_shards(lambda: build_dataset(load_recipe(TOY, registry), registry), out, shard_items=shard_items)
    return out
