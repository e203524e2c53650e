"""``cpcframe plugins [NAME] [--json]``: every component with its kind and the plugin (and
version) that supplied it; with ``NAME``, the options its recipe section takes."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from cpcframe.cli import table
from cpcframe.config.describe import REQUIRED, describe_options
from cpcframe.config.toml_io import toml_value
from cpcframe.errors import UserError, did_you_mean
from cpcframe.hookspecs import KINDS
from cpcframe.plugins import default_registry

#: Where each kind's options go in a recipe.
SECTIONS = {"encoder": "[model.encoder]", "context_model": "[model.context]", "critic": "[model.critic]",
            "view_sampler": "[data.views]", "dataset": "[data.dataset]", "probe": "[probe]",
            "negative_policy": "[loss.negatives]", "probe_classifier": "[probe]"}


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("plugins", parents=parents,
                       help="list registered components and their plugins; with NAME, its options")
    p.add_argument("name", nargs="?", help="a component name (e.g. cpc_audio): show its recipe options")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _toml(value: Any) -> str:
    return "(required)" if value is REQUIRED else toml_value(value)


def as_toml(section: str, name: str, options: list[dict[str, Any]], *, named_by: str = "name") -> str:
    """The component's recipe section with every option at its default, each under a
    comment with its type and description: a block to paste into a recipe (``named_by``: how
    the section names the component, ``name = "..."`` or ``classifiers = ["..."]``)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for option in options:  # nested config classes become sub-tables ([probe.mlp])
        table_path, _, key = option["key"].rpartition(".")
        tables.setdefault(table_path, []).append({**option, "key": key})
    lines = [section, f"{named_by} = {json.dumps(name if named_by == 'name' else [name])}"]
    for table_path, rows in sorted(tables.items(), key=lambda item: item[0] != ""):  # own keys first
        if table_path:
            lines += ["", f"{section[:-1]}.{table_path}]"]
        for row in rows:
            required = row["default"] is REQUIRED
            kind = f"{row['type']}, required" if required else row["type"]
            text = f"{row['description']} ({kind})".replace("``", "`").strip()
            lines += ["# " + part for part in textwrap.wrap(text, 86)]
            # No TOML value stands for "unset": a required option is shown commented out.
            lines.append(f"# {row['key']} = ..." if required else f"{row['key']} = {_toml(row['default'])}")
    return "\n".join(lines)


def show(name: str, as_json: bool) -> int:
    registry = default_registry()
    found = [c for c in registry if c.name == name]
    if not found:
        raise UserError(f"no component is named {name!r}{did_you_mean(name, sorted({c.name for c in registry}))}; "
                        "cpcframe plugins lists them all")
    if as_json:
        print(json.dumps([{"kind": c.kind, "name": c.name, "plugin": c.plugin, "version": c.version,
                           "description": c.description, "section": SECTIONS.get(c.kind),
                           "options": [{**o, "default": None if o["default"] is REQUIRED else o["default"],
                                        "required": o["default"] is REQUIRED}
                                       for o in describe_options(c.config)]}
                          for c in found], indent=2))
        return 0
    for i, c in enumerate(found):
        if i:
            print()
        print(f"# {c.kind} {c.name!r} from plugin {c.plugin} {c.version or ''}".rstrip() + f": {c.description}")
        if c.kind == "probe_classifier":  # named in [probe] classifiers, its options in [probe.NAME]
            print(as_toml("[probe]", c.name, describe_options(c.config, f"{c.name}."), named_by="classifiers"))
        else:
            print(as_toml(SECTIONS.get(c.kind, f"[{c.kind}]"), c.name, describe_options(c.config)))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.name:
        return show(args.name, args.json)
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
    lines = [(c.kind, c.name, f"{c.plugin} {c.version or ''}".strip(), c.description) for c in rows]
    print(table.format_table(["KIND", "NAME", "PLUGIN", "DESCRIPTION"], lines, left=(0, 1, 2, 3), rule=False))
    return 0
