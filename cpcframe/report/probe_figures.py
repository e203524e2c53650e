"""Figures of the probe results logged while training (``train.validate_probe``, e.g. ABX).

With ``[train.validate_probe] name = "abx"`` every validation logs
``val/abx/<condition>/cpc`` (see :mod:`cpcframe.probe_metrics`): these draw them
against the step, for one run and for several runs on shared axes, so a report shows
phonetic discriminability over training and not only InfoNCE accuracy.
"""

from __future__ import annotations

from typing import Any

from cpcframe.report.figures import _figure, data_uri, run_colour
from cpcframe.report.steps import series
from cpcframe.probe_metrics import is_error, label_of, probe_keys, task_of

STYLES = ("-", "--", ":", "-.")


def _axis_labels(ax, keys: list[str]) -> None:
    tasks = sorted({task_of(k) for k in keys})
    errors = all(is_error(k) for k in keys)
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel("error (%)" if errors else "accuracy", fontsize=9)
    ax.set_title("ABX error at each validation (lower is better; 50 % is chance)" if tasks == ["abx"]
                 else "validation probe: " + ", ".join(tasks), fontsize=10)


def _scale(keys: list[str]) -> float:
    return 100.0 if all(is_error(k) for k in keys) else 1.0


def validation_probe(records: list[dict[str, Any]]) -> str | None:
    """One line per logged probe result (ABX: one per condition) against the step; ``None``
    when the run logged none."""
    keys = probe_keys(records)
    if not keys:
        return None
    fig, (ax,) = _figure(6.4, 3.4)
    scale = _scale(keys)
    for key in keys:
        steps, values = series(records, key)
        ax.plot(steps, [scale * v for v in values], marker="o", markersize=3.5, linewidth=1.3,
                label=label_of(key))
    _axis_labels(ax, keys)
    ax.legend(fontsize=8, frameon=False)
    return data_uri(fig)


def compare_validation_probe(runs: list[tuple[str, list[dict[str, Any]]]]) -> str | None:
    """The same for several runs: a colour per run, a line style per condition."""
    keys: list[str] = []
    for _, records in runs:
        keys += [k for k in probe_keys(records) if k not in keys]
    if not keys:
        return None
    fig, (ax,) = _figure(7.4, 3.6)
    scale = _scale(keys)
    for i, (name, records) in enumerate(runs):
        for j, key in enumerate(keys):
            steps, values = series(records, key)
            if steps:
                ax.plot(steps, [scale * v for v in values], color=run_colour(i), linestyle=STYLES[j % len(STYLES)],
                        marker="o", markersize=3, linewidth=1.1, label=f"{name}: {label_of(key)}")
    _axis_labels(ax, keys)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return data_uri(fig)
