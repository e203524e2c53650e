"""``cpcframe push RUN_DIR ORG/NAME``: export a run and upload it to the Hugging Face Hub.

Needs ``cpcframe[hub]`` and a login (``hf auth login`` or ``HF_TOKEN``); see
:mod:`cpcframe.export.push`.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("push", parents=parents, help="export a trained run and upload it to the Hugging Face Hub",
                       description="Export a trained run (as cpcframe export does) and upload it to a model "
                                   "repository on the Hugging Face Hub, created if needed. "
                                   "cpcframe.load(\"ORG/NAME\") loads it back.")
    p.add_argument("run_dir", help="a run directory written by cpcframe run")
    p.add_argument("repo_id", metavar="ORG/NAME", help="the Hub model repository")
    p.add_argument("--private", action="store_true", default=None, help="create the repository private")
    p.add_argument("--revision", metavar="BRANCH", help="commit to this branch (created if needed)")
    p.add_argument("--message", help="the commit message")
    p.add_argument("--license", help="license identifier for the card's Hub metadata (mit, cc-by-4.0, ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cpcframe.export.push import push_run

    result = push_run(args.run_dir, args.repo_id, private=args.private, revision=args.revision,
                      commit_message=args.message, license=args.license)
    print(f"pushed {result.export.manifest.run} ({len(result.export.files)} files) -> {result.url}")
    return 0
