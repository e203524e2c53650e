"""Sharded corpora: ``cpcframe shard`` writes WebDataset tar shards from any registered
dataset, and the ``shards`` dataset source trains from them with a step-indexed,
shard-local order (see ``docs/shards.md``). WebDataset is an optional extra
(``cpcframe[shards]``), imported lazily: importing this package imports none of it.
"""
