"""Registers the ``shards`` dataset source (a core plugin, through the public hook)."""

from cpcframe.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    from cpcframe.shards.source import ShardsConfig, build_shards

    register("shards", build_shards, ShardsConfig)
