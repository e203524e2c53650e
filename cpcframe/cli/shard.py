"""``cpcframe shard RECIPE --out DIR``: write the recipe's dataset (any registered source,
any modality) as WebDataset tar shards that the ``shards`` source trains from."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from cpcframe.errors import UserError


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("shard", parents=parents, help="write a recipe's dataset as tar shards (cpcframe[shards])")
    p.add_argument("recipe", help="recipe TOML file whose [data.dataset] is sharded")
    p.add_argument("--out", required=True, help="corpus folder to write (index.json + shard-*.tar)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value (repeatable)")
    p.add_argument("--split", default="train", help="the dataset split to shard (default train)")
    p.add_argument("--shard-items", type=int, default=256, help="items per shard (default 256)")
    p.add_argument("--segment", type=int, default=0,
                   help="cut long items into pieces of this many samples along the last axis "
                        "(e.g. 240000 = 15 s of 16 kHz audio; default 0 = whole items)")
    p.add_argument("--voice-activity", default="auto", metavar="auto|none|DIR",
                   help="with --segment: cut at the voice-activity spans of KEY.json files (LibriLight's "
                        "\"voice_activity\": [[start, end], ...] in seconds) found under DIR; auto (default) "
                        "= the recipe's data.dataset.root")
    p.add_argument("--workers", type=int, default=1, help="processes writing shards in parallel")
    p.set_defaults(func=run)


def make_dataset(recipe_path: str, overrides: list[str], split: str):
    """The recipe's dataset, asked for sequential access: each item is read once, in
    order, so a source that can decodes on access instead of filling a cache first
    (top level, so that worker processes can build their own)."""
    from cpcframe.build import build_dataset
    from cpcframe.config.loader import load_recipe
    from cpcframe.plugins import default_registry

    registry = default_registry()
    recipe = load_recipe(recipe_path, registry, overrides)
    return build_dataset(recipe, registry, split=split, access="sequential")


def voice_activity_files(args: argparse.Namespace) -> dict[str, str]:
    """``key -> JSON`` of the voice-activity files ``--voice-activity`` names."""
    from cpcframe.shards.vad import find_voice_activity

    if args.segment <= 0 or args.voice_activity == "none":
        return {}
    where = args.voice_activity
    if where == "auto":
        from cpcframe.config.loader import load_recipe
        from cpcframe.plugins import default_registry

        recipe = load_recipe(args.recipe, default_registry(), list(args.overrides))
        where = str(getattr(recipe.data.dataset.config, "root", "") or "")
        if not where:
            return {}
    elif not Path(where).expanduser().is_dir():
        raise UserError(f"--voice-activity {where}: not a folder")
    return find_voice_activity(where)


def run(args: argparse.Namespace) -> int:
    from cpcframe.shards.writer import write_shards

    if args.shard_items <= 0 or args.workers <= 0 or args.segment < 0:
        raise UserError("--shard-items and --workers must be positive")
    factory = functools.partial(make_dataset, args.recipe, list(args.overrides), args.split)
    index = write_shards(factory, Path(args.out), shard_items=args.shard_items, workers=args.workers,
                         segment=args.segment, voice_activity=voice_activity_files(args),
                         source={"recipe": str(args.recipe), "overrides": list(args.overrides),
                                 "split": args.split})
    skipped = ", ".join(f"{k}: {v}" for k, v in index["skipped"].items())
    print(f"{args.out}: {index['items']} items in {len(index['shards'])} shards"
          + (f", {index['vad_cut']} recordings cut at voice activity" if index.get("vad_cut") else "")
          + (f" ({skipped} skipped)" if skipped else ""), file=sys.stderr)
    return 0
