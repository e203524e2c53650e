"""The report's figures, drawn with matplotlib and embedded as base64 PNG data URIs.

Every function returns a ``data:image/png;base64,...`` string (or ``None`` when there is
nothing to draw), so the page needs no file beside it. Figures are
:class:`matplotlib.figure.Figure` objects on the Agg canvas: no pyplot state, no display.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from cpcframe.report.steps import StepRow, series, split_name

DPI = 110
TRAIN, VAL = "#222222", "#d62728"


def _figure(width: float, height: float, panels: int = 1, integer_x: bool = True):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps, k: whole numbers
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(alpha=0.25, linewidth=0.6)
        ax.tick_params(labelsize=8)
    return fig, axes


def data_uri(fig) -> str:
    """The figure as a PNG data URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def png_file_uri(data: bytes) -> str:
    """A PNG file's bytes as a data URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def smoothed(values: Sequence[float]) -> np.ndarray | None:
    """An exponential moving average over about 1/25 of the curve (``None`` for short curves,
    which are drawn as they are)."""
    if len(values) < 50:
        return None
    alpha = 2.0 / (len(values) / 25 + 1)
    out = np.empty(len(values))
    acc = values[0]
    for i, v in enumerate(values):
        acc = alpha * v + (1 - alpha) * acc
        out[i] = acc
    return out


def _plot_train(ax, steps, values, colour=TRAIN, label="train") -> None:
    smooth = smoothed(values)
    if smooth is None:
        ax.plot(steps, values, color=colour, linewidth=1.4, label=label, marker="." if len(steps) < 20 else None)
    else:
        ax.plot(steps, values, color=colour, linewidth=0.7, alpha=0.25)
        ax.plot(steps, smooth, color=colour, linewidth=1.5, label=f"{label} (smoothed)")


def _chance_line(ax, chance: float | None) -> None:
    if chance is not None:
        ax.axhline(chance, color="#888888", linestyle=":", linewidth=1, label=f"chance ({chance:.3f})")


def curves(records: list[dict[str, Any]], chance: float | None = None) -> str | None:
    """Training and validation InfoNCE loss and accuracy against the step (``chance``: the
    accuracy of guessing among the sampled negatives, drawn dotted)."""
    if not any("loss" in r or "val/loss" in r for r in records):
        return None
    fig, (ax_loss, ax_acc) = _figure(10, 3.4, 2)
    for ax, key, ylabel in ((ax_loss, "loss", "InfoNCE loss"), (ax_acc, "acc", "accuracy")):
        steps, values = series(records, key)
        if steps:
            _plot_train(ax, steps, values)
        vsteps, vvalues = series(records, f"val/{key}")
        if vsteps:
            ax.plot(vsteps, vvalues, color=VAL, linestyle="--", marker="o", markersize=3.5,
                    linewidth=1.2, label="validation")
        ax.set_xlabel("step", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.legend(fontsize=8, frameon=False)
    _chance_line(ax_acc, chance)
    ax_acc.legend(fontsize=8, frameon=False)
    ax_loss.set_title("loss", fontsize=10)
    ax_acc.set_title("accuracy of picking the positive", fontsize=10)
    ax_acc.set_ylim(0, 1)
    return data_uri(fig)


def step_accuracy(rows: list[StepRow], chance: float | None = None) -> str | None:
    """Accuracy per prediction step at the end: against ``k`` for CPC (the paper's figure of
    accuracy against steps ahead), a bar per contrast otherwise (AMDIM's pairs)."""
    rows = [r for r in rows if r.train_acc is not None or r.val_acc is not None]
    if not rows:
        return None
    if all(r.k is not None for r in rows):
        fig, (ax,) = _figure(5.2, 3.2)
        for contrast in dict.fromkeys(split_name(r.name)[0] for r in rows):
            mine = [r for r in rows if split_name(r.name)[0] == contrast]
            prefix = f"{contrast}: " if contrast else ""
            for attr, colour, style, label in (("train_acc", TRAIN, "-", "train"),
                                               ("val_acc", VAL, "--", "validation")):
                points = [(r.k, getattr(r, attr)) for r in mine if getattr(r, attr) is not None]
                if points:
                    ks, accs = zip(*points)
                    ax.plot(ks, accs, color=colour, linestyle=style, marker="o", markersize=4,
                            label=prefix + label)
        ax.set_xticks(sorted({r.k for r in rows}))
        ax.set_xlabel("prediction step k (latent steps ahead)", fontsize=9)
    else:
        fig, (ax,) = _figure(5.2, max(2.4, 0.3 * len(rows) + 1.2), integer_x=False)
        y = np.arange(len(rows))
        height = 0.4 if any(r.val_acc is not None for r in rows) else 0.7
        ax.barh(y, [r.train_acc or 0 for r in rows], height=height, color=TRAIN, label="train")
        if height < 0.5:
            ax.barh(y + height, [r.val_acc or 0 for r in rows], height=height, color=VAL, label="validation")
        ax.set_yticks(y + (height / 2 if height < 0.5 else 0), [r.name for r in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("accuracy", fontsize=9)
    if all(r.k is not None for r in rows):
        _chance_line(ax, chance)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("InfoNCE accuracy per step, at the end", fontsize=10)
    return data_uri(fig)


def step_accuracy_over_training(records: list[dict[str, Any]], names: list[str]) -> str | None:
    """``acc/<step>`` against the training step, one line per step (dark: near, light: far)."""
    names = [n for n in names if series(records, f"acc/{n}")[0]]
    if not names:
        return None
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    fig, (ax,) = _figure(5.2, 3.2)
    for i, name in enumerate(names):
        steps, values = series(records, f"acc/{name}")
        smooth = smoothed(values)
        ax.plot(steps, values if smooth is None else smooth, linewidth=1.1, label=name,
                color=cmap(0.9 * i / max(1, len(names) - 1)))
    ax.set_ylim(0, 1)
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel("training accuracy", fontsize=9)
    ax.set_title("InfoNCE accuracy per step, over training", fontsize=10)
    ax.legend(fontsize=7, frameon=False, ncol=2 if len(names) > 6 else 1, loc="center left",
              bbox_to_anchor=(1.0, 0.5))
    return data_uri(fig)


def throughput(records: list[dict[str, Any]]) -> str | None:
    """Items per second and the learning rate against the step."""
    steps, speed = series(records, "items_per_s")
    lr_steps, lr = series(records, "lr")
    if not steps and not lr_steps:
        return None
    fig, (ax_speed, ax_lr) = _figure(9, 2.3, 2)
    if steps:
        ax_speed.plot(steps, speed, color="#1f77b4", linewidth=1.1)
    ax_speed.set_title("throughput (items/s)", fontsize=10)
    if lr_steps:
        ax_lr.plot(lr_steps, lr, color="#9467bd", linewidth=1.1)
    ax_lr.set_title("learning rate", fontsize=10)
    for ax in (ax_speed, ax_lr):
        ax.set_xlabel("step", fontsize=9)
    return data_uri(fig)


def run_colour(i: int) -> str:
    from matplotlib import colormaps

    return colormaps["tab10"](i % 10)


def compare_curves(runs: list[tuple[str, list[dict[str, Any]]]]) -> str | None:
    """Loss and accuracy of several runs on shared axes (solid: train, dashed: validation)."""
    if not any(records for _, records in runs):
        return None
    fig, (ax_loss, ax_acc) = _figure(10, 3.6, 2)
    for i, (name, records) in enumerate(runs):
        colour = run_colour(i)
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            steps, values = series(records, key)
            if steps:
                smooth = smoothed(values)
                ax.plot(steps, values if smooth is None else smooth, color=colour, linewidth=1.4, label=name)
            vsteps, vvalues = series(records, f"val/{key}")
            if vsteps:
                ax.plot(vsteps, vvalues, color=colour, linestyle="--", marker="o", markersize=3, linewidth=1,
                        label=f"{name} (validation)")
    ax_loss.set_title("loss (dashed: validation)", fontsize=10)
    ax_acc.set_title("accuracy (dashed: validation)", fontsize=10)
    ax_acc.set_ylim(0, 1)
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("step", fontsize=9)
    ax_acc.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return data_uri(fig)


def compare_step_accuracy(runs: list[tuple[str, list[StepRow]]]) -> str | None:
    """Final accuracy against ``k`` of several CPC runs (the K ablation at a glance)."""
    runs = [(n, [r for r in rows if r.k is not None]) for n, rows in runs]
    if not any(rows for _, rows in runs):
        return None
    fig, (ax,) = _figure(6.4, 3.4)
    for i, (name, rows) in enumerate(runs):
        colour = run_colour(i)
        for attr, style, suffix in (("train_acc", "-", ""), ("val_acc", "--", " (validation)")):
            points = sorted((r.k, getattr(r, attr)) for r in rows if getattr(r, attr) is not None)
            if points:
                ks, accs = zip(*points)
                ax.plot(ks, accs, color=colour, linestyle=style, marker="o", markersize=4, label=name + suffix)
    ax.set_xticks(sorted({r.k for _, rows in runs for r in rows}))
    ax.set_ylim(0, 1)
    ax.set_xlabel("prediction step k", fontsize=9)
    ax.set_ylabel("accuracy", fontsize=9)
    ax.set_title("InfoNCE accuracy per step, at the end", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return data_uri(fig)


def feature_map(points: np.ndarray, colourings: dict[str, list[str]], method: str) -> str:
    """One scatter panel per colouring of the same 2-D points (a legend up to 24 categories)."""
    from matplotlib import colormaps

    fig, axes = _figure(5.0 * len(colourings), 4.2, len(colourings))
    limits = robust_limits(points)
    for ax, (name, labels) in zip(axes, colourings.items()):
        if limits is not None:
            ax.set_xlim(*limits[0])
            ax.set_ylim(*limits[1])
            ax.set_xlabel("a few outlying points lie beyond the axes", fontsize=7, color="#656d76")
        categories = sorted(set(labels), key=_category_key)
        cmap = colormaps["tab10" if len(categories) <= 10 else "tab20"]
        for c, category in enumerate(categories):
            mask = np.array([label == category for label in labels])
            ax.scatter(points[mask, 0], points[mask, 1], s=10, alpha=0.8, linewidths=0,
                       color=cmap(c % cmap.N), label=category)
        ax.set_title(f"{method.split(' (')[0]}, coloured by {name} ({len(categories)})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.spines[["left", "bottom", "top", "right"]].set_visible(True)
        ax.spines[["left", "bottom", "top", "right"]].set_color("#d0d7de")
        if len(categories) <= 24:
            ax.legend(fontsize=6.5, frameon=False, markerscale=1.4, loc="center left", handletextpad=0.2,
                      bbox_to_anchor=(1.0, 0.5), ncol=2 if len(categories) > 12 else 1)
    return data_uri(fig)


def robust_limits(points: np.ndarray, share: float = 1.0) -> tuple[tuple[float, float], ...] | None:
    """Axis limits around the central points (``share``-th to ``100 - share``-th percentile,
    with a margin) when a few outliers would squeeze the rest into a corner; else ``None``."""
    lo, hi = np.percentile(points, [share, 100 - share], axis=0)
    span = hi - lo
    full = points.max(axis=0) - points.min(axis=0)
    if not np.all(span > 0) or not np.any(full > 2.0 * span):
        return None
    return tuple((float(lo[j] - 0.15 * span[j]), float(hi[j] + 0.15 * span[j])) for j in range(2))


def _category_key(label: str):
    return (0, int(label), label) if label.lstrip("-").isdigit() else (1, 0, label)
