"""``cpcframe run RECIPE [--set k=v ...] [--out DIR] [--resume]``: train (and probe)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cpcframe.config.loader import load_recipe
from cpcframe.errors import UserError
from cpcframe.plugins import default_registry
from cpcframe.runs.layout import RunDir


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("run", parents=parents, help="train a model from a recipe")
    p.add_argument("recipe", help="recipe TOML file, or a run directory with --resume")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.steps=100 (repeatable)")
    p.add_argument("--out", help="run directory (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (or in the directory given as RECIPE) from its checkpoint")
    p.add_argument("--no-probe", action="store_true", help="skip the recipe's [probe] at the end")
    p.add_argument("--baselines", action="store_true", help="probe baselines too (random init, ...)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true", help="do not write the run report (cpcframe report) at the end")
    p.set_defaults(func=run)


def _resolve(args: argparse.Namespace):
    registry = default_registry()
    source = Path(args.recipe)
    if args.resume:
        run_dir = RunDir(args.out or source)
        if run_dir.root.exists() and not run_dir.root.is_dir():
            raise UserError(f"nothing to resume in {run_dir.root}: it is a file; pass the run directory")
        if not run_dir.recipe.is_file():
            raise UserError(f"nothing to resume in {run_dir.root}: no {run_dir.recipe.name} "
                            "(pass the run directory, or the recipe with --out DIR)")
        if not run_dir.checkpoint.is_file():
            raise UserError(f"nothing to resume in {run_dir.root}: no {run_dir.checkpoint.name} yet")
        # The run's own resolved recipe is authoritative; --set may extend it (train.steps).
        return _load(run_dir.recipe, registry, args.overrides), run_dir, registry
    if source.is_dir():
        raise UserError(f"{source} is a directory; to continue a run use --resume")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a file, not a directory; choose another --out")
    recipe = _load(source, registry, args.overrides)
    run_dir = RunDir(args.out) if args.out else _fresh_default(source.stem)
    if run_dir.checkpoint.exists():
        raise UserError(f"{run_dir.root} already holds a run; continue it with --resume "
                        "or choose another --out")
    return recipe, run_dir, registry


def _load(path, registry, overrides):
    """The recipe with ``--set`` values; says which options a changed component name drops."""
    import sys

    notes: list[str] = []
    recipe = load_recipe(path, registry, overrides, notes=notes)
    for note in notes:
        print(f"cpcframe: {note}", file=sys.stderr)
    return recipe


def _fresh_default(stem: str) -> RunDir:
    """``runs/<stem>``, or ``runs/<stem>-2``, ``-3``, ... when earlier runs are there."""
    candidate, n = RunDir(Path("runs") / stem), 1
    while candidate.holds_run():
        n += 1
        candidate = RunDir(Path("runs") / f"{stem}-{n}")
    return candidate


def run(args: argparse.Namespace) -> int:
    from cpcframe.training.trainer import Trainer

    recipe, run_dir, registry = _resolve(args)
    trainer = Trainer(recipe, registry, run_dir, resume=args.resume, progress=not args.quiet)
    summary = trainer.run()
    if trainer.dist.enabled:
        # Training is the only distributed part: leave the process group now, so that
        # the other ranks need not wait (and time out) while rank 0 probes.
        from cpcframe.training.distributed import finish_process_group

        finish_process_group()
        if not trainer.dist.is_main:
            return 0
    if not summary.metrics and summary.step == 0:
        return 0
    acc = summary.metrics.get("acc")
    loss = summary.metrics.get("loss")
    parts = [f"trained {summary.step} steps in {summary.seconds:.1f}s"
             + (f" ({summary.session_steps} of them now, in {summary.session_seconds:.1f}s, "
                f"resumed at step {summary.resumed_at})" if summary.resumed_at else "")]
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if acc is not None:
        parts.append(f"acc {acc:.3f}")
    if "val/loss" in summary.metrics:
        parts.append(f"validation loss {summary.metrics['val/loss']:.4f} acc {summary.metrics['val/acc']:.3f}")
    learning = summary.learning.get("status")
    if learning in ("not_learning", "collapsed"):
        parts.append("NOT LEARNING (accuracy at chance" + (", latents collapsed)" if learning == "collapsed" else ")"))
    print(", ".join(parts) + f" -> {run_dir.root}")
    if summary.skipped:
        print("skipped data: " + ", ".join(f"{k}: {v}" for k, v in summary.skipped.items()))
    if recipe.probe is not None and not args.no_probe:
        from cpcframe.cli.probe import probe_run
        from cpcframe.stopping import StopSignal, active_stop_request

        stop = active_stop_request()
        try:
            if stop is not None:
                stop.enter_phase("the final probe")
            probe_run(run_dir.root, baselines=args.baselines or None)
        except StopSignal as exc:
            raise StopSignal(exc.reason, "the final probe",
                             f"training finished and was saved in {run_dir.root}; probe it with: "
                             f"cpcframe probe {run_dir.root}") from None
    if not args.no_report:
        write_run_report(run_dir.root)
    return 0


def write_run_report(root) -> None:
    """``report.html`` at the end of a run; a report that cannot be made costs a warning, not
    the run (``cpcframe report RUN_DIR`` remakes it)."""
    import sys

    from cpcframe.report import write_report

    try:
        print(f"report: {write_report(root)}")
    except Exception as exc:  # the run is saved; the page is a convenience
        print(f"cpcframe: warning: no run report ({type(exc).__name__}: {exc}); "
              f"make it with: cpcframe report {root}", file=sys.stderr)
