"""Assemble the report of one or several run directories and write it as one HTML file.

:func:`build_report` is what ``cpcframe report`` calls; :func:`write_report` is the one
call ``cpcframe run`` makes at the end of a run (``RUN_DIR/report.html``). Both read only
what the runs have written (see :mod:`cpcframe.report.rundata`), so they can run while a
run trains, and a broken run gives a page that says what is missing.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from cpcframe.errors import UserError
from cpcframe.report import cost, figures, probe_figures, tables
from cpcframe.runs.layout import RunDir
from cpcframe.report.feature_maps import FeatureMap, feature_map, matching_pictures
from cpcframe.report.recipes import differing_keys
from cpcframe.report.rundata import FILES, RunData, read_run
from cpcframe.report.steps import StepRow, step_names, step_rows



@attrs.frozen
class RunSection:
    """What the page shows of one run (figures as data URIs, tables as :class:`tables.Table`)."""

    run: RunData
    label: str
    anchor: str
    path: str
    curves: str | None
    steps: list[StepRow]
    step_figure: str | None
    step_training_figure: str | None
    throughput: str | None
    probe: tables.Table | None
    probe_details: list[tuple[str, list[tuple[str, str]]]]
    abx: tables.Table | None
    abx_notes: list[str]
    probe_curves: str | None  # train.validate_probe's results (ABX) over training
    cost: list[tuple[str, str]]
    feature_map: FeatureMap | None
    pictures: list[tuple[str, str]]


def labels(runs: list[RunData]) -> list[str]:
    """Distinct names of the runs: the folder name, with its parent where two share one."""
    names = [r.name for r in runs]
    out = []
    for run, name in zip(runs, names):
        if names.count(name) > 1:
            name = f"{run.root.resolve().parent.name}/{name}"
        out.append(name)
    return [n if out.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(out)]


def chance_accuracy(recipe: dict[str, Any] | None) -> float | None:
    """``1 / (N + 1)`` for ``N = loss.num_negatives`` sampled negatives (unknown when 0: all candidates)."""
    n = ((recipe or {}).get("loss") or {}).get("num_negatives")
    return 1.0 / (n + 1) if isinstance(n, int) and n > 0 else None


def run_section(run: RunData, label: str, index: int, *, maps: bool, method: str) -> RunSection:
    rows = step_rows(run.records)
    chance = chance_accuracy(run.recipe)
    if maps and run.weights is not None and run.recipe is not None:
        fmap = feature_map(run.root, method=method)
    elif maps:
        fmap = FeatureMap(reason=f"no feature map: it needs {FILES.recipe.name} and {FILES.weights.name}")
    else:
        fmap = None
    abx, abx_notes = tables.abx_table(run.abx)
    return RunSection(
        run=run, label=label, anchor=f"run-{index}-{re.sub(r'[^A-Za-z0-9_-]+', '-', label)}",
        path=str(run.root.resolve()),
        curves=figures.curves(run.records, chance) if run.records else None,
        steps=rows,
        step_figure=figures.step_accuracy(rows, chance),
        step_training_figure=figures.step_accuracy_over_training(run.records, step_names(run.records)),
        throughput=figures.throughput(run.records) if run.records else None,
        probe=tables.probe_table(run), probe_details=tables.details(run), abx=abx, abx_notes=abx_notes,
        probe_curves=probe_figures.validation_probe(run.records) if run.records else None,
        cost=cost.cost(run), feature_map=fmap, pictures=matching_pictures(run.pictures))


def comparison(sections: list[RunSection]) -> dict[str, Any] | None:
    """The side-by-side part of a report of several runs."""
    if len(sections) < 2:
        return None
    runs, names = [s.run for s in sections], [s.label for s in sections]
    metrics, probes = tables.compare_tables(runs, names)
    return {
        "metrics": metrics,
        "probes": probes,
        "curves": figures.compare_curves([(s.label, s.run.records) for s in sections]),
        "steps": figures.compare_step_accuracy([(s.label, s.steps) for s in sections]),
        "probe_curves": probe_figures.compare_validation_probe([(s.label, s.run.records) for s in sections]),
        "differences": tables.recipe_differences(runs, differing_keys([r.recipe for r in runs]), names),
        "no_recipe": [s.label for s in sections if s.run.recipe is None],
    }


def report_context(run_dirs: Sequence[str | Path], *, maps: bool = True, method: str = "auto",
                   refresh: int = 0) -> dict[str, Any]:
    """Everything the template needs (see :mod:`cpcframe.report.render`)."""
    from cpcframe import __version__

    if not run_dirs:
        raise UserError("cpcframe report: name at least one run directory")
    for d in run_dirs:
        if not Path(d).is_dir():
            raise UserError(f"{d} is not a directory")
    if maps:
        from cpcframe.report.projection import resolve_method

        resolve_method(method)  # a bad or uninstalled method: fail before any work
    runs = [read_run(d) for d in run_dirs]
    names = labels(runs)
    sections = [run_section(run, name, i, maps=maps, method=method) for i, (run, name) in enumerate(zip(runs, names))]
    return {
        "title": "cpcframe report: " + ", ".join(names),
        "sections": sections,
        "comparison": comparison(sections),
        "generated": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "version": __version__,
        "command": "cpcframe report " + " ".join(str(d) for d in run_dirs),
        "refresh": refresh,
    }


def build_report(run_dirs: Sequence[str | Path], out: str | Path, *, maps: bool = True,
                 method: str = "auto", refresh: int = 0) -> Path:
    """Write the report of ``run_dirs`` to ``out`` (atomically: a browser reloading the page
    never reads half a file) and return its path.

    Args:
        run_dirs: run directories written by ``cpcframe run`` (finished, running or broken).
        out: the HTML file.
        maps: draw the feature maps (loads each run's model and some held-out data).
        method: the maps' projection: ``auto`` (UMAP, else t-SNE, else PCA), ``umap``,
            ``tsne`` or ``pca``.
        refresh: seconds after which the browser reloads the page (0: never), for
            ``cpcframe report --watch``.
    """
    from cpcframe.report.render import render
    from cpcframe.runs.atomic import write_atomic

    html = render(report_context(run_dirs, maps=maps, method=method, refresh=refresh))
    path = Path(out)

    def write(tmp: Path) -> None:
        tmp.write_text(html, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # a page to share, not a private temporary file

    write_atomic(path, write)
    return path


def write_report(run_dir: str | Path, *, maps: bool = True) -> Path:
    """``RUN_DIR/report.html`` of one run (what ``cpcframe run`` writes at the end)."""
    return build_report([run_dir], RunDir(run_dir).report, maps=maps)
