"""The training-curves PNG written at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curves(records: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss and accuracy (overall and per step) against the training step."""
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(steps, [r.get("loss") for r in records], label="loss", color="black")
    ax_acc.plot(steps, [r.get("acc") for r in records], label="acc", color="black", linewidth=2)
    per_step = sorted({k for r in records for k in r if k.startswith("acc/")})
    cmap = plt.get_cmap("viridis")
    for i, key in enumerate(per_step):
        ax_acc.plot(steps, [r.get(key) for r in records], label=key[4:], linewidth=0.8,
                    color=cmap(i / max(1, len(per_step) - 1)))
    ax_loss.set(xlabel="step", ylabel="InfoNCE loss", title="loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy of picking the positive", ylim=(0, 1))
    ax_acc.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
