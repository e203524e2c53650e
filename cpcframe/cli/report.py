"""``cpcframe report RUN_DIR... [--out report.html] [--watch SECONDS]``: a page to look at.

One self-contained HTML file (no server, no network) of one run or several side by side:
curves, per-step accuracy, probes with their baselines, ABX, cost, feature maps and the
recipe (with the keys where several runs differ). It reads what the runs have written, so
it can be made while a run trains; ``--watch`` remakes it every few seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cpcframe.errors import UserError


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    from cpcframe.report.projection import METHODS

    p = sub.add_parser("report", parents=parents, help="an HTML report of runs: curves, probes, feature maps")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by cpcframe run")
    p.add_argument("--out", help="the HTML file (default: the report file in RUN_DIR for one run, in the current folder for several)")
    p.add_argument("--map", dest="method", choices=METHODS, default="auto",
                   help="projection of the feature maps: auto (UMAP, else t-SNE, else PCA), umap, tsne, pca")
    p.add_argument("--no-maps", action="store_true",
                   help="no feature maps (they load each model and a few hundred held-out items)")
    p.add_argument("--watch", type=float, default=0, metavar="SECONDS",
                   help="remake the report every SECONDS until the runs finish (Ctrl-C stops); "
                        "the page reloads itself as often")
    p.set_defaults(func=run)


def default_out(run_dirs: list[str]) -> Path:
    from cpcframe.runs.layout import REPORT

    return Path(run_dirs[0]) / REPORT if len(run_dirs) == 1 else Path(REPORT)


def run(args: argparse.Namespace) -> int:
    from cpcframe.report.build import build_report
    from cpcframe.report.rundata import read_run

    if args.watch < 0:
        raise UserError(f"--watch must be >= 0 seconds, got {args.watch}")
    out = Path(args.out) if args.out else default_out(args.run_dirs)
    refresh = int(max(args.watch, 1)) if args.watch else 0
    path = build_report(args.run_dirs, out, maps=not args.no_maps, method=args.method, refresh=refresh)
    if args.watch:
        print(f"report: {path} (remade every {args.watch:g} s until the runs finish; Ctrl-C stops)", flush=True)
        try:
            while not all(read_run(d).status == "finished" for d in args.run_dirs):
                time.sleep(args.watch)
                build_report(args.run_dirs, out, maps=not args.no_maps, method=args.method, refresh=refresh)
        except KeyboardInterrupt:  # the way to stop watching: not an error
            print("report: stopped watching")
        # The last page need not reload itself any more.
        path = build_report(args.run_dirs, out, maps=not args.no_maps, method=args.method)
    print(f"report: {path}")
    return 0
