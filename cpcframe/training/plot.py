"""The training-curves PNG written at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curves(records: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss and accuracy (overall and per step, training and validation) against the step;
    with ``train.validate_probe``, a third panel of its results (ABX errors) at each validation."""
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cpcframe.probe_metrics import probe_keys

    def series(key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of the records that hold ``key`` (validation records are sparser)."""
        kept = [r for r in records if r.get(key) is not None]
        return [r["step"] for r in kept], [r[key] for r in kept]

    probed = probe_keys(records)
    fig, axes = plt.subplots(1, 3 if probed else 2, figsize=(16 if probed else 11, 4))
    ax_loss, ax_acc = axes[0], axes[1]
    ax_loss.plot(*series("loss"), label="train", color="black")
    ax_acc.plot(*series("acc"), label="acc", color="black", linewidth=2)
    if any("val/loss" in r for r in records):
        ax_loss.plot(*series("val/loss"), label="validation", color="tab:red", linestyle="--", marker=".")
        ax_acc.plot(*series("val/acc"), label="val acc", color="tab:red", linestyle="--", marker=".")
        ax_loss.legend(fontsize=7)
    per_step = sorted({k for r in records for k in r if k.startswith("acc/")})
    cmap = plt.get_cmap("viridis")
    for i, key in enumerate(per_step):
        ax_acc.plot(*series(key), label=key[4:], linewidth=0.8, color=cmap(i / max(1, len(per_step) - 1)))
    ax_loss.set(xlabel="step", ylabel="InfoNCE loss", title="loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy of picking the positive", ylim=(0, 1))
    ax_acc.legend(fontsize=7, ncol=2)
    if probed:
        _plot_probe(axes[2], probed, series)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_probe(ax, keys: list[str], series) -> None:
    """The validation probe's results against the step (ABX: error in %, lower is better)."""
    from cpcframe.probe_metrics import is_error, label_of, task_of

    errors = all(is_error(k) for k in keys)
    for key in keys:
        steps, values = series(key)
        scale = 100.0 if errors else 1.0
        ax.plot(steps, [scale * v for v in values], marker="o", markersize=3, linewidth=1.2,
                label=label_of(key) if len({task_of(k) for k in keys}) == 1 else key[4:])
    tasks = sorted({task_of(k) for k in keys})
    ax.set(xlabel="step", ylabel="error (%)" if errors else "accuracy",
           title=("ABX error of the features, at each validation (lower is better)" if tasks == ["abx"]
                  else "validation probe: " + ", ".join(tasks)))
    ax.legend(fontsize=7)
