"""Per-step InfoNCE metrics of ``metrics.jsonl``: which steps there are and their values.

The loss reports, for every contrast and prediction step, ``acc/<name>`` and
``loss/<name>`` (and ``val/acc/<name>`` when validating), ``<name>`` being
:meth:`cpcframe.Contrast.metric_name`: ``k1`` ... ``kK`` for CPC's prediction steps
(``cpc_steps``, ``patch_steps``), ``1t5_12`` for an AMDIM pair (global scale 1 of view 1
predicting scale 5 of view 2), ``1t5_12/h0`` for one of its mixture heads. CPC's figure of
accuracy against the number of steps ahead needs the ``k`` steps in numeric order
(``k10`` after ``k9``).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

HORIZON = re.compile(r"^k(\d+)$")  # a CPC prediction step
HEAD = re.compile(r"^h\d+$")  # an AMDIM mixture head


def natural_key(name: str) -> tuple:
    """Sort key that puts ``k2`` before ``k10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def step_names(records: list[dict[str, Any]]) -> list[str]:
    """The per-step metric names (``k1``, ``1t5_12``) of training and validation records."""
    names = set()
    for record in records:
        for key in record:
            if key.startswith("val/acc/"):
                names.add(key[len("val/acc/"):])
            elif key.startswith("acc/"):
                names.add(key[len("acc/"):])
    return sorted(names, key=natural_key)


def split_name(name: str) -> tuple[str, str]:
    """``"1t5_12/h0"`` -> ``("1t5_12", "h0")``; ``"k3"`` -> ``("", "k3")``; ``"1t5_12"`` -> ``("1t5_12", "")``."""
    if "/" in name:
        contrast, step = name.rsplit("/", 1)
        return contrast, step
    return ("", name) if HORIZON.match(name) or HEAD.match(name) else (name, "")


def horizon(name: str) -> int | None:
    """``k`` of a CPC step name (``"k3"`` -> 3, ``"patches/k3"`` -> 3), else ``None``."""
    match = HORIZON.match(split_name(name)[1])
    return int(match.group(1)) if match else None


def latest(records: list[dict[str, Any]], key: str) -> tuple[int, float] | None:
    """``(step, value)`` of the last record holding ``key``."""
    for record in reversed(records):
        value = record.get(key)
        if isinstance(value, (int, float)):
            return int(record["step"]), float(value)
    return None


def series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of the records holding ``key`` (validation records are sparser)."""
    kept = [r for r in records if isinstance(r.get(key), (int, float))]
    return [int(r["step"]) for r in kept], [float(r[key]) for r in kept]


@attrs.frozen
class StepRow:
    """One prediction step's latest metrics (``None`` where not logged).

    ``train_*`` are means over the last logged window of training steps; ``val_*`` the
    last validation (same batches every time).
    """

    name: str
    k: int | None
    train_acc: float | None
    train_loss: float | None
    val_acc: float | None
    val_loss: float | None
    step: int | None
    val_step: int | None


def step_rows(records: list[dict[str, Any]]) -> list[StepRow]:
    """A :class:`StepRow` per step name, in natural order."""
    rows = []
    for name in step_names(records):
        acc, loss = latest(records, f"acc/{name}"), latest(records, f"loss/{name}")
        val_acc, val_loss = latest(records, f"val/acc/{name}"), latest(records, f"val/loss/{name}")
        rows.append(StepRow(name, horizon(name), acc and acc[1], loss and loss[1],
                            val_acc and val_acc[1], val_loss and val_loss[1],
                            acc and acc[0], val_acc and val_acc[0]))
    return rows
