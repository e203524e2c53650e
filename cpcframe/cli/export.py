"""``cpcframe export RUN_DIR OUT_DIR``: a trained run as a self-contained model repository.

Writes the weights, the resolved recipe, the model card ``README.md`` (Hub metadata,
settings, training, probe and ABX tables, how to load it), the manifest of plugins and,
for speech models, an s3prl upstream (``expert.py``, ``requirements.txt``); see
:mod:`cpcframe.export`.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("export", parents=parents, help="write a trained run as a model repository (Hub, s3prl)",
                       description="Write a trained run as a self-contained model folder: weights, resolved "
                                   "recipe, model card and, for speech models, an s3prl upstream. "
                                   "cpcframe.load(OUT_DIR) loads it; cpcframe push uploads one.")
    p.add_argument("run_dir", help="a run directory written by cpcframe run")
    p.add_argument("out_dir", help="the folder to write (must not exist, or be empty)")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR when it is not empty")
    p.add_argument("--repo-id", metavar="ORG/NAME", help="the Hub repository it is meant for (used in the card)")
    p.add_argument("--license", help="license identifier for the card's Hub metadata (mit, cc-by-4.0, ...)")
    p.set_defaults(func=run)


def summary_line(result) -> str:
    """``exported quickstart_speech -> OUT: 9 files (model card, s3prl upstream)``."""
    parts = ["model card"] + (["s3prl upstream"] if result.manifest.s3prl else [])
    return (f"exported {result.manifest.run} -> {result.folder}: {len(result.files)} files "
            f"({', '.join(parts)}): {' '.join(result.files)}")


def run(args: argparse.Namespace) -> int:
    from cpcframe.export.bundle import export_run

    result = export_run(args.run_dir, args.out_dir, force=args.force, repo_id=args.repo_id,
                        license=args.license)
    print(summary_line(result))
    if result.note:
        print(f"no s3prl upstream: {result.note}")
    return 0
