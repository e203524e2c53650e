"""``cpcframe plugins``: every component with its kind and the plugin (and version) that supplied it."""

from __future__ import annotations

import argparse
import json

from cpcframe.hookspecs import KINDS
from cpcframe.plugins import default_registry


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("plugins", parents=parents, help="list registered components and their plugins")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    registry = default_registry()
    order = {k: i for i, k in enumerate(KINDS)}
    rows = sorted(registry, key=lambda c: (order.get(c.kind, 99), c.name))
    if args.json:
        print(json.dumps([{"kind": c.kind, "name": c.name, "plugin": c.plugin, "version": c.version,
                           "description": c.description} for c in rows], indent=2))
        return 0
    if not rows:
        print("no components registered (no plugin installed, or autoloading disabled)")
        return 0
    table = [("KIND", "NAME", "PLUGIN", "DESCRIPTION")]
    table += [(c.kind, c.name, f"{c.plugin} {c.version or ''}".strip(), c.description) for c in rows]
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        print("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    return 0
