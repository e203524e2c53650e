"""What a sharded corpus's batch order depends on besides ``(seed, step)``, saved in the
checkpoint and checked on ``--resume``.

:class:`~cpcframe.shards.sampler.ShardStepSampler` gives the same global batch of every
step on any number of processes as long as the number of streams, the global batch and
the corpus stay the same; then a run resumed on another number of processes neither
repeats nor drops a shard of the epoch. When one of them changes, the order changes (items
of the epoch would be read twice or not at all), so the resume is refused, located,
before anything is written.
"""

from __future__ import annotations

from typing import Any

from cpcframe.errors import UserError


def order_state(dataset: Any, batch_size: int, world_size: int) -> dict[str, int] | None:
    """``{"streams", "global_batch", "shards", "items"}`` of a sharded dataset (``None``
    for any other: its order is a function of ``(seed, step)`` and the global batch)."""
    if getattr(dataset, "shard_items", None) is None:
        return None
    return {"streams": int(getattr(dataset, "streams", 0) or world_size),
            "global_batch": int(batch_size) * int(world_size),
            "shards": len(dataset.shard_items), "items": int(sum(dataset.shard_items))}


def check_resume_order(saved: dict[str, int] | None, now: dict[str, int] | None, *, saved_world: int,
                       world_size: int) -> None:
    """Refuse a resume whose shard order would differ from the run's (a
    :class:`UserError` naming the key to set); checkpoints without a saved order pass."""
    if not saved or not now:
        return
    if saved["streams"] != now["streams"]:
        if saved["streams"] == saved_world:
            hint = (f"the run read its shards as {saved['streams']} stream(s), one per process "
                    f"(data.dataset.streams = 0): resume it on {saved_world} process(es), or start "
                    "runs with data.dataset.streams set to a number every process count divides (e.g. 8)")
        else:
            hint = f"the run read its shards as {saved['streams']} streams: keep that value"
        raise UserError(f"data.dataset.streams: resuming on {world_size} process(es) would read "
                        f"{now['streams']} stream(s), so the epoch's order would change; {hint}")
    if saved["global_batch"] != now["global_batch"]:
        per_process, rest = divmod(saved["global_batch"], world_size)
        keep = (f"set data.batch_size = {per_process}" if not rest and per_process else
                f"use a process count that divides {saved['global_batch']}")
        raise UserError(f"data.batch_size: the run's global batch was {saved['global_batch']}, now "
                        f"{now['global_batch']} ({world_size} process(es)); the shard order would change "
                        f"(items of the epoch repeated or dropped): {keep}")
    if (saved["shards"], saved["items"]) != (now["shards"], now["items"]):
        raise UserError(f"data.dataset.root: the run trained on {saved['items']} items in {saved['shards']} "
                        f"shards, the corpus now has {now['items']} in {now['shards']}: resume on the "
                        "same corpus (or start a new run)")
