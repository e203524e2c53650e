"""``cpcframe compare RUN_DIR... [--show KEY ...] [--json]``: runs side by side.

The papers' ablations are tables of runs that differ in one setting (CPC: the number of
prediction steps K, the negative policy; AMDIM: the views and the critic). This reads
what each run directory already holds, nothing is recomputed:

* the final training and validation metrics of ``summary.json`` (``loss``, ``acc``,
  ``val/loss``, ``val/acc``),
* every probe accuracy of ``probe.json`` as a ``task/features`` column (``phone/cpc``,
  ``speaker/random_init``, ``classification/amdim_mlp``),
* every ABX error of ``abx.json`` (``cpcframe abx``) as an ``abx/condition/features``
  column (``abx/triphone/within/cpc``, ``abx/phone/across/mfcc``),
* the last results of a probe run while training (``train.validate_probe``, e.g. ABX on a
  subsample of the items) from ``summary.json``, as ``val/<task>/<features>`` columns
  (``val/abx/triphone/within/cpc``),
* with ``--show``, recipe values by key path from the run's ``recipe.toml``
  (``--show model.critic.steps --show loss.negatives``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cpcframe.cli import table
from cpcframe.config.loader import read_recipe_data
from cpcframe.errors import UserError, did_you_mean
from cpcframe.runs.layout import RunDir
from cpcframe.probe_metrics import is_probe_key

SUMMARY_METRICS = ("loss", "acc", "val/loss", "val/acc")
ABX_COLUMNS = ("abx/", "val/abx/")  # error rates: lower is better


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("compare", parents=parents, help="final metrics and probe results of runs, side by side")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by cpcframe run")
    p.add_argument("--show", action="append", default=[], metavar="KEY",
                   help="also show this recipe value, by key path (e.g. model.critic.steps); repeatable")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _lookup(recipe: dict[str, Any], key: str) -> Any:
    value: Any = recipe
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def collect(run_dir: str | Path, show: list[str]) -> dict[str, Any]:
    """One run's row: ``run``, ``step``, the ``--show`` values, metrics and probe accuracies."""
    run = RunDir(run_dir).require_recipe()
    recipe = read_recipe_data(run.recipe)
    row: dict[str, Any] = {"run": run.root.name}
    summary = run.read_summary()
    row["step"] = summary.get("step")
    for key in show:
        row[key] = _lookup(recipe, key)
    metrics = summary.get("metrics", {})
    for key in SUMMARY_METRICS:
        row[key] = metrics.get(key)
    for key, value in metrics.items():  # the validation probe's last results (ABX while training)
        if is_probe_key(key):
            row[key] = value
    for task, scores in run.read_probe_results().items():
        for features, accuracy in scores.items():
            row[f"{task}/{features}"] = accuracy
    for condition, errors in run.read_abx().get("errors", {}).items():
        for features, error in errors.items():
            row[f"abx/{condition}/{features}"] = error
    return row


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if "/" in key and (not key.startswith("val/") or is_probe_key(key)):  # probe accuracy, ABX error: %
            return f"{100 * value:.1f}"
        return f"{value:.4f}" if "loss" in key else f"{value:.3f}"
    return str(value)


def _keys(data: Any, prefix: str = "") -> list[str]:
    if not isinstance(data, dict):
        return [prefix]
    return [k for key, value in data.items() for k in _keys(value, f"{prefix}.{key}" if prefix else key)]


def _check_shown(show: list[str], rows: list[dict[str, Any]], run_dirs: list[str]) -> None:
    """A ``--show`` key that no run's (resolved, so complete) recipe holds is a typo."""
    for key in show:
        if all(row.get(key) is None for row in rows):
            known = [k for d in run_dirs for k in _keys(read_recipe_data(RunDir(d).recipe))]
            raise UserError(f"--show {key}: no such key in the recipe of "
                            f"{'any of these runs' if len(rows) > 1 else rows[0]['run']}" + did_you_mean(key, known))


def run(args: argparse.Namespace) -> int:
    rows = [collect(d, args.show) for d in args.run_dirs]
    _check_shown(args.show, rows, args.run_dirs)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    # Leave out summary metrics no run has (e.g. validation when none validated).
    columns = [c for c in columns if c in ("run", "step") or any(r.get(c) is not None for r in rows)]
    if args.json:
        print(json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=2))
        return 0
    print(table.format_table(columns, [[_cell(c, r.get(c)) for c in columns] for r in rows]))
    if any("/" in c and not c.startswith(("val/", "abx/")) for c in columns):
        print("(probe accuracies in %)")
    if any(c.startswith(ABX_COLUMNS) for c in columns):
        print("(ABX errors in %: lower is better, 50 is chance)")
    return 0
