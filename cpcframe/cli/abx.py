"""``cpcframe abx RUN_DIR [--level latent|context] [--items FILE --audio DIR] [--baselines]``.

ABX phone discriminability of a trained model's frozen features, the speech field's
headline evaluation (Libri-light / ZeroSpeech 2021). The core knows no ABX science: the
command runs the probe registered as ``abx`` (the audio plugin's, with the
``zerospeech-libriabx2`` backend) on the run, with the recipe's own ``[probe]``
options when that probe is ``abx`` and the command line's on top; the probe writes
``abx.json`` into the run, and this prints it as a table.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from cpcframe.cli import table
from cpcframe.errors import UserError
from cpcframe.runs.layout import RunDir

PROBE_NAME = "abx"
#: Command-line flags -> the probe's option of that name.
FLAGS = {"level": "level", "items": "items", "audio": "audio", "split": "split", "frame_step": "frame_step",
         "backend": "backend", "max_utterances": "max_utterances", "max_items": "max_items"}


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("abx", parents=parents, help="ABX phone discriminability of a trained run's features",
                       description="ABX error rates (within and across speaker; triphone within context and "
                                   "phone in any context; angular distance + DTW, as in Libri-light and "
                                   "ZeroSpeech 2021) of a trained model's frozen features. Writes the run's "
                                   "ABX file and prints a table. Needs pip install 'cpcframe[audio,abx]'.")
    p.add_argument("run_dir", help="a run directory written by cpcframe run")
    p.add_argument("--level", choices=("latent", "context"), help="encoder output z or context c (default)")
    p.add_argument("--items", metavar="FILE", help="a ZeroSpeech .item file (default: generated from the "
                   "corpus's phone labels)")
    p.add_argument("--audio", metavar="DIR", help="folder of the audio files the item file names "
                   "(e.g. LibriSpeech/dev-clean); default: the run's dataset")
    p.add_argument("--split", choices=("auto", "test", "train"),
                   help="utterances of the run's dataset (auto: its test split when it has one)")
    p.add_argument("--frame-step", type=float, metavar="SECONDS",
                   help="seconds per feature frame (default: the encoder's hop, 0.01 for CPC); checked")
    p.add_argument("--backend", help="ABX implementation: libriabx2 (default) or fastabx")
    p.add_argument("--max-utterances", type=int, metavar="N", help="at most N utterances, spread over speakers")
    p.add_argument("--max-items", type=int, metavar="N", help="a seeded subset of N items")
    p.add_argument("--baselines", action="store_true",
                   help="also score a random-init model of the same architecture and MFCCs")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="an ABX option (max_size_group=20, exclude_phones=['0']) or, with a dotted key, "
                        "a value of the run's recipe (data.dataset.root=/new/place)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.set_defaults(func=run)


def _quote(value: Any) -> str:
    """A TOML value for ``--set`` (strings quoted, so paths with ``=`` or ``:`` stay strings)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def probe_overrides(recipe_probe: Any, options: dict[str, Any], sets: list[str], baselines: bool) -> list[str]:
    """Recipe overrides that make the run's ``[probe]`` the ``abx`` probe with these options.

    The recipe's own ``abx`` options are kept; another probe's are replaced. ``sets`` with a
    dotted key change the recipe; bare keys are ABX options.
    """
    out = [] if recipe_probe is not None and recipe_probe.get("name") == PROBE_NAME else [
        f'probe={{ name = "{PROBE_NAME}" }}']
    recipe_sets, abx_sets = [], []
    for item in sets:
        key = item.split("=", 1)[0].strip()
        (recipe_sets if "." in key else abx_sets).append(item)
    out += recipe_sets
    out += [f"probe.{name}={_quote(value)}" for name, value in options.items()]
    if baselines:
        out.append("probe.baselines=true")
    out += [f"probe.{item.strip()}" for item in abx_sets]
    return out


def abx_run(run_dir: str | Path, *, options: dict[str, Any] | None = None, overrides: list[str] | None = None,
            baselines: bool = False, device: str = "auto", quiet: bool = False) -> dict[str, Any]:
    """Score ``run_dir`` with the ``abx`` probe; write ``abx.json``; print the table. Returns the report."""
    from cpcframe.config.loader import read_recipe_data
    from cpcframe.probing.harness import ProbeHarness
    from cpcframe.runs.loading import load_run
    from cpcframe.runtime import resolve_device

    rd = RunDir(run_dir).require_recipe()
    dev = resolve_device(device, setting="--device")
    sets = probe_overrides(read_recipe_data(rd.recipe).get("probe"), dict(options or {}), list(overrides or ()),
                           baselines)
    try:
        loaded = load_run(rd.root, device=dev, overrides=sets)
    except UserError as exc:
        if f"unknown probe {PROBE_NAME!r}" in str(exc):
            raise UserError(f"no installed plugin provides the {PROBE_NAME!r} probe; ABX needs the audio plugin "
                            "and its backend: pip install 'cpcframe[audio,abx]'") from None
        raise
    recipe = loaded.recipe
    probe = recipe.probe.build(loaded.registry)
    with_baselines = bool(getattr(recipe.probe.config, "baselines", baselines))
    before = rd.abx.stat().st_mtime_ns if rd.abx.exists() else None
    probe.run(loaded.model, ProbeHarness(rd.root, recipe, dev, baselines=with_baselines, registry=loaded.registry))
    report = rd.read_abx()
    if not report or rd.abx.stat().st_mtime_ns == before:  # never print an older result as this one
        raise UserError(f"the {PROBE_NAME!r} probe wrote no {rd.abx.name} into {rd.root}")
    if not quiet:
        print(format_report(report, rd.root))
    return report


def format_report(report: dict[str, Any], run_dir: Path | str = "") -> str:
    """A title line (what was scored, by which backend) and conditions x feature sets in percent."""
    errors: dict[str, dict[str, Any]] = report.get("errors", {})
    columns: list[str] = []
    for by_set in errors.values():
        columns += [name for name in by_set if name not in columns]

    def cell(value: Any) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"

    rows = [[condition] + [cell(by_set.get(c)) for c in columns] for condition, by_set in errors.items()]
    backend = report.get("backend", {})
    items = report.get("items", {})
    title = (f"ABX error (%) of {report.get('level', '?')} features of {run_dir}: "
             f"{backend.get('distribution', backend.get('name', '?'))} {backend.get('version') or ''}".rstrip())
    detail = (f"{items.get('items', '?')} items ({items.get('source', '?')}), {items.get('speakers', '?')} "
              f"speakers, {items.get('phones', '?')} phones; lower is better, 50 is chance")
    return "\n".join([title, table.format_table(["condition"] + columns, rows), detail])


def run(args: argparse.Namespace) -> int:
    options = {FLAGS[k]: v for k, v in vars(args).items() if k in FLAGS and v is not None}
    abx_run(args.run_dir, options=options, overrides=args.overrides, baselines=args.baselines, device=args.device)
    return 0
