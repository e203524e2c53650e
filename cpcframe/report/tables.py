"""The report's tables: probes against their baselines, ABX, runs side by side, recipe differences.

Tables are plain data (:class:`Table`: a header, rows of :class:`Cell`), formatted here
and laid out by the template, so tests can read them without parsing HTML.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from cpcframe.report.rundata import FILES, RunData
from cpcframe.report.steps import latest

#: Feature sets that are baselines, not the trained model (the probes' names).
BASELINES = ("random_init", "mfcc")
#: Keys of a probe's details that give the score of guessing.
CHANCE_KEYS = ("majority_baseline", "chance")


@attrs.frozen
class Cell:
    """A cell's text; ``best``: the best value of its row or column (drawn bold)."""

    text: str
    best: bool = False


@attrs.frozen
class Table:
    """``header``: column titles (the first names the row labels); ``rows``: ``(label, cells)``;
    ``baseline_columns`` / ``baseline_rows``: indices of the cells / rows that are baselines
    (drawn quieter); ``caption``."""

    header: list[str]
    rows: list[tuple[str, list[Cell]]]
    baseline_columns: tuple[int, ...] = ()
    caption: str = ""
    baseline_rows: tuple[int, ...] = ()


def is_baseline(feature_set: str) -> bool:
    """``random_init``, ``mfcc`` and their classifier variants (``random_init_mlp``)."""
    return any(feature_set == b or feature_set.startswith(b + "_") for b in BASELINES)


def percent(value: Any) -> str:
    return f"{100 * value:.1f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def chance(details: dict[str, Any], task: str, tasks: int) -> float | None:
    """The guessing score of ``task`` in any probe's details (``{task: {"chance": ...}}``,
    or a top-level ``chance`` when the probe has one task)."""
    for probe_details in details.values():
        if not isinstance(probe_details, dict):
            continue
        scoped = probe_details.get(task)
        for source in ([scoped] if isinstance(scoped, dict) else []) + ([probe_details] if tasks == 1 else []):
            for key in CHANCE_KEYS:
                if isinstance(source.get(key), (int, float)):
                    return float(source[key])
    return None


def probe_table(run: RunData) -> Table | None:
    """Tasks as rows; the trained model's feature sets, then the baselines, then chance,
    as columns (accuracy in %, the best of a row marked)."""
    if not run.probe:
        return None
    names = list(dict.fromkeys(n for scores in run.probe.values() for n in scores))
    columns = [n for n in names if not is_baseline(n)] + [n for n in names if is_baseline(n)]
    chances = {task: chance(run.details, task, len(run.probe)) for task in run.probe}
    with_chance = any(v is not None for v in chances.values())
    rows = []
    for task, scores in run.probe.items():
        best = max((v for v in scores.values() if isinstance(v, (int, float))), default=None)
        cells = [Cell(percent(scores.get(c)), best=scores.get(c) == best and best is not None) for c in columns]
        if with_chance:
            cells.append(Cell(percent(chances[task])))
        rows.append((task, cells))
    header = ["task"] + columns + (["chance"] if with_chance else [])
    baselines = tuple(i for i, c in enumerate(columns) if is_baseline(c)) + \
        ((len(columns),) if with_chance else ())
    return Table(header, rows, baselines, "accuracy (%) of the probe on held-out items; best of each row in bold")


def _leaves(data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(data, dict):
        return [leaf for k, v in data.items() for leaf in _leaves(v, path + (str(k),))]
    return [(path, data)]


def abx_table(abx: Any) -> tuple[Table | None, list[str]]:
    """What ``abx.json`` holds (``cpcframe abx``: ``{"errors": {condition: {features: error}},
    "backend": {...}, ...}``): the numbers of ``errors`` (or, without that key, every numeric
    leaf) as a table, the last key level as columns and the path above it as the row; the
    other entries (backend, level, frame step) as notes. Error rates at most 1 are shown
    in %; the lowest of a row is marked."""
    if not isinstance(abx, dict):
        return None, [f"holds {type(abx).__name__}, not a table"] if abx is not None else []
    scored = abx["errors"] if isinstance(abx.get("errors"), dict) else abx
    numbers, notes = [], []
    for path, value in _leaves(scored):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and len(path) >= 1:
            numbers.append((path, float(value)))
        elif path:
            notes.append(f"{' / '.join(path)}: {value}")
    if scored is not abx:
        notes += [f"{' / '.join(path)}: {value}" for path, value in _leaves({k: v for k, v in abx.items()
                                                                           if k != "errors"}) if path]
    if not numbers:
        return None, notes
    scale = 100.0 if all(0 <= v <= 1 for _, v in numbers) else 1.0
    columns = list(dict.fromkeys(p[-1] for p, _ in numbers))
    grouped: dict[str, dict[str, float]] = {}
    for path, value in numbers:
        grouped.setdefault(" / ".join(path[:-1]) or "error", {})[path[-1]] = value
    rows = []
    for label, values in grouped.items():
        low = min(values.values())
        rows.append((label, [Cell(f"{scale * values[c]:.2f}" if c in values else "-", best=values.get(c) == low)
                             for c in columns]))
    baselines = tuple(i for i, c in enumerate(columns) if is_baseline(c))
    unit = "error (%)" if scale == 100 else "error"
    return Table(["condition"] + columns, rows, baselines, f"ABX {unit}; lower is better, lowest of each row in bold"), notes


def _is_probe_column(column: str) -> bool:
    return "/" in column and not column.startswith("val/")


def compare_tables(runs: list[RunData], names: list[str]) -> tuple[Table, Table | None]:
    """Runs side by side, from the rows of ``cpcframe compare`` (its
    :func:`~cpcframe.cli.compare.collect`): the final training and validation metrics with
    runs as rows, and every probe accuracy (``task/features``) with runs as columns."""
    from cpcframe.cli.compare import ABX_COLUMNS, SUMMARY_METRICS, _cell, collect
    from cpcframe.errors import UserError

    rows, live = [], []
    for run in runs:
        try:
            row = collect(run.root, [])
        except UserError:  # no or unreadable recipe/summary/probe: the run's own section says which
            row = {"run": run.name, **{f"{t}/{f}": v for t, s in (run.probe or {}).items() for f, v in s.items()}}
        if not run.summary_current and run.records:
            # Not finished (or resumed past its summary): its latest records, marked.
            values = {k: latest(run.records, k) for k in SUMMARY_METRICS}
            row.update({"step": run.last_step, **{k: v and v[1] for k, v in values.items()}})
            live.append(id(run))
        rows.append({"status": run.status.split(":")[0], **row})
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns and k != "run"]
    columns = [c for c in columns if any(r.get(c) is not None for r in rows)]
    metrics = [c for c in columns if not _is_probe_column(c)]
    probes = [c for c in columns if _is_probe_column(c)]

    def best(values: list[Any], lower: bool) -> Any:
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return (min(numbers) if lower else max(numbers)) if len(numbers) >= 2 else None

    cells: dict[str, list[Cell]] = {name: [] for name in names}
    for column in metrics:
        values = [r.get(column) for r in rows]
        top = None if column == "step" else best(values, "loss" in column or column.startswith(ABX_COLUMNS))
        for name, value in zip(names, values):
            cells[name].append(Cell(_cell(column, value), best=top is not None and value == top))
    marked = [f"{n} *" if id(run) in live else n for n, run in zip(names, runs)]
    metric_table = Table(["run"] + metrics, [(m, cells[n]) for m, n in zip(marked, names)],
                         caption=f"final metrics of {FILES.summary.name} (training: mean of the last logged window)"
                                 + ("; * not finished: its latest record" if live else "")
                                 + "; best of each column in bold")
    if not probes:
        return metric_table, None
    probe_rows = []
    for column in probes:
        values = [r.get(column) for r in rows]
        top = best(values, column.startswith(ABX_COLUMNS))  # ABX: an error, the lowest is best
        probe_rows.append((column, [Cell(_cell(column, v), best=top is not None and v == top) for v in values]))
    baselines = tuple(i for i, (column, _) in enumerate(probe_rows) if is_baseline(column.split("/", 1)[1]))
    probe_table = Table(["task / features"] + names, probe_rows, caption=f"probe accuracy (%) of {FILES.probe.name}; "
                        "best of each row in bold", baseline_rows=baselines)
    return metric_table, probe_table


def recipe_differences(runs: list[RunData], keys: list[str], names: list[str]) -> Table | None:
    """The differing recipe keys as rows, one column per run."""
    if not keys:
        return None
    from cpcframe.cli.compare import _lookup
    from cpcframe.report.recipes import show_value

    rows = [(key, [Cell(show_value(_lookup(run.recipe, key)) if run.recipe is not None else "?")
                   for run in runs]) for key in keys]
    return Table(["recipe key"] + names, rows)


def details(run: RunData) -> list[tuple[str, list[tuple[str, str]]]]:
    """``(file name, [(key path, value), ...])`` of each details file (the probes': split
    sizes, classes, chance, train accuracies)."""
    out = []
    for probe, data in run.details.items():
        rows = []
        for path, value in _leaves(data):
            if isinstance(value, float):
                value = f"{value:.4g}"
            elif isinstance(value, list):
                value = f"{len(value)} item(s)" if len(value) > 4 else ", ".join(map(str, value))
            rows.append((" / ".join(path), str(value)))
        if rows:
            out.append((probe, rows))
    return out
