"""``cpcframe probe RUN_DIR [--baselines]``: evaluate frozen features with the recipe's probe."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cpcframe.cli import table
from cpcframe.probing.probe import ProbeResults

if TYPE_CHECKING:
    from cpcframe.runs.layout import RunDir


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("probe", parents=parents, help="linear probes on a trained run's frozen features")
    p.add_argument("run_dir", help="a run directory written by cpcframe run")
    p.add_argument("--baselines", action="store_true",
                   help="also score a random-init model of the same architecture (and hand-made features)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the run's recipe, e.g. --set probe.epochs=20")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: the run's train.threads; 0 = the free cores)")
    p.set_defaults(func=run)


def format_table(results: ProbeResults) -> str:
    """Tasks as rows, feature sets as columns, accuracies in percent."""
    columns: list[str] = []
    for scores in results.values():
        for name in scores:
            if name not in columns:
                columns.append(name)
    rows = [[task] + [f"{100 * scores[c]:.1f}" if c in scores else "-" for c in columns]
            for task, scores in results.items()]
    return table.format_table(["task"] + columns, rows)


def probe_run(run_dir: str | Path, *, baselines: bool | None = None, overrides=(),
              device: str = "auto", quiet: bool = False) -> ProbeResults:
    """:func:`cpcframe.probing.run.run_probe`, then print its table (unless ``quiet``)."""
    from cpcframe.probing.run import run_probe

    results = run_probe(run_dir, baselines=baselines, overrides=overrides, device=device)
    if not quiet:
        from cpcframe.config.loader import apply_overrides, parse_override, read_recipe_data
        from cpcframe.runs.layout import RunDir

        recipe = read_recipe_data(RunDir(run_dir).recipe)  # already validated by run_probe
        apply_overrides(recipe, [parse_override(o) for o in overrides])
        name = recipe["probe"]["name"]
        what = "ABX error" if name == "abx" else "accuracy"  # ABX scores errors, not accuracies
        print(f"probe {name} on {run_dir} ({what}, %):")
        print(format_table(results))
        for note in subset_notes(RunDir(run_dir), name):
            print(f"  note: {note}")
    return results


def subset_notes(run: "RunDir", probe: str) -> list[str]:
    """The ``subset_note`` of each task in the probe's details: the table's numbers come
    from a subset of the data (e.g. the speech probe's ``max_frames``)."""
    try:
        details = run.read_json(run.probe_details(probe)) or {}
    except Exception:  # an unreadable details file: no notes, the table stands
        return []
    return [v["subset_note"] for v in details.values() if isinstance(v, dict) and v.get("subset_note")]


def run_threads(run_dir, given: int | None, overrides=()) -> int:
    """Apply ``--threads``, else the run's ``train.threads`` (one rule: :mod:`cpcframe.threads`)."""
    from cpcframe.threads import apply_threads

    if given is None:
        from cpcframe.config.loader import apply_overrides, parse_override, read_recipe_data
        from cpcframe.runs.layout import RunDir

        try:
            data = read_recipe_data(RunDir(run_dir).recipe)
            apply_overrides(data, [parse_override(o) for o in overrides])
            given = int(data.get("train", {}).get("threads", 0))
        except Exception:  # an exported folder or a Hub id: no run recipe to read here
            given = 0
    return apply_threads(given)


def run(args: argparse.Namespace) -> int:
    run_threads(args.run_dir, args.threads, args.overrides)
    probe_run(args.run_dir, baselines=args.baselines or None, overrides=args.overrides, device=args.device)
    return 0
