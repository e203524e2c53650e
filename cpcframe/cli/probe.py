"""``cpcframe probe RUN_DIR [--baselines]``: evaluate frozen features with the recipe's probe."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cpcframe.cli import table
from cpcframe.errors import UserError
from cpcframe.probing.interface import ProbeContext, ProbeResults
from cpcframe.runs.layout import RunDir


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("probe", parents=parents, help="linear probes on a trained run's frozen features")
    p.add_argument("run_dir", help="a run directory written by cpcframe run")
    p.add_argument("--baselines", action="store_true",
                   help="also score a random-init model of the same architecture (and hand-made features)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the run's recipe, e.g. --set probe.epochs=20")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
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
    """Run the recipe's probe on ``run_dir``; write ``probe.json`` and print the table.

    ``baselines=None`` takes the probe config's own ``baselines`` setting when it has one.
    """
    from cpcframe.build import build_model
    from cpcframe.runs.loading import load_run
    from cpcframe.runtime import resolve_device

    dev = resolve_device(device, setting="--device")
    loaded = load_run(run_dir, device=dev, overrides=overrides)
    recipe = loaded.recipe
    if recipe.probe is None:
        raise UserError(f"the recipe of {run_dir} has no [probe] section; "
                        "add one, or pass --set probe.name=NAME")
    if baselines is None:
        baselines = bool(getattr(recipe.probe.config, "baselines", False))
    random_model = None
    if baselines:
        torch.manual_seed(recipe.seed + 7919)  # a fixed, documented random init
        random_model = build_model(recipe, loaded.registry).to(dev).eval()
    probe = recipe.probe.build(loaded.registry)
    context = ProbeContext(run_dir=Path(run_dir), recipe=recipe, device=dev, baselines=baselines,
                           random_model=random_model, seed=recipe.seed)
    results = probe.run(loaded.model, context)
    RunDir(run_dir).write_probe_results(results)
    if not quiet:
        what = "ABX error" if recipe.probe.name == "abx" else "accuracy"  # ABX scores errors, not accuracies
        print(f"probe {recipe.probe.name} on {run_dir} ({what}, %):")
        print(format_table(results))
    return results


def run(args: argparse.Namespace) -> int:
    probe_run(args.run_dir, baselines=args.baselines or None, overrides=args.overrides, device=args.device)
    return 0
